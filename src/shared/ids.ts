import { randomFillSync } from 'node:crypto';

/** Resource id prefixes (docs/api.md, "Conventions"). */
export type IdPrefix = 'usr' | 'key' | 'tkt' | 'whk' | 'msg' | 'att' | 'evt' | 'req';

const RANDOM_BYTES = 10;
/**
 * Random bytes are drawn from the CSPRNG a pool at a time: a call per id is a system call per id,
 * and every created ticket takes three ids. Each byte is used once.
 */
const pool = Buffer.alloc(RANDOM_BYTES * 256);
let offset = pool.length;

/**
 * An opaque id: the type prefix, the time in milliseconds (48 bits, 12 hex digits) and 80 random
 * bits (docs/api.md, "Conventions"). The time comes first so that new ids sort after old ones: an
 * index on fully random ids takes each insert to a random page, so every row of a group commit
 * dirtied pages of its own, and the write of those pages was most of the cost of a commit.
 * Time-first ids append at the right edge of the index instead (docs/architecture.md, "Storage
 * decisions"). Like a ULID or a UUIDv7, an id shows when it was made,
 * which `createdAt` shows anyway; clients must still treat ids as opaque.
 */
export function newId(prefix: IdPrefix, epochMs: number = Date.now()): string {
  if (offset + RANDOM_BYTES > pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const id = `${idTimePrefix(prefix, epochMs)}${pool.toString('hex', offset, offset + RANDOM_BYTES)}`;
  offset += RANDOM_BYTES;
  return id;
}

/** The part of an id that its time makes: ids made at or after `epochMs` sort at or after it. */
export function idTimePrefix(prefix: IdPrefix, epochMs: number): string {
  return `${prefix}_${Math.max(0, Math.floor(epochMs)).toString(16).padStart(12, '0')}`;
}

/**
 * How far an id's time may stray from the time its row records: none for events written since
 * their ids were made from their time, a few milliseconds for older ones. A search by time
 * bounds ids this much wider and checks the recorded time exactly.
 */
export const ID_TIME_SLACK_MS = 60_000;
