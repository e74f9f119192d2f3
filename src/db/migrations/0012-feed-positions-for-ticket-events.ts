import { sql, type Kysely } from 'kysely';
import type { Capabilities } from '../capabilities.js';

/**
 * Only ticket events take a place in the feed's commit order (docs/api.md, "The event feed"):
 * the events of no ticket (the test event, and the operational events that the delivery engine
 * writes with every deactivation and final failure) are never listed nor streamed, so a position
 * would only be a number for the sequencer to give and the stream to skip.
 * - On PostgreSQL the sequencer's index of events to number holds ticket events only: an event
 *   of no ticket stays unnumbered for good, and must not sit in the index the sequencer walks
 *   (a batch of them ahead of a ticket event would be read, and left, on every pass).
 * - The positions already given to events of no ticket are taken back, so that "an event has a
 *   position" means the same on both databases and before and after this release.
 */
export function feedPositionsForTicketEvents(capabilities: Capabilities) {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await sql`update events set feed_position = null where ticket_id is null and feed_position is not null`.execute(db);
      if (!capabilities.writesInCommitOrder) {
        await db.schema.dropIndex('events_unsequenced_idx').execute();
        await db.schema
          .createIndex('events_unsequenced_idx')
          .on('events')
          .column('id')
          .where((eb) => eb.and([eb(sql.ref('feed_position'), 'is', null), eb(sql.ref('ticket_id'), 'is not', null)]))
          .execute();
      }
    },
  };
}
