import { sql, type Kysely } from 'kysely';

/**
 * A liveness row per running delivery worker (docs/delivery.md, "Leases"): renewed every second,
 * deleted on a clean stop. A worker whose row goes stale is dead, and any other worker releases
 * its leases at once instead of waiting them out. The partial index finds a worker's leased
 * deliveries without walking the queue; it holds only leased rows (a few hundred per worker), so
 * it stays tiny however long the queue is.
 */
export const workerHeartbeats = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('worker_heartbeats')
      .addColumn('worker_id', 'text', (c) => c.primaryKey())
      .addColumn('host', 'text', (c) => c.notNull())
      .addColumn('pid', 'integer', (c) => c.notNull())
      .addColumn('version', 'text', (c) => c.notNull())
      .addColumn('started_at', 'text', (c) => c.notNull())
      .addColumn('heartbeat_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('deliveries_leased_idx').on('deliveries').column('leased_by').where(sql.ref('leased_by'), 'is not', null).execute();
  },
};
