import { sql, type Kysely } from 'kysely';

/**
 * Per-ticket order (docs/delivery.md, "Order"). A delivery knows its ticket, and a delivery that
 * must wait for an earlier one of the same ticket to the same webhook is `held`: pending, with no
 * `next_attempt_at`, so that the claim's due index never sees it and its cost stays that of the
 * due rows alone. The partial index finds a ticket's pending deliveries to a webhook, when a
 * change asks whether to hold its own and when a finished delivery releases the next; it holds
 * pending rows only, so it stays as small as the queue.
 *
 * Pending deliveries queued before this migration get their ticket, so that a change made after
 * it waits for them; none of them is held.
 */
export const perTicketOrder = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('deliveries').addColumn('ticket_id', 'text').execute();
    await db.schema.alterTable('deliveries').addColumn('held', 'integer', (c) => c.notNull().defaultTo(0)).execute();
    await sql`update deliveries set ticket_id = (select events.ticket_id from events where events.id = deliveries.event_id) where status = 'pending'`.execute(db);
    await db.schema
      .createIndex('deliveries_ticket_pending_idx')
      .on('deliveries')
      .columns(['ticket_id', 'webhook_id', 'seq'])
      .where(sql.ref('status'), '=', 'pending')
      .execute();
  },
};
