/**
 * Workers' liveness rows (worker-liveness.repository.ts, docs/delivery.md "Leases") on both
 * databases: registered, renewed, removed; a stale worker's row removed and every lease it held
 * (claimed or handed over) released in one transaction, a live worker's and an unregistered
 * one's left alone; the release found through deliveries_leased_idx on a long queue. And the
 * heartbeat itself (worker-liveness.ts): what it lets its worker send, when it was stalled or
 * found stale by another.
 */
import { sql } from 'kysely';
import type { DatabaseHandle } from '../../../src/db/connection.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { countLiveWorkers, reclaimStaleWorkers, registerWorker, removeWorker, renewHeartbeat } from '../../../src/delivery/worker-liveness.repository.js';
import { WorkerLiveness, type LivenessObserver } from '../../../src/delivery/worker-liveness.js';
import { createLogger } from '../../../src/logger.js';
import { systemClock, toIso } from '../../../src/shared/time.js';
import { waitFor } from '../../helpers/wait.js';
import { openMigratedTestDatabase } from '../../helpers/databases.js';
import { describeEachDialect } from '../../helpers/dialects.js';

const T0 = Date.parse('2026-12-01T10:00:00.000Z');
const at = (seconds: number) => toIso(T0 + seconds * 1000);
const row = (workerId: string, heartbeatAt: string) => ({ worker_id: workerId, host: 'host-a', pid: 42, version: '0.1.0', started_at: at(0), heartbeat_at: heartbeatAt });

describeEachDialect('worker liveness rows', (dialect) => {
  let handle: DatabaseHandle;
  let opened: Awaited<ReturnType<typeof openMigratedTestDatabase>>;
  beforeEach(async () => {
    opened = await openMigratedTestDatabase(dialect);
    ({ handle } = opened);
    await sql`insert into webhooks (id, name, target_url, events, active, signing_secret, created_at, updated_at) values ('whk_1', 'w', 'https://example.com/hook', '["ticket.created"]', 1, 'sealed', ${at(0)}, ${at(0)})`.execute(handle.db);
    await sql`insert into events (id, type, ticket_id, payload, created_at) values ('evt_1', 'ticket.created', 'tkt_1', '{}', ${at(0)})`.execute(handle.db);
  });
  afterEach(async () => {
    await opened.close();
  });

  /** `count` pending deliveries due at 0, numbered from 1; the first `leased` of each holder leased to it. */
  async function queue(count: number, leases: Record<string, number> = {}): Promise<void> {
    await sql`with recursive n(i) as (select 1 union all select i + 1 from n where i < ${count})
      insert into deliveries (id, webhook_id, event_id, event_type, ticket_id, status, attempt_count, schedule_attempts, next_attempt_at, created_at, updated_at)
      select 'msg_' || cast(i as text), 'whk_1', 'evt_1', 'ticket.created', 'tkt_' || cast(i as text), 'pending', 0, 0, ${at(0)}, ${at(0)}, ${at(0)} from n`.execute(handle.db);
    let first = 1;
    for (const [holder, n] of Object.entries(leases)) {
      await sql`update deliveries set leased_by = ${holder}, lease_expires_at = ${at(60)} where seq >= ${first} and seq < ${first + n}`.execute(handle.db);
      first += n;
    }
  }

  const leasesBy = async () =>
    Object.fromEntries(
      (await handle.db.selectFrom('deliveries').select(['leased_by', (eb) => eb.fn.countAll<number | string>().as('n')]).where('leased_by', 'is not', null).groupBy('leased_by').execute()).map((r) => [r.leased_by, Number(r.n)]),
    );

  it('is registered, renewed while it is there, and gone after a clean stop', async () => {
    const { db } = handle;
    await registerWorker(db, row('wrk_a', at(0)));
    expect(await renewHeartbeat(db, 'wrk_a', at(1))).toBe(true);
    expect(await db.selectFrom('worker_heartbeats').selectAll().execute()).toEqual([{ ...row('wrk_a', at(1)), pid: 42 }]);
    expect(await countLiveWorkers(db, at(1))).toBe(1);
    expect(await countLiveWorkers(db, at(2))).toBe(0);
    await removeWorker(db, 'wrk_a');
    expect(await renewHeartbeat(db, 'wrk_a', at(2))).toBe(false);
    // Registering again (after being found stale) writes the row anew, and on top of one left there.
    await registerWorker(db, row('wrk_a', at(3)));
    await registerWorker(db, row('wrk_a', at(4)));
    expect(await db.selectFrom('worker_heartbeats').select(['worker_id', 'heartbeat_at']).execute()).toEqual([{ worker_id: 'wrk_a', heartbeat_at: at(4) }]);
  });

  it('releases every lease of a stale worker, claimed or handed over, and nothing of a live or unregistered one', async () => {
    const { db } = handle;
    await queue(40, { wrk_dead: 10, wrk_live: 5, wrk_old_version: 3 });
    // A handed-over delivery: held until its predecessor finished, then leased by the record.
    await sql`update deliveries set held = 0, next_attempt_at = ${at(4)}, leased_by = 'wrk_dead', lease_expires_at = ${at(64)} where seq = 30`.execute(db);
    await registerWorker(db, row('wrk_dead', at(1)));
    await registerWorker(db, row('wrk_live', at(1)));
    expect(await renewHeartbeat(db, 'wrk_live', at(6))).toBe(true);

    // Not stale yet at 5 s: nothing happens.
    expect(await reclaimStaleWorkers(db, at(1))).toEqual({ workers: [], deliveries: 0 });
    expect(await leasesBy()).toEqual({ wrk_dead: 11, wrk_live: 5, wrk_old_version: 3 });

    expect(await reclaimStaleWorkers(db, at(6))).toEqual({ workers: ['wrk_dead'], deliveries: 11 });
    // A worker with no row (an older release, or one not yet registered) keeps its leases: they expire.
    expect(await leasesBy()).toEqual({ wrk_live: 5, wrk_old_version: 3 });
    const released = await db.selectFrom('deliveries').select(['lease_expires_at']).where('seq', 'in', [1, 10, 30]).execute();
    expect(released).toEqual([{ lease_expires_at: null }, { lease_expires_at: null }, { lease_expires_at: null }]);
    expect((await db.selectFrom('worker_heartbeats').select('worker_id').execute()).map((r) => r.worker_id)).toEqual(['wrk_live']);
    // The dead worker, alive after all, finds its row gone.
    expect(await renewHeartbeat(db, 'wrk_dead', at(7))).toBe(false);
    expect(await reclaimStaleWorkers(db, at(6))).toEqual({ workers: [], deliveries: 0 });
  });

  it('finds a dead worker’s leases through deliveries_leased_idx on a long queue', async () => {
    const { db } = handle;
    await queue(20_000, { wrk_dead: 300, wrk_live: 200 });
    if (dialect === 'postgres') await sql`analyze deliveries`.execute(db);
    const update = db.updateTable('deliveries').set({ lease_expires_at: null, leased_by: null }).where('leased_by', 'in', ['wrk_dead', 'wrk_other']).compile();
    // The statement as the repository sends it, its parameters written in (EXPLAIN takes none).
    let next = 0;
    const literal = update.sql.replace(/\$(\d+)|\?/g, (_match, n?: string) => `'${String(update.parameters[n === undefined ? next++ : Number(n) - 1])}'`);
    const plan = (await sql.raw(`explain ${dialect === 'sqlite' ? 'query plan ' : ''}${literal}`).execute(db)).rows;
    expect(JSON.stringify(plan)).toContain('deliveries_leased_idx');

    await registerWorker(db, row('wrk_dead', at(0)));
    expect(await reclaimStaleWorkers(db, at(6))).toEqual({ workers: ['wrk_dead'], deliveries: 300 });
    expect(await leasesBy()).toEqual({ wrk_live: 200 });
  });

  describe('the heartbeat', () => {
    const started: WorkerLiveness[] = [];
    afterEach(async () => {
      for (const liveness of started.splice(0)) await liveness.stop();
    });

    function heartbeat(workerId: string, hooks: { observer?: LivenessObserver; onClaimable?: () => void } = {}): WorkerLiveness {
      const liveness = new WorkerLiveness({
        db: handle.db,
        clock: systemClock,
        logger: createLogger('silent'),
        workerId,
        version: '9.9.9',
        timings: { heartbeatMs: 100, staleMs: 2_000 },
        observer: hooks.observer ?? null,
        onClaimable: hooks.onClaimable ?? (() => undefined),
      });
      started.push(liveness);
      return liveness;
    }

    it('lets its worker send once registered, not while its last renewal is too old, and again once renewed', async () => {
      let claimable = 0;
      const liveness = heartbeat('wrk_me', { onClaimable: () => (claimable += 1) });
      expect(liveness.maySend(0)).toBe(false);
      await liveness.start();
      expect(liveness.maySend(0)).toBe(true);
      expect(claimable).toBe(1);
      const [row] = await handle.db.selectFrom('worker_heartbeats').selectAll().execute();
      expect(row).toMatchObject({ worker_id: 'wrk_me', pid: process.pid, version: '9.9.9' });
      // Its event loop blocked past the guard (60 % of the 2 s): no renewal could run, and it
      // must not send, since another worker may be about to find it stale.
      const blockedFrom = performance.now();
      while (performance.now() - blockedFrom < 1_500) {
        // blocked
      }
      expect(liveness.maySend(0)).toBe(false);
      // Told to claim as soon as it may send again, not after the rest of the heartbeat.
      await waitFor('a renewal', () => liveness.maySend(0));
      // Its worker is told to claim again (once more if a renewal was slow under load).
      expect(claimable).toBeGreaterThanOrEqual(2);
      await liveness.stop();
      expect(await handle.db.selectFrom('worker_heartbeats').selectAll().execute()).toEqual([]);
    });

    it('found stale by another, starts a new epoch, sends nothing of the old one, and registers again', async () => {
      const liveness = heartbeat('wrk_me');
      await liveness.start();
      expect(liveness.epoch).toBe(0);
      // Another worker found its row stale: removed, and its leases released.
      await removeWorker(handle.db, 'wrk_me');
      await waitFor('the next renewal to find the row gone', () => liveness.epoch === 1);
      expect(liveness.maySend(0)).toBe(false);
      await waitFor('it to register again', async () => liveness.maySend(1) && (await handle.db.selectFrom('worker_heartbeats').select('worker_id').execute()).length === 1);
    });

    it('releases the leases of a worker whose row went stale, tells the observer and wakes its worker', async () => {
      await queue(50, { wrk_dead: 7, wrk_me: 4 });
      await registerWorker(handle.db, row('wrk_dead', toIso(Date.now() - 10_000)));
      const reclaimed: [number, number][] = [];
      let claimable = 0;
      const liveness = heartbeat('wrk_me', { observer: { leasesReclaimed: (workers, deliveries) => reclaimed.push([workers, deliveries]) }, onClaimable: () => (claimable += 1) });
      await liveness.start();
      expect(reclaimed).toEqual([[1, 7]]);
      // Once registered (it may send), and again once the dead worker's deliveries are claimable.
      expect(claimable).toBe(2);
      expect(await leasesBy()).toEqual({ wrk_me: 4 });
      expect((await handle.db.selectFrom('worker_heartbeats').select('worker_id').execute()).map((r) => r.worker_id)).toEqual(['wrk_me']);
    });
  });
});
