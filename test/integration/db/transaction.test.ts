/**
 * Transactions that PostgreSQL aborts for a deadlock are run again (src/db/transaction.ts): two
 * transactions lock two rows in opposite orders, PostgreSQL aborts one of them, and with
 * inTransaction both still commit, the aborted one on its second run. The same choreography with
 * a plain transaction shows the conflict is real. SQLite serialises writers (BEGIN IMMEDIATE), so
 * the choreography cannot happen there.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Db } from '../../../src/db/connection.js';
import { inTransaction } from '../../../src/db/transaction.js';
import { describeEachDialect } from '../../helpers/dialects.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';

function latch(): { open(): void; opened: Promise<void> } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}

/** Appends `name` to the setting `key`, under the row's lock (PostgreSQL; SQLite's transaction holds the file's). */
async function append(trx: Db, key: string, name: string, rowLock = true): Promise<void> {
  let read = trx.selectFrom('settings').select('value').where('key', '=', key);
  if (rowLock) read = read.forUpdate();
  const row = await read.executeTakeFirstOrThrow();
  await trx.updateTable('settings').set({ value: `${row.value}${name}` }).where('key', '=', key).execute();
}

/**
 * `a` locks x then y, `b` locks y then x, each waiting for the other to hold its first row: a
 * deadlock on the first run. Returns how often each ran and how each ended.
 */
async function crosswise(db: Db, run: (work: (trx: Db) => Promise<void>) => Promise<void>, keys: [string, string]) {
  const [x, y] = keys;
  const aHolds = latch();
  const bHolds = latch();
  const runs = { a: 0, b: 0 };
  const outcome = await Promise.allSettled([
    run(async (trx) => {
      runs.a += 1;
      await append(trx, x, 'a');
      aHolds.open();
      await bHolds.opened;
      await append(trx, y, 'a');
    }),
    run(async (trx) => {
      runs.b += 1;
      await append(trx, y, 'b');
      bHolds.open();
      await aHolds.opened;
      await append(trx, x, 'b');
    }),
  ]);
  return { runs, outcome };
}

describeEachDialect('transactions that conflict', (dialect) => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer(dialect, { startWorker: false });
  });
  afterAll(async () => {
    await server.close();
  });

  if (dialect === 'postgres') it('are aborted by PostgreSQL for a deadlock in a plain transaction', async () => {
    const { db } = server.runtime.database;
    await db.insertInto('settings').values([{ key: 'plain x', value: '' }, { key: 'plain y', value: '' }]).execute();
    const { runs, outcome } = await crosswise(db, (work) => db.transaction().execute(work), ['plain x', 'plain y']);
    expect(runs).toEqual({ a: 1, b: 1 });
    const rejected = outcome.filter((o) => o.status === 'rejected');
    expect(rejected).toHaveLength(1);
    expect((rejected[0] as PromiseRejectedResult).reason.code).toBe('40P01');
  });

  if (dialect === 'postgres') it('run again through inTransaction, so that both commit', async () => {
    const { db } = server.runtime.database;
    await db.insertInto('settings').values([{ key: 'retried x', value: '' }, { key: 'retried y', value: '' }]).execute();
    const conflicts: unknown[] = [];
    const { runs, outcome } = await crosswise(db, (work) => inTransaction(db, work, (error) => conflicts.push(error)), ['retried x', 'retried y']);
    expect(outcome.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled']);
    expect(runs.a + runs.b).toBe(3);
    expect(conflicts).toHaveLength(1);
    expect((conflicts[0] as { code: string }).code).toBe('40P01');
    const values = await db.selectFrom('settings').select(['key', 'value']).where('key', 'in', ['retried x', 'retried y']).orderBy('key').execute();
    // Each transaction's change is there once: the aborted run left nothing behind.
    for (const { value } of values) expect([...value].sort().join('')).toBe('ab');
  });

  if (dialect === 'sqlite') it('serialise writers on SQLite: the second waits, nothing is aborted', async () => {
    const { db } = server.runtime.database;
    await db.insertInto('settings').values([{ key: 'serial x', value: '' }, { key: 'serial y', value: '' }]).execute();
    let runs = 0;
    const work = (name: string) => async (trx: Db) => {
      runs += 1;
      await append(trx, 'serial x', name, false);
      await append(trx, 'serial y', name, false);
    };
    await Promise.all([inTransaction(db, work('a')), inTransaction(db, work('b'))]);
    expect(runs).toBe(2);
    const values = await db.selectFrom('settings').select('value').where('key', 'in', ['serial x', 'serial y']).execute();
    for (const { value } of values) expect([...value].sort().join('')).toBe('ab');
  });
});
