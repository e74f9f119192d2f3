import { sql } from 'kysely';
import type { Db } from './connection.js';

/**
 * The database answers a trivial query within `timeoutMs`, or this rejects. Bounded, because a
 * connection cut without a reset (a network partition) leaves a query waiting for minutes,
 * and a health check that hangs tells a prober nothing.
 */
export async function pingDatabase(db: Db, timeoutMs: number): Promise<void> {
  await withinTime(sql`select 1`.execute(db), timeoutMs, 'the database did not answer');
}

/** `work`, or a rejection after `timeoutMs` (the work itself is left to finish or fail). */
export async function withinTime<T>(work: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}
