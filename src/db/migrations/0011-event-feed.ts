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
 * - indexes: the position (numbered events only: on PostgreSQL an insert adds no entry), a
 *   ticket's events newest first for the feed's `ticketId` filter, and on PostgreSQL the events
 *   the sequencer has yet to number, in id order. The feed's newest-first list, its time window
 *   and retention's search for old events walk the primary key: an event's id begins with the
 *   time of its change (outbox.ts).
 * Existing events are numbered here in the order they were made.
 */
export function eventFeed(capabilities: Capabilities) {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema.alterTable('events').addColumn('feed_position', 'bigint').execute();
      // A change's events share their time; within one, the ticket version and then the order
      // of the change's events (docs/api.md, "Events and payloads") tell them apart.
      const rank = sql`case type when 'ticket.created' then 0 when 'ticket.updated' then 1 when 'ticket.assignment.changed' then 2 when 'ticket.resolved' then 3 else 4 end`;
      await sql`
        update events set feed_position = numbered.position
        from (select id, row_number() over (order by created_at, ticket_version, ${rank}, id) as position from events) as numbered
        where events.id = numbered.id`.execute(db);
      await db.schema.createIndex('events_feed_position_idx').on('events').column('feed_position').unique().where(sql.ref('feed_position'), 'is not', null).execute();
      await db.schema.createIndex('events_ticket_idx').on('events').columns(['ticket_id', 'id']).execute();
      if (!capabilities.writesInCommitOrder) {
        await db.schema.createIndex('events_unsequenced_idx').on('events').column('id').where(sql.ref('feed_position'), 'is', null).execute();
      }
    },
  };
}
