/**
 * Scale-out on PostgreSQL, with the real program: two API-only `serve` processes and three
 * `helpdesk worker` processes share one database. 20,000 events go in through both APIs; half-way
 * through delivery the busiest worker is killed with SIGKILL. Every event must reach the receiver
 * at least once, and the only duplicates allowed are deliveries the killed worker held a lease on
 * when it died (it may have sent them without recording it; another worker takes them over when
 * the lease runs out).
 */
import pg from 'pg';
import { Pool } from 'undici';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/databases.js';
import { freePort, spawnHelpdesk, spawnWorker, type HelpdeskProcess } from '../helpers/processes.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { waitFor } from '../helpers/wait.js';

const TOKEN = 'scale-out-admin-token-0123456789';
const EVENTS = 20_000;
const LEASE_SECONDS = 20;

type Process = HelpdeskProcess;

function startHelpdesk(command: 'serve' | 'worker', database: TestDatabase, env: Record<string, string>): Process {
  return spawnHelpdesk(command, { ...helpdeskEnv(database), ...env });
}

function helpdeskEnv(database: TestDatabase): Record<string, string> {
  return {
    HELPDESK_DATABASE_URL: database.url,
    HELPDESK_ADMIN_TOKEN: TOKEN,
    HELPDESK_ALLOW_PRIVATE_TARGETS: 'true',
    HELPDESK_DELIVERY_LEASE_SECONDS: String(LEASE_SECONDS),
    HELPDESK_LOG_LEVEL: 'warn',
    // 20,000 tickets through two APIs with one key.
    HELPDESK_RATE_LIMIT: '1000000',
    NODE_EXTRA_CA_CERTS: inject('tls').caPath,
  };
}

async function startApi(database: TestDatabase): Promise<Process & { base: string }> {
  const port = await freePort();
  const api = startHelpdesk('serve', database, { HELPDESK_PORT: String(port), HELPDESK_SERVE_WORKER: 'false' });
  const base = `http://127.0.0.1:${port}`;
  await waitFor(`the API to answer (output: ${api.output()})`, () => fetch(`${base}/healthz`).then((r) => r.ok, () => false), 20_000);
  return { ...api, base };
}

/** A worker, with the id its leases carry in the database. */
function startWorker(database: TestDatabase): Promise<Process & { id: string }> {
  return spawnWorker(helpdeskEnv(database));
}

const postgresMissing = !inject('postgresAvailable');
describe.skipIf(postgresMissing)(`scale-out: two APIs and three workers on one PostgreSQL [postgres${postgresMissing ? ': SKIPPED, PostgreSQL not reachable' : ''}]`, () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  });

  it('delivers every event at least once when a worker is killed half-way, duplicating only what it held', { timeout: 300_000 }, async () => {
    const database = await createTestDatabase('postgres');
    cleanups.push(() => database.drop());
    const receiver: Receiver = await startReceiver({ host: '127.0.0.1' });
    cleanups.push(() => receiver.close());
    const sql = new pg.Client({ connectionString: database.url });
    await sql.connect();
    cleanups.push(() => sql.end());

    const apis = [await startApi(database), await startApi(database)];
    const workers = await Promise.all([startWorker(database), startWorker(database), startWorker(database)]);
    for (const p of [...apis, ...workers]) cleanups.push(async () => p.child.exitCode === null && p.child.kill('SIGKILL'));

    const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
    const created = await fetch(`${apis[0]!.base}/helpdesk/api/v1/webhooks`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ webhook: { name: 'scale-out', targetUrl: receiver.url(), events: ['ticket.created'] } }),
    });
    expect(created.status).toBe(201);

    // 20,000 tickets, alternating between the two APIs, 32 at a time.
    const pools = apis.map((api) => new Pool(api.base, { connections: 16 }));
    cleanups.push(() => Promise.all(pools.map((p) => p.close())));
    let next = 0;
    const statuses: number[] = [];
    const send = async () => {
      for (let i = next++; i < EVENTS; i = next++) {
        const response = await pools[i % 2]!.request({
          path: '/helpdesk/api/v1/tickets',
          method: 'POST',
          headers,
          body: JSON.stringify({ ticket: { subject: `scale-out ${i}` } }),
        });
        await response.body.dump();
        statuses.push(response.statusCode);
      }
    };
    const sending = Promise.all(Array.from({ length: 32 }, send));

    // Half-way through delivery, the worker holding the most leases dies without a word.
    await receiver.waitForRequests(EVENTS / 2, 240_000);
    const held = async (id: string) =>
      Number((await sql.query('select count(*) as n from deliveries where leased_by = $1 and lease_expires_at > $2', [id, new Date().toISOString()])).rows[0].n);
    const victim = await waitFor('a worker holding leases', async () => {
      const counts: { worker: (typeof workers)[number]; held: number }[] = [];
      for (const worker of workers) counts.push({ worker, held: await held(worker.id) });
      const busiest = counts.reduce((a, b) => (b.held > a.held ? b : a));
      return busiest.held > 0 ? busiest.worker : null;
    });
    victim.child.kill('SIGKILL');
    expect((await victim.exited).signal).toBe('SIGKILL');
    // Dead, its leases are frozen: these are the only deliveries that may arrive twice.
    const orphaned = new Set<string>(
      (await sql.query('select id from deliveries where leased_by = $1', [victim.id])).rows.map((row: { id: string }) => row.id),
    );

    await sending;
    expect(statuses.filter((s) => s !== 201)).toEqual([]);
    // The survivors take the orphaned deliveries over once their lease runs out.
    await waitFor(
      'every delivery to succeed',
      async () => Number((await sql.query("select count(*) as n from deliveries where status = 'succeeded'")).rows[0].n) === EVENTS,
      120_000,
    );

    const queued: string[] = (await sql.query('select id from deliveries')).rows.map((row: { id: string }) => row.id);
    expect(queued).toHaveLength(EVENTS);
    const received = new Map<string, number>();
    for (const request of receiver.requests) received.set(request.headers['webhook-id']!, (received.get(request.headers['webhook-id']!) ?? 0) + 1);
    expect(queued.filter((id) => !received.has(id))).toEqual([]);
    const duplicated = [...received].filter(([, times]) => times > 1).map(([id]) => id);
    expect(duplicated.filter((id) => !orphaned.has(id))).toEqual([]);
    // The victim's leases were all taken over: nothing is left held.
    const survivors = workers.filter((w) => w !== victim);
    expect(Number((await sql.query('select count(*) as n from deliveries where leased_by is not null')).rows[0].n)).toBe(0);
    process.stdout.write(`scale-out: ${EVENTS} events, killed worker held ${orphaned.size} leases, ${duplicated.length} duplicates, 0 lost\n`);

    for (const p of [...apis, ...survivors]) p.child.kill('SIGTERM');
    for (const p of [...apis, ...survivors]) expect(await p.exited).toEqual({ code: 0, signal: null });
  });
});
