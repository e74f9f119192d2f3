import { sql, type Kysely } from 'kysely';

/**
 * The release of a ticket's next delivery (docs/delivery.md, "Order") asks of each finished
 * stream whether a delivery of it is still under way (pending and not held) and which held one
 * comes first. With `held` only in the rows, each question read every pending row of the stream
 * from the table; with `held` in the index, each is one step in the index
 * (docs/benchmarks.md, issue 14).
 */
export const heldInTicketPendingIndex = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.dropIndex('deliveries_ticket_pending_idx').execute();
    await db.schema
      .createIndex('deliveries_ticket_pending_idx')
      .on('deliveries')
      .columns(['ticket_id', 'webhook_id', 'held', 'seq'])
      .where(sql.ref('status'), '=', 'pending')
      .execute();
  },
};
