/**
 * A transaction that is run again when PostgreSQL aborted it for a deadlock or a serialization
 * failure: the whole transaction was rolled back, so running it again is safe, and the caller
 * must not see a 500 for a conflict that a moment later is gone. Locks are still taken in one
 * order where two transactions meet (webhook rows by id, delivery rows by id), so that this stays
 * the rare case it is meant for.
 */
import type { Db } from './connection.js';

/** PostgreSQL's deadlock (40P01) and serialization failure (40001). */
const RETRYABLE_CODES = new Set(['40P01', '40001']);

/** How many times a conflicting transaction is run again before its error is the caller's. */
export const CONFLICT_RETRIES = 2;

export function isRetryableConflict(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && RETRYABLE_CODES.has(code);
}

/** Runs `work` in a transaction, again (at most CONFLICT_RETRIES times) if it conflicted. */
export async function inTransaction<T>(db: Db, work: (trx: Db) => Promise<T>, onConflict?: (error: unknown) => void): Promise<T> {
  for (let retries = CONFLICT_RETRIES; ; retries -= 1) {
    try {
      return await db.transaction().execute(work);
    } catch (error) {
      if (retries === 0 || !isRetryableConflict(error)) throw error;
      onConflict?.(error);
    }
  }
}
