/**
 * A rate limit held across worker processes (docs/delivery.md, "Rate limits"), with the real
 * program on PostgreSQL: an API-only `serve` queues a backlog, then two `helpdesk worker`
 * processes deliver it. The receiver, in this process, must see no more than the limit in any
 * window, each delivery once and on its first attempt, and both workers must have claimed some (else
 * the test would say nothing about two of them sharing the webhook's send slots).
 */
import pg from 'pg';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { busiestWindow } from '../helpers/arrivals.js';
import { createTestDatabase } from '../helpers/databases.js';
import { freePort, processEnv, spawnHelpdesk, spawnWorker, type HelpdeskProcess } from '../helpers/processes.js';
import { startReceiver } from '../helpers/receiver.js';
import { waitFor } from '../helpers/wait.js';

const TOKEN = 'rate-limit-admin-token-0123456789';
const LIMIT = 5;
const BACKLOG = 60;
const WINDOW_MS = 2_000;

const postgresMissing = !inject('postgresAvailable');
describe.skipIf(postgresMissing)(`a rate limit across two worker processes [postgres${postgresMissing ? ': SKIPPED, PostgreSQL not reachable' : ''}]`, () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  });

  it(`sends ${BACKLOG} queued deliveries at no more than ${LIMIT} a second in any ${WINDOW_MS} ms`, { timeout: 120_000 }, async () => {
    const database = await createTestDatabase('postgres');
    cleanups.push(() => database.drop());
    const receiver = await startReceiver();
    cleanups.push(() => receiver.close());
    const env = processEnv(database.url, TOKEN);
    const port = await freePort();
    const api: HelpdeskProcess = spawnHelpdesk('serve', { ...env, HELPDESK_PORT: String(port), HELPDESK_SERVE_WORKER: 'false' });
    cleanups.push(async () => api.child.exitCode === null && api.child.kill('SIGKILL'));
    const base = `http://127.0.0.1:${port}/helpdesk/api/v1`;
    await waitFor(`the API to answer (output: ${api.output()})`, () => fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false), 20_000);
    const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
    const created = await fetch(`${base}/webhooks`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ webhook: { name: 'limited', targetUrl: receiver.url('/limited'), events: ['ticket.created'], rateLimit: LIMIT } }),
    });
    expect(created.status).toBe(201);
    for (let i = 0; i < BACKLOG; i += 1) {
      const ticket = await fetch(`${base}/tickets`, { method: 'POST', headers, body: JSON.stringify({ ticket: { subject: `t${i}` } }) });
      expect(ticket.status).toBe(201);
    }

    const workers = await Promise.all([spawnWorker(env), spawnWorker(env)]);
    for (const worker of workers) cleanups.push(async () => worker.child.exitCode === null && worker.child.kill('SIGKILL'));
    const sql = new pg.Client({ connectionString: database.url });
    await sql.connect();
    cleanups.push(() => sql.end());
    // Which worker made each attempt is not stored; which ones held leases is, for a moment:
    // sampled until the backlog is in.
    const claimedBy = new Set<string>();
    await waitFor(
      'the backlog to arrive',
      async () => {
        for (const row of (await sql.query('select distinct leased_by from deliveries where leased_by is not null')).rows as { leased_by: string }[]) claimedBy.add(row.leased_by);
        return receiver.requests.length >= BACKLOG;
      },
      60_000,
    );
    expect(receiver.requests).toHaveLength(BACKLOG);
    expect(new Set(receiver.requests.map((r) => r.headers['webhook-id'])).size).toBe(BACKLOG);
    expect(busiestWindow(receiver.requests.map((r) => r.receivedAt), WINDOW_MS)).toBeLessThanOrEqual((LIMIT * WINDOW_MS) / 1000);
    expect([...claimedBy].sort()).toEqual(workers.map((w) => w.id).sort());

    await waitFor('every delivery recorded', async () => Number((await sql.query("select count(*) as n from deliveries where status = 'succeeded'")).rows[0].n) === BACKLOG);
    expect((await sql.query('select max(attempt_count) as most from deliveries')).rows[0].most).toBe(1);

    for (const p of [api, ...workers]) p.child.kill('SIGTERM');
    for (const p of [api, ...workers]) expect(await p.exited).toEqual({ code: 0, signal: null });
  });
});
