/**
 * The retention lease (job-leases.repository.ts, retention.ts) on both databases: taken only when
 * free, the caller's own or expired; of many takers at once exactly one wins; a pruner that does
 * not hold it prunes nothing; a stopping holder gives it back.
 */
import { afterEach, beforeEach, expect, it } from 'vitest';
import { parseDatabaseUrl } from '../../../src/config.js';
import { openDatabase, type DatabaseHandle } from '../../../src/db/connection.js';
import { createLogger } from '../../../src/logger.js';
import { releaseJobLease, takeJobLease } from '../../../src/retention/job-leases.repository.js';
import { RETENTION_LEASE, RetentionPruner } from '../../../src/retention/retention.js';
import { toIso } from '../../../src/shared/time.js';
import { openMigratedTestDatabase, type TestDatabase } from '../../helpers/databases.js';
import { describeEachDialect } from '../../helpers/dialects.js';

const T0 = Date.parse('2026-12-01T10:00:00.000Z');
const at = (seconds: number) => toIso(T0 + seconds * 1000);

describeEachDialect('the retention lease', (dialect) => {
  let database: TestDatabase;
  let handle: DatabaseHandle;
  let opened: Awaited<ReturnType<typeof openMigratedTestDatabase>>;
  beforeEach(async () => {
    opened = await openMigratedTestDatabase(dialect);
    ({ database, handle } = opened);
  });
  afterEach(async () => {
    await opened.close();
  });

  it('is taken when free, renewed by its holder, refused to others until it expires, then taken over', async () => {
    const { db } = handle;
    expect(await takeJobLease(db, 'job', 'a', at(0), at(20))).toBe(true);
    expect(await takeJobLease(db, 'job', 'b', at(10), at(30))).toBe(false);
    expect(await takeJobLease(db, 'job', 'a', at(10), at(30))).toBe(true);
    expect(await takeJobLease(db, 'job', 'b', at(29), at(49))).toBe(false);
    // Expired: anyone may take it, and the old holder is then refused.
    expect(await takeJobLease(db, 'job', 'b', at(30), at(50))).toBe(true);
    expect(await takeJobLease(db, 'job', 'a', at(31), at(51))).toBe(false);
    // Given back: free at once, but only the holder can give it back.
    await releaseJobLease(db, 'job', 'a', at(32));
    expect(await takeJobLease(db, 'job', 'c', at(32), at(52))).toBe(false);
    await releaseJobLease(db, 'job', 'b', at(32));
    expect(await takeJobLease(db, 'job', 'c', at(32), at(52))).toBe(true);
    expect(await db.selectFrom('job_leases').selectAll().execute()).toEqual([{ name: 'job', holder: 'c', expires_at: at(52) }]);
  });

  it('goes to exactly one of many takers at once, on a free and on an expired lease', async () => {
    // Separate connections, so that on PostgreSQL the statements really run side by side.
    const others = Array.from({ length: 8 }, () => openDatabase(parseDatabaseUrl(database.url)));
    try {
      for (const [now, until] of [
        [at(0), at(20)],
        [at(20), at(40)],
      ] as const) {
        const won = await Promise.all(others.map((other, i) => takeJobLease(other.db, 'job', `taker-${now}-${i}`, now, until)));
        expect(won.filter(Boolean)).toHaveLength(1);
        const row = await handle.db.selectFrom('job_leases').select(['holder', 'expires_at']).executeTakeFirstOrThrow();
        expect(row).toEqual({ holder: `taker-${now}-${won.indexOf(true)}`, expires_at: until });
      }
    } finally {
      await Promise.all(others.map((other) => other.close()));
    }
  });

  it('lets only the holder prune, and a stopping holder hands over at once', async () => {
    const { db } = handle;
    const expired = at(-86_400);
    await db
      .insertInto('idempotency_keys')
      .values(['k1', 'k2', 'k3'].map((key) => ({ scope: 's', key, fingerprint: 'f', locked_until: null, response_status: 201, response_body: null, created_at: expired, expires_at: expired })))
      .execute();
    let now = T0;
    const pruner = () => new RetentionPruner({ db, clock: { now: () => now }, logger: createLogger('silent'), retentionDays: 30, intervalMs: 10_000 });
    const first = pruner();
    const second = pruner();
    expect(await second.pruneOnce()).toBe(3);
    expect(await first.pruneOnce()).toBeNull();
    now += 19_000; // within the second's lease (two intervals)
    expect(await first.pruneOnce()).toBeNull();
    expect(await second.pruneOnce()).toBe(0);
    const lease = await db.selectFrom('job_leases').select(['name', 'holder']).executeTakeFirstOrThrow();
    expect(lease).toEqual({ name: RETENTION_LEASE, holder: second.holder });
    // started, so that stop() gives the lease back
    second.start();
    await second.stop();
    expect(await first.pruneOnce()).toBe(0);
    expect((await db.selectFrom('job_leases').select('holder').executeTakeFirstOrThrow()).holder).toBe(first.holder);
  });
});
