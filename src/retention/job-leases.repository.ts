/**
 * Leases on jobs that one process at a time runs (the job_leases table): taken, renewed and given
 * back by compare-and-set, so that two processes can never both believe they hold one.
 */
import type { Db } from '../db/connection.js';

/**
 * Takes the lease, or renews it when `holder` has it already, until `expiresAt`: it succeeds only
 * when nobody holds it, the holder is `holder`, or the last holder's lease ran out before `now`.
 * One statement, so that of two processes trying at once, one wins (PostgreSQL re-checks the
 * condition on the row the other wrote; SQLite writes one at a time).
 */
export async function takeJobLease(db: Db, name: string, holder: string, now: string, expiresAt: string): Promise<boolean> {
  const row = await db
    .insertInto('job_leases')
    .values({ name, holder, expires_at: expiresAt })
    .onConflict((oc) =>
      oc
        .column('name')
        .doUpdateSet({ holder, expires_at: expiresAt })
        .where((eb) => eb.or([eb('job_leases.holder', '=', holder), eb('job_leases.expires_at', '<=', now)])),
    )
    .returning('holder')
    .executeTakeFirst();
  return row !== undefined;
}

/** Gives the lease back (a process stopping), so that another may take it at once. */
export async function releaseJobLease(db: Db, name: string, holder: string, now: string): Promise<void> {
  await db.updateTable('job_leases').set({ expires_at: now }).where('name', '=', name).where('holder', '=', holder).where('expires_at', '>', now).execute();
}
