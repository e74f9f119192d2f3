/**
 * Per-ticket order across processes (docs/delivery.md, "Order"), with the real program on
 * PostgreSQL: one API-only `serve` and three `helpdesk worker` processes share the database while
 * 40 tickets take 25 changes each, the receiver refuses about 15% of first attempts, and the
 * worker holding one ticket's fifth version on the wire is killed with SIGKILL. Every ticket must
 * still land as versions 1..26, each delivered, none attempted before the one below it was
 * delivered (the killed worker's delivery is sent again once its lease runs out, and the ticket
 * waits for it).
 */
import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import pg from 'pg';
import { Pool } from 'undici';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/databases.js';
import { freePort, spawnHelpdesk, spawnWorker } from '../helpers/processes.js';
import { startReceiver, type Reply } from '../helpers/receiver.js';
import { waitFor } from '../helpers/wait.js';

const TOKEN = 'ordered-workers-admin-token-0123';
const TICKETS = 40;
const CHANGES = 25;
const LEASE_SECONDS = 20;

function helpdeskEnv(database: TestDatabase): Record<string, string> {
  return {
    HELPDESK_DATABASE_URL: database.url,
    HELPDESK_ADMIN_TOKEN: TOKEN,
    HELPDESK_ALLOW_PRIVATE_TARGETS: 'true',
    HELPDESK_DELIVERY_LEASE_SECONDS: String(LEASE_SECONDS),
    HELPDESK_RETRY_SCHEDULE: '0.05,0.1,0.2,0.2,0.2,0.2',
    HELPDESK_LOG_LEVEL: 'warn',
    HELPDESK_RATE_LIMIT: '1000000',
    NODE_EXTRA_CA_CERTS: inject('tls').caPath,
  };
}

interface Attempt {
  ticketId: string;
  version: number;
  answered: number;
}

const postgresMissing = !inject('postgresAvailable');
describe.skipIf(postgresMissing)(`per-ticket order across three workers, one killed [postgres${postgresMissing ? ': SKIPPED, PostgreSQL not reachable' : ''}]`, () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  });

  it('lands every ticket as versions 1..N in order when a worker dies holding one of them', { timeout: 240_000 }, async () => {
    const database = await createTestDatabase('postgres');
    cleanups.push(() => database.drop());
    const sql = new pg.Client({ connectionString: database.url });
    await sql.connect();
    cleanups.push(() => sql.end());

    let victimTicket = '';
    let heldDeliveryId = '';
    let heldResponse: ServerResponse | null = null;
    const attempts: Attempt[] = [];
    const seen = new Set<string>();
    const receiver = await startReceiver({
      host: '127.0.0.1',
      responder: (request): Reply => {
        const payload = JSON.parse(request.body) as { data: { ticket: { id: string; version: number } } };
        const id = request.headers['webhook-id']!;
        const first = !seen.has(id);
        seen.add(id);
        const attempt = { ticketId: payload.data.ticket.id, version: payload.data.ticket.version, answered: 0 };
        attempts.push(attempt);
        if (first && attempt.ticketId === victimTicket && attempt.version === 5) {
          heldDeliveryId = id;
          return { takeOver: (response) => (heldResponse = response) };
        }
        attempt.answered = first && createHash('sha256').update(id).digest()[0]! < 0.15 * 256 ? 500 : 204;
        return { status: attempt.answered };
      },
    });
    cleanups.push(() => receiver.close());

    const port = await freePort();
    const api = spawnHelpdesk('serve', { ...helpdeskEnv(database), HELPDESK_PORT: String(port), HELPDESK_SERVE_WORKER: 'false' });
    const base = `http://127.0.0.1:${port}`;
    cleanups.push(async () => api.child.exitCode === null && api.child.kill('SIGKILL'));
    await waitFor(`the API to answer (output: ${api.output()})`, () => fetch(`${base}/healthz`).then((r) => r.ok, () => false), 20_000);
    const workers = await Promise.all(
      Array.from({ length: 3 }, async () => {
        const worker = await spawnWorker(helpdeskEnv(database));
        cleanups.push(async () => worker.child.exitCode === null && worker.child.kill('SIGKILL'));
        return worker;
      }),
    );

    const pool = new Pool(base, { connections: 16 });
    cleanups.push(() => pool.close());
    const call = async (method: 'POST' | 'PUT', path: string, body: unknown) => {
      const response = await pool.request({ path: `/helpdesk/api/v1${path}`, method, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const text = await response.body.text();
      expect(response.statusCode, text).toBeLessThan(300);
      return JSON.parse(text);
    };
    await call('POST', '/webhooks', { webhook: { name: 'sync', targetUrl: receiver.url(), events: ['ticket.created', 'ticket.updated'] } });
    const tickets: string[] = [];
    for (let i = 0; i < TICKETS; i += 1) tickets.push((await call('POST', '/tickets', { ticket: { subject: `ticket ${i}` } })).ticket.id);
    victimTicket = tickets[0]!;

    // Every ticket's changes, interleaved, 16 at a time.
    const changes = Array.from({ length: TICKETS * CHANGES }, (_, i) => ({ ticketId: tickets[i % TICKETS]!, n: i }));
    const changing = Promise.all(
      Array.from({ length: 16 }, async () => {
        for (let change = changes.shift(); change; change = changes.shift()) {
          await call('PUT', `/tickets/${change.ticketId}`, { ticket: { customFields: { [`n${change.n}`]: change.n } } });
        }
      }),
    );

    // The worker with the victim's fifth version on the wire dies without a word.
    await waitFor('the fifth version of the first ticket on the wire', () => heldResponse !== null, 60_000);
    const holder = (await sql.query('select leased_by from deliveries where id = $1', [heldDeliveryId])).rows[0]?.leased_by as string;
    const victim = workers.find((w) => w.id === holder)!;
    expect(victim).toBeDefined();
    victim.child.kill('SIGKILL');
    expect((await victim.exited).signal).toBe('SIGKILL');
    heldResponse!.socket?.destroy();

    await changing;
    const expected = TICKETS * (CHANGES + 1);
    await waitFor(
      'every version delivered',
      () => new Set(attempts.filter((a) => a.answered === 204).map((a) => `${a.ticketId} ${a.version}`)).size === expected,
      150_000,
    );
    for (const ticketId of tickets) {
      const mine = attempts.filter((a) => a.ticketId === ticketId);
      const delivered = [...new Set(mine.filter((a) => a.answered === 204).map((a) => a.version))];
      expect(delivered, `versions of ${ticketId} as delivered`).toEqual(Array.from({ length: CHANGES + 1 }, (_, i) => i + 1));
      const attempted = mine.map((a) => a.version);
      expect(attempted, `versions of ${ticketId} as attempted`).toEqual([...attempted].sort((a, b) => a - b));
    }
    // The victim's fifth version went out again, after its lease ran out, before its sixth.
    const victimAttempts = attempts.filter((a) => a.ticketId === victimTicket).map((a) => a.version);
    expect(victimAttempts.filter((v) => v === 5).length).toBeGreaterThanOrEqual(2);
    process.stdout.write(`ordered workers: ${TICKETS} tickets × ${CHANGES + 1} versions in order across 3 workers, one killed holding version 5; ${attempts.length} attempts\n`);

    const survivors = workers.filter((w) => w !== victim);
    for (const p of [api, ...survivors]) p.child.kill('SIGTERM');
    for (const p of [api, ...survivors]) expect(await p.exited).toEqual({ code: 0, signal: null });
  });
});
