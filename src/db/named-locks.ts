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
} as const;

export async function lockNames(trx: Db, capabilities: Capabilities, namespace: number, names: readonly string[]): Promise<void> {
  if (!capabilities.namedLocks || names.length === 0) return;
  await sql`
    select pg_advisory_xact_lock(${namespace}::int4, key)
    from (select distinct hashtext(name) as key from unnest(${[...names]}::text[]) as name) as keys
    order by key`.execute(trx);
}
