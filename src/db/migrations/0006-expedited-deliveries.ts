import { sql, type Kysely } from 'kysely';

/**
 * An admin's act (a redelivery, a recovery, a test event) goes out at once, whatever its
 * webhook's breaker, fair share or per-ticket order says (docs/delivery.md, "Redelivery,
 * recovery and test events"): the delivery is `expedited` until its next attempt is recorded.
 * The partial index lets a claim that leaves paused webhooks out still find their expedited rows,
 * without walking their backlog; it holds only those rows, so it stays tiny.
 */
export const expeditedDeliveries = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('deliveries').addColumn('expedited', 'integer', (c) => c.notNull().defaultTo(0)).execute();
    await db.schema
      .createIndex('deliveries_expedited_idx')
      .on('deliveries')
      .columns(['next_attempt_at', 'seq'])
      .where(sql.ref('expedited'), '=', 1)
      .execute();
  },
};
