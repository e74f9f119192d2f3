import { sql, type Kysely } from 'kysely';
import type { Capabilities } from '../capabilities.js';

/**
 * The event feed (docs/api.md, "The event feed") and its stream:
 * - `events.feed_position`: the event's place in commit order, which the stream follows and
 *   resumes from. Where writing transactions run one at a time (SQLite) a number taken inside the
 *   transaction is already in commit order, and the insert takes it. Where they commit
 *   concurrently (PostgreSQL) a number taken inside one (a sequence, an id) is not: a transaction
 *   that took 7 may commit after one that took 8, and a reader that had passed 8 would never see
 *   7. There the position is null at insert and given after the commit by the sequencer
 *   (events.repository.ts), in the order the committed events became visible to it;
 * - `events.seq` (PostgreSQL): insertion order, by which the sequencer orders the events it
 *   finds committed together, so that the events of one change, and the changes of one ticket
 *   (each waits on the previous one's row lock), keep their order;
 * - indexes for the feed's newest-first list (and retention, which scanned the table for old
 *   events), its `ticketId` filter, and the stream's reads by position.
 * Existing events are numbered here in the order they were made.
 */
export function eventFeed(capabilities: Capabilities) {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema.alterTable('events').addColumn('feed_position', 'bigint').execute();
      if (!capabilities.writesInCommitOrder) {
        await db.schema.alterTable('events').addColumn('seq', 'bigserial').execute();
      }
      // A change's events share their time; within one, the ticket version and then the order
      // of the change's events (docs/api.md, "Events and payloads") tell them apart.
      const rank = sql`case type when 'ticket.created' then 0 when 'ticket.updated' then 1 when 'ticket.assignment.changed' then 2 when 'ticket.resolved' then 3 else 4 end`;
      await sql`
        update events set feed_position = numbered.position
        from (select id, row_number() over (order by created_at, ticket_version, ${rank}, id) as position from events) as numbered
        where events.id = numbered.id`.execute(db);
      await db.schema.createIndex('events_feed_position_idx').on('events').column('feed_position').unique().execute();
      await db.schema.createIndex('events_created_idx').on('events').columns(['created_at', 'id']).execute();
      await db.schema.createIndex('events_ticket_idx').on('events').columns(['ticket_id', 'created_at', 'id']).execute();
      if (!capabilities.writesInCommitOrder) {
        await db.schema.createIndex('events_unsequenced_idx').on('events').column('seq').where(sql.ref('feed_position'), 'is', null).execute();
      }
    },
  };
}
