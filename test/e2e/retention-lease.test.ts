/**
 * One retention runner at a time (docs/deployment.md, "Retention"), with the real program: one
 * `serve` and two `helpdesk worker` processes share a database and try the retention lease every
 * second. Each pass is logged with its holder and times; the passes must never overlap, a new
 * holder may start only once the last one's lease ran out, the expired rows are pruned once, and
 * /metrics shows one holder. Then the holder is killed with SIGKILL and another takes over once
 * its lease expires. On SQLite too: several processes on one file are supported
 * (docs/deployment.md, "One process on SQLite").
 */
import { afterEach, expect, inject, it } from 'vitest';
import { parseDatabaseUrl } from '../../src/config.js';
import { openDatabase } from '../../src/db/connection.js';
import { migrateToLatest } from '../../src/db/migrate.js';
import { createTestDatabase, type TestDatabase } from '../helpers/databases.js';
import { describeEachDialect } from '../helpers/dialects.js';
import { freePort, spawnHelpdesk, spawnWorker, type HelpdeskProcess } from '../helpers/processes.js';
import { ADMIN_TOKEN, SECRET_KEY } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';

const INTERVAL_SECONDS = 1;
/** Two intervals (src/retention/retention.ts). */
const LEASE_MS = 2 * INTERVAL_SECONDS * 1000;
const EXPIRED_KEYS = 50;

interface Pass {
  holder: string;
  pid: number;
  /** The time the lease was taken (or renewed) at, for this pass. */
  leaseTakenAt: number;
  /** When the lease ran out, as this pass last renewed it. */
  leaseUntil: number;
  startedAt: number;
  finishedAt: number;
  removed: number;
}

interface Runner {
  process: HelpdeskProcess;
  /** Where its /metrics is. */
  metrics: string;
}

function passesOf(output: string): Pass[] {
  return output
    .split('\n')
    .filter((line) => line.includes('"retention pass"'))
    .map((line) => JSON.parse(line) as { holder: string; leaseTakenAt: string; leaseUntil: string; startedAt: string; finishedAt: string; removed: number })
    .map((line) => ({
      holder: line.holder,
      pid: Number(line.holder.split(':').at(-2)),
      leaseTakenAt: Date.parse(line.leaseTakenAt),
      leaseUntil: Date.parse(line.leaseUntil),
      startedAt: Date.parse(line.startedAt),
      finishedAt: Date.parse(line.finishedAt),
      removed: line.removed,
    }));
}

/** One sample of a /metrics answer (no labels). */
async function sample(metricsUrl: string, name: string): Promise<number> {
  const text = await (await fetch(metricsUrl)).text();
  const line = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  if (!line) throw new Error(`${name} is not in ${metricsUrl}`);
  return Number(line[1]);
}

/**
 * The passes must not overlap, and a new holder may take the lease only once the previous
 * holder's ran out (as its last logged pass left it; a pass cut short by a kill may only have
 * renewed it further).
 */
function expectOnePrunerAtATime(passes: readonly Pass[]): void {
  const ordered = [...passes].sort((a, b) => a.startedAt - b.startedAt);
  for (let i = 1; i < ordered.length; i += 1) {
    const previous = ordered[i - 1]!;
    const next = ordered[i]!;
    expect(next.startedAt, `a pass of ${next.holder} began before the one of ${previous.holder} ended`).toBeGreaterThanOrEqual(previous.finishedAt);
    if (next.holder !== previous.holder) {
      expect(next.leaseTakenAt, `${next.holder} took the lease while ${previous.holder}'s ran`).toBeGreaterThanOrEqual(previous.leaseUntil);
    }
  }
}

describeEachDialect('one retention runner at a time, among three processes', (dialect) => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  });

  function env(database: TestDatabase): Record<string, string> {
    return {
      HELPDESK_DATABASE_URL: database.url,
      HELPDESK_ADMIN_TOKEN: ADMIN_TOKEN,
      HELPDESK_SECRET_KEY: SECRET_KEY,
      HELPDESK_RETENTION_INTERVAL_SECONDS: String(INTERVAL_SECONDS),
      // The passes are logged at debug.
      HELPDESK_LOG_LEVEL: 'debug',
      HELPDESK_LOG_FORMAT: 'json',
      NODE_EXTRA_CA_CERTS: inject('tls').caPath,
    };
  }
  function stopAtEnd(process: HelpdeskProcess): void {
    cleanups.push(async () => {
      if (process.child.exitCode === null && process.child.signalCode === null) process.child.kill('SIGKILL');
      await process.exited;
    });
  }

  it('prunes in one process at a time, and another takes over once a killed holder’s lease runs out', { timeout: 120_000 }, async () => {
    const database = await createTestDatabase(dialect);
    cleanups.push(() => database.drop());
    // Expired idempotency keys: work for the first pass, to be done once.
    const handle = openDatabase(parseDatabaseUrl(database.url));
    try {
      await migrateToLatest(handle.db, handle.capabilities);
      const expired = new Date(Date.now() - 24 * 60 * 60 * 1000).toISOString();
      await handle.db
        .insertInto('idempotency_keys')
        .values(Array.from({ length: EXPIRED_KEYS }, (_, i) => ({ scope: 'key_old', key: `k${i}`, fingerprint: 'f', locked_until: null, response_status: 201, response_body: null, created_at: expired, expires_at: expired })))
        .execute();
    } finally {
      await handle.close();
    }

    const port = await freePort();
    const serve = spawnHelpdesk('serve', { ...env(database), HELPDESK_PORT: String(port) });
    stopAtEnd(serve);
    const workers = await Promise.all([spawnWorker(env(database)), spawnWorker(env(database))]);
    workers.forEach(stopAtEnd);
    const runners: Runner[] = [{ process: serve, metrics: `http://127.0.0.1:${port}/metrics` }, ...workers.map((w) => ({ process: w, metrics: `${w.endpoints!}/metrics` }))];
    const allPasses = () => runners.flatMap((runner) => passesOf(runner.process.output()));

    await waitFor('five retention passes', () => allPasses().length >= 5, 30_000);
    await waitFor(`serve to answer (output: ${serve.output()})`, () => fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false), 20_000);
    expectOnePrunerAtATime(allPasses());
    // The expired keys went in one pass, of one process.
    const removing = allPasses().filter((pass) => pass.removed > 0);
    expect(removing).toHaveLength(1);
    expect(removing[0]!.removed).toBe(EXPIRED_KEYS);
    // One process holds the lease: the one whose passes are the latest.
    const holding = await waitFor('one holder in /metrics', async () => {
      const held = await Promise.all(runners.map((runner) => sample(runner.metrics, 'helpdesk_retention_lease_held')));
      return held.filter((value) => value === 1).length === 1 ? runners[held.indexOf(1)]! : null;
    });
    const pruned = await Promise.all(runners.map((runner) => sample(runner.metrics, 'helpdesk_retention_pruned_rows_total')));
    expect(pruned.reduce((sum, value) => sum + value, 0)).toBe(EXPIRED_KEYS);

    // The holder dies without giving the lease back.
    const killed = holding.process.child.pid!;
    expect([...allPasses()].sort((a, b) => a.startedAt - b.startedAt).at(-1)!.pid).toBe(killed);
    holding.process.child.kill('SIGKILL');
    await holding.process.exited;
    const killedAt = Date.now();
    const survivors = runners.filter((runner) => runner !== holding);
    const successor = await waitFor('another process to prune', () => allPasses().find((pass) => pass.pid !== killed && pass.startedAt > killedAt), 20_000);
    const lastOfKilled = allPasses()
      .filter((pass) => pass.pid === killed)
      .sort((a, b) => a.startedAt - b.startedAt)
      .at(-1)!;
    expect(successor.leaseTakenAt).toBeGreaterThanOrEqual(lastOfKilled.leaseUntil);
    await waitFor('three more passes', () => allPasses().filter((pass) => pass.startedAt > killedAt).length >= 3, 20_000);
    expectOnePrunerAtATime(allPasses());
    await waitFor('one holder among the survivors', async () => {
      const held = await Promise.all(survivors.map((runner) => sample(runner.metrics, 'helpdesk_retention_lease_held')));
      return held.filter((value) => value === 1).length === 1;
    });
    const passes = allPasses();
    process.stdout.write(
      `retention [${dialect}]: ${passes.length} passes by ${new Set(passes.map((pass) => pass.holder)).size} holders among 3 processes, none overlapping; ` +
        `holder SIGKILLed, successor took the lease ${successor.leaseTakenAt - lastOfKilled.leaseTakenAt} ms after the dead holder last renewed it (lease ${LEASE_MS} ms)\n`,
    );
  });
});
