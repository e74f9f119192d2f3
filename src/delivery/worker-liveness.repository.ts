/**
 * Delivery workers' liveness rows (the worker_heartbeats table, migration 0016) and the release
 * of a dead worker's leases (docs/delivery.md, "Leases"). A worker registers at start, renews its
 * row every heartbeat and deletes it on a clean stop; a row not renewed for the staleness limit
 * belongs to a dead worker, whose leases any live worker releases.
 */
import type { Db } from '../db/connection.js';
import type { WorkerHeartbeatsTable } from '../db/schema.js';
import { inTransaction } from '../db/transaction.js';

export type WorkerHeartbeat = WorkerHeartbeatsTable;

/**
 * Writes the worker's row, at start or again after another worker found it stale and removed it
 * (the same id: its leases taken since are then covered again).
 */
export async function registerWorker(db: Db, row: WorkerHeartbeat): Promise<void> {
  await db
    .insertInto('worker_heartbeats')
    .values(row)
    .onConflict((oc) => oc.column('worker_id').doUpdateSet({ heartbeat_at: row.heartbeat_at }))
    .execute();
}

/**
 * Renews the worker's row; false when it is gone: another worker found it stale, removed it and
 * released its leases, which this worker no longer holds.
 */
export async function renewHeartbeat(db: Db, workerId: string, at: string): Promise<boolean> {
  const result = await db.updateTable('worker_heartbeats').set({ heartbeat_at: at }).where('worker_id', '=', workerId).executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/** A clean stop: the worker has given its leases back already. */
export async function removeWorker(db: Db, workerId: string): Promise<void> {
  await db.deleteFrom('worker_heartbeats').where('worker_id', '=', workerId).execute();
}

/** The rows renewed at or after `since`: the workers alive, as far as their heartbeats say. */
export async function countLiveWorkers(db: Db, since: string): Promise<number> {
  const row = await db
    .selectFrom('worker_heartbeats')
    .select((eb) => eb.fn.countAll<number | string>().as('n'))
    .where('heartbeat_at', '>=', since)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

export interface ReclaimedWorkers {
  /** The dead workers whose rows were removed. */
  workers: string[];
  /** Deliveries whose leases they held, now claimable. */
  deliveries: number;
}

/**
 * Removes the rows of workers not renewed since `staleBefore`, and in the same transaction
 * releases every lease they held (claimed or handed over: both carry `leased_by`), through
 * deliveries_leased_idx. The table is read first without a write, so that a heartbeat with nobody
 * dead costs one read of a few rows; the delete checks the staleness again, so that a worker
 * renewing in between is left alone (on PostgreSQL its renewal either lands first or waits for
 * the delete and then finds its row gone).
 */
export async function reclaimStaleWorkers(db: Db, staleBefore: string): Promise<ReclaimedWorkers> {
  const stale = await db.selectFrom('worker_heartbeats').select('worker_id').where('heartbeat_at', '<', staleBefore).execute();
  if (stale.length === 0) return { workers: [], deliveries: 0 };
  return inTransaction(db, async (trx) => {
    const removed = await trx
      .deleteFrom('worker_heartbeats')
      .where(
        'worker_id',
        'in',
        stale.map((row) => row.worker_id),
      )
      .where('heartbeat_at', '<', staleBefore)
      .returning('worker_id')
      .execute();
    const workers = removed.map((row) => row.worker_id);
    if (workers.length === 0) return { workers, deliveries: 0 };
    const released = await trx.updateTable('deliveries').set({ lease_expires_at: null, leased_by: null }).where('leased_by', 'in', workers).executeTakeFirst();
    return { workers, deliveries: Number(released.numUpdatedRows) };
  });
}
