/**
 * `helpdesk worker`'s /healthz and /metrics (docs/deployment.md, "Health and metrics"), with the
 * real program over real sockets: the API is an in-process server on the same database that runs
 * no worker, so every delivery is the worker process's. Health turns 503 when the worker's
 * database is cut (PostgreSQL through a TCP proxy) and when its claims are stuck while a delivery
 * waits: rows locked by a transaction that does not end (PostgreSQL), or SQLite's write lock held
 * by another connection.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import { afterEach, expect, inject, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/databases.js';
import { describeEachDialect } from '../helpers/dialects.js';
import { spawnHelpdesk, spawnWorker, type HelpdeskProcess } from '../helpers/processes.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { ADMIN_TOKEN, SECRET_KEY, startTestServer, type TestServer } from '../helpers/server.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';
import { waitFor } from '../helpers/wait.js';

const LEASE_SECONDS = 20;

interface Health {
  status: number;
  body: { status: string; reason?: string; message?: string };
  /** How long the answer took. */
  ms: number;
}

async function health(endpoints: string): Promise<Health> {
  const started = Date.now();
  // Generous: on SQLite a worker blocked on the write lock answers once its statement gives up (5 s).
  const response = await fetch(`${endpoints}/healthz`, { signal: AbortSignal.timeout(15_000) });
  return { status: response.status, body: (await response.json()) as Health['body'], ms: Date.now() - started };
}

/**
 * The Prometheus text format, line by line: every line a comment (# HELP, # TYPE) or a sample
 * `name{labels} value`; the samples by their name and labels as written. Prometheus reads NaN in
 * any case (prom-client writes `Nan` for a gauge never observed).
 */
function parseMetrics(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || /^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* /.test(line)) continue;
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})?) (-?[0-9.e+-]+|[Nn][Aa][Nn]|[+-]Inf)$/.exec(line);
    if (!sample) throw new Error(`not a Prometheus text line: ${line}`);
    samples.set(sample[1]!, Number(sample[2]));
  }
  return samples;
}

/** The TCP ports a process listens on, from its socket descriptors and the kernel's socket tables. */
function listeningPorts(pid: number): number[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const socket = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (socket) inodes.add(socket[1]!);
    } catch {
      // closed since the listing
    }
  }
  const ports: number[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const row of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const fields = row.trim().split(/\s+/);
      // local address, state (0A = LISTEN), inode
      if (fields.length > 9 && fields[3] === '0A' && inodes.has(fields[9]!)) ports.push(parseInt(fields[1]!.split(':')[1]!, 16));
    }
  }
  return ports;
}

describeEachDialect('helpdesk worker: /healthz and /metrics', (dialect) => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  });

  async function database(): Promise<TestDatabase> {
    const db = await createTestDatabase(dialect);
    cleanups.push(() => db.drop());
    return db;
  }
  async function receiver(): Promise<Receiver> {
    const r = await startReceiver();
    cleanups.push(() => r.close());
    return r;
  }
  /** The API on `db`, with no worker of its own. */
  async function api(db: TestDatabase): Promise<TestServer> {
    const server = await startTestServer(dialect, { database: db, startWorker: false });
    cleanups.push(() => server.close());
    return server;
  }
  function workerEnv(url: string, extra: Record<string, string> = {}): Record<string, string> {
    return {
      HELPDESK_DATABASE_URL: url,
      HELPDESK_ADMIN_TOKEN: ADMIN_TOKEN,
      HELPDESK_SECRET_KEY: SECRET_KEY,
      HELPDESK_ALLOW_PRIVATE_TARGETS: 'true',
      HELPDESK_DELIVERY_LEASE_SECONDS: String(LEASE_SECONDS),
      NODE_EXTRA_CA_CERTS: inject('tls').caPath,
      ...extra,
    };
  }
  async function worker(url: string, extra: Record<string, string> = {}): Promise<HelpdeskProcess & { id: string; endpoints: string }> {
    const started = await spawnWorker(workerEnv(url, extra));
    cleanups.push(async () => {
      if (started.child.exitCode === null && started.child.signalCode === null) started.child.kill('SIGKILL');
      await started.exited;
    });
    return { ...started, endpoints: started.endpoints! };
  }
  async function subscribe(server: TestServer, target: Receiver): Promise<void> {
    const created = await server.request('POST', '/webhooks', { body: { webhook: { name: 'probed', targetUrl: target.url(), events: ['ticket.created'] } } });
    expect(created.status).toBe(201);
  }

  it('answers /healthz 200 and /metrics in the Prometheus format, counting the deliveries it made; nothing else', { timeout: 60_000 }, async () => {
    const db = await database();
    const target = await receiver();
    const server = await api(db);
    await subscribe(server, target);
    const w = await worker(db.url);
    expect(w.output()).toContain(`health ${w.endpoints}/healthz, metrics ${w.endpoints}/metrics`);
    expect(listeningPorts(w.child.pid!)).toEqual([Number(new URL(w.endpoints).port)]);

    const ok = await health(w.endpoints);
    expect(ok.status).toBe(200);
    expect(ok.body).toEqual({ status: 'ok' });

    for (const subject of ['one', 'two']) expect((await server.request('POST', '/tickets', { body: { ticket: { subject } } })).status).toBe(201);
    await target.waitForRequests(2);
    const samples = await waitFor('the worker to count both deliveries', async () => {
      const response = await fetch(`${w.endpoints}/metrics`);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      const parsed = parseMetrics(await response.text());
      return parsed.get('helpdesk_deliveries_total{event="ticket.created",outcome="succeeded"}') === 2 ? parsed : null;
    });
    expect(samples.get('helpdesk_delivery_attempts_total{event="ticket.created",outcome="succeeded",error="none"}')).toBe(2);
    expect(samples.get('helpdesk_delivery_attempt_duration_seconds_count{outcome="succeeded"}')).toBe(2);
    expect(samples.get('helpdesk_delivery_queue_depth')).toBe(0);
    // The last claim is one of the two deliveries': after the worker started, and not in the future.
    const lastClaim = samples.get('helpdesk_worker_last_claim_timestamp_seconds')!;
    expect(lastClaim * 1000).toBeGreaterThan(Date.now() - 60_000);
    expect(lastClaim * 1000).toBeLessThanOrEqual(Date.now());
    expect(samples.has('helpdesk_process_cpu_seconds_total')).toBe(true);

    const elsewhere = await fetch(`${w.endpoints}/helpdesk/api/v1/tickets`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(elsewhere.status).toBe(404);
    expect(await elsewhere.json()).toMatchObject({ error: { code: 'not_found' } });
  });

  it('serves nothing with HELPDESK_WORKER_PORT=off, and delivers all the same', { timeout: 60_000 }, async () => {
    const db = await database();
    const target = await receiver();
    const server = await api(db);
    await subscribe(server, target);
    const w = await spawnWorker(workerEnv(db.url, { HELPDESK_WORKER_PORT: 'off' }));
    cleanups.push(async () => {
      if (w.child.exitCode === null) w.child.kill('SIGKILL');
      await w.exited;
    });
    expect(w.endpoints).toBeNull();
    expect(w.output()).toContain('HELPDESK_WORKER_PORT=off: no /healthz or /metrics');
    await server.request('POST', '/tickets', { body: { ticket: { subject: 'still delivered' } } });
    await target.waitForRequests(1);
    expect(listeningPorts(w.child.pid!)).toEqual([]);
  });

  it('refuses to start, in one line, when HELPDESK_WORKER_PORT is in use', { timeout: 30_000 }, async () => {
    const db = await database();
    await api(db); // the database migrated, so that the worker's start gets as far as listening
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => blocker.close(resolve)));
    const { port } = blocker.address() as AddressInfo;
    const w = spawnHelpdesk('worker', workerEnv(db.url, { HELPDESK_WORKER_PORT: String(port), HELPDESK_LOG_LEVEL: 'warn' }));
    expect(await w.exited).toEqual({ code: 1, signal: null });
    expect(w.stderr()).toBe(`helpdesk: worker failed: port ${port} on 127.0.0.1 is already in use by another process: stop it, or set HELPDESK_WORKER_PORT to another port (or to off)\n`);
  });

  it.runIf(dialect === 'postgres')('answers 503 within a few seconds when its database is cut, and 200 again once it is back', { timeout: 90_000 }, async () => {
    const db = await database();
    const server = await api(db);
    await subscribe(server, await receiver());
    const url = new URL(db.url);
    const proxy = await startTcpProxy(url.hostname, Number(url.port || 5432));
    cleanups.push(() => proxy.close());
    url.port = String(proxy.port);
    const w = await worker(url.toString());
    expect((await health(w.endpoints)).status).toBe(200);

    proxy.cut();
    const cutAt = Date.now();
    let slowest = 0;
    const down = await waitFor('health to turn 503', async () => {
      const answer = await health(w.endpoints);
      // Every answer is bounded, whatever the connection does.
      expect(answer.ms).toBeLessThan(4_000);
      slowest = Math.max(slowest, answer.ms);
      return answer.status === 503 ? answer : null;
    });
    const turnedAfter = Date.now() - cutAt;
    expect(turnedAfter).toBeLessThan(5_000);
    expect(down.body).toMatchObject({ status: 'unavailable', reason: 'database_unreachable' });
    expect(down.body.message).toMatch(/^The worker cannot reach its database: /);

    proxy.restore();
    const restoredAt = Date.now();
    await waitFor('health to turn 200 again', async () => (await health(w.endpoints)).status === 200, 20_000);
    process.stdout.write(`worker health: database cut, 503 after ${turnedAfter} ms (slowest answer ${slowest} ms); restored, 200 after ${Date.now() - restoredAt} ms\n`);
  });

  it('answers 503 not_claiming when it has taken nothing for longer than its lease while a delivery waits, and 200 once it claims again', { timeout: 120_000 }, async () => {
    const db = await database();
    const target = await receiver();
    const server = await api(db);
    await subscribe(server, target);
    const release: { stuck: () => Promise<void> } = { stuck: async () => undefined };
    let startedAt: number;
    let endpoints: string;
    if (dialect === 'postgres') {
      expect((await server.request('POST', '/tickets', { body: { ticket: { subject: 'waits' } } })).status).toBe(201);
      // A transaction that holds the due row and does not end: claims skip it (SKIP LOCKED).
      const holder = new pg.Client({ connectionString: db.url });
      await holder.connect();
      cleanups.push(() => holder.end());
      await holder.query('begin');
      expect((await holder.query('select id from deliveries for update')).rowCount).toBe(1);
      release.stuck = async () => void (await holder.query('rollback'));
      startedAt = Date.now();
      endpoints = (await worker(db.url)).endpoints;
    } else {
      // SQLite's write lock, taken by another connection once the worker has started (its start
      // writes), before the delivery falls due: every claim then waits out its busy timeout and fails.
      // Due in 15 s: room for a start of a few seconds on a loaded machine.
      const dueAt = Date.now() + 15_000;
      expect((await server.request('POST', '/tickets', { body: { ticket: { subject: 'waits' } } })).status).toBe(201);
      await server.runtime.database.db.updateTable('deliveries').set({ next_attempt_at: new Date(dueAt).toISOString() }).execute();
      startedAt = Date.now();
      endpoints = (await worker(db.url)).endpoints;
      const holder = new SQLite(db.url.slice('sqlite:'.length));
      cleanups.push(async () => holder.close());
      holder.exec('begin immediate');
      expect(Date.now(), 'the write lock must be taken before the delivery falls due').toBeLessThan(dueAt);
      release.stuck = async () => void holder.exec('rollback');
    }
    const stuck = await waitFor('health to turn 503 not_claiming', async () => {
      const answer = await health(endpoints);
      if (answer.status === 503) return answer;
      expect(answer.body).toEqual({ status: 'ok' });
      return null;
    }, 60_000);
    // Not before a lease has passed since the worker started (its last claim, there being none).
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(LEASE_SECONDS * 1000);
    expect(stuck.body).toMatchObject({ status: 'unavailable', reason: 'not_claiming' });
    process.stdout.write(`worker health [${dialect}]: claims stuck, 503 not_claiming ${Date.now() - startedAt} ms after the worker started (lease ${LEASE_SECONDS} s)\n`);
    expect(stuck.body.message).toMatch(new RegExp(`^The worker has claimed no delivery since .+, longer than its lease \\(${LEASE_SECONDS} s\\), while a delivery has been due since .+\\.$`));

    await release.stuck();
    await target.waitForRequests(1, 30_000);
    await waitFor('health to turn 200 again', async () => (await health(endpoints)).status === 200, 20_000);
  });
});
