/**
 * Transaction-scoped locks on names (PostgreSQL advisory locks), taken in one order by everyone
 * so that two transactions locking several names never wait on each other crosswise. A lock is
 * held until its transaction ends. Names hash to 32 bits within a namespace: two names that
 * collide only wait for each other, never break anything.
 */
import { sql } from 'kysely';
import type { Capabilities } from './capabilities.js';
import type { Db } from './connection.js';

/** The namespaces of named locks: the first key of PostgreSQL's two-key advisory locks. */
export const LOCK_NAMESPACES = {
  /** The deliveries of one ticket: queuing a change's behind earlier ones, releasing the next. */
  ticketDeliveries: 0x746b_6474,
  /** The event feed's sequencer: one process at a time numbers committed events. */
  eventFeed: 0x6576_6664,
  /**
   * The ids of the secret keys values may be sealed under (secrets/sealing-keys.ts): held shared
   * by every transaction that seals, exclusively by whatever changes the ids.
   */
  secretKeys: 0x7365_6b79,
} as const;

/**
 * `shared`: many holders at once, none while an exclusive holder of the name has it, for a
 * check that many writers make against what one rarely changes.
 */
export async function lockNames(trx: Db, capabilities: Capabilities, namespace: number, names: readonly string[], mode: 'exclusive' | 'shared' = 'exclusive'): Promise<void> {
  if (!capabilities.namedLocks || names.length === 0) return;
  const lock = mode === 'shared' ? sql`pg_advisory_xact_lock_shared` : sql`pg_advisory_xact_lock`;
  await sql`
    select ${lock}(${namespace}::int4, key)
    from (select distinct hashtext(name) as key from unnest(${[...names]}::text[]) as name) as keys
    order by key`.execute(trx);
}
