/**
 * Every difference between SQLite and PostgreSQL that the code cares about, resolved once into
 * named flags (after pg-boss's plans). Nothing else asks which database it is on.
 */
export type DialectName = 'sqlite' | 'postgres';

export interface Capabilities {
  readonly dialect: DialectName;
  /** `FOR UPDATE SKIP LOCKED` lets several workers claim disjoint rows concurrently. */
  readonly skipLocked: boolean;
  /**
   * `SELECT ... FOR UPDATE / FOR SHARE` row locks. PostgreSQL needs them for read-modify-write
   * under concurrency; SQLite has no such syntax and needs none: BEGIN IMMEDIATE already
   * serialises every writing transaction.
   */
  readonly rowLocks: boolean;
  /** Column type of an auto-incrementing integer primary key. */
  readonly serialPrimaryKeyType: 'integer' | 'bigserial';
  /** SQLite's integer key needs AUTOINCREMENT so that a deleted row's number is never reused. */
  readonly serialNeedsAutoIncrement: boolean;
  /**
   * Arrays bind as one parameter (PostgreSQL), so a batch of rows arrives as one array per
   * column through `unnest`: one short statement whatever the batch, planned in well under a
   * millisecond. SQLite has no arrays: its batches are bound as one JSON text and read with
   * `json_each` (db/bound-rows.ts).
   */
  readonly arrayParameters: boolean;
  /** LISTEN/NOTIFY wakes workers in other processes (PostgreSQL); elsewhere they poll. */
  readonly listenNotify: boolean;
  /**
   * Transaction-scoped locks on names rather than rows (PostgreSQL's advisory locks), for what
   * has no row to lock, such as the deliveries of a ticket that may already be deleted. SQLite
   * needs none: its writing transactions run one at a time.
   */
  readonly namedLocks: boolean;
  /**
   * JSON stored as text is read with a cast to `jsonb` and its path operators (PostgreSQL);
   * elsewhere with `json_extract` (SQLite). Only a migration reads into stored JSON today.
   */
  readonly jsonbOperators: boolean;
  /**
   * Writing transactions commit in the order they take numbers (SQLite: one at a time), so an
   * event's place in the feed's commit order can be taken as it is inserted. PostgreSQL commits
   * concurrently: the feed's sequencer numbers events after their commit (events.repository.ts).
   */
  readonly writesInCommitOrder: boolean;
}

export const CAPABILITIES: Record<DialectName, Capabilities> = {
  sqlite: Object.freeze({ dialect: 'sqlite', skipLocked: false, rowLocks: false, serialPrimaryKeyType: 'integer', serialNeedsAutoIncrement: true, arrayParameters: false, listenNotify: false, namedLocks: false, jsonbOperators: false, writesInCommitOrder: true }),
  postgres: Object.freeze({ dialect: 'postgres', skipLocked: true, rowLocks: true, serialPrimaryKeyType: 'bigserial', serialNeedsAutoIncrement: false, arrayParameters: true, listenNotify: true, namedLocks: true, jsonbOperators: true, writesInCommitOrder: false }),
};
