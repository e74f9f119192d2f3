/**
 * LISTEN/NOTIFY on PostgreSQL: a worker in another process (here another runtime on the same
 * database) starts on a new event at once, not at its next poll. The worker's poll interval is
 * set to a minute, longer than any wait below, so a delivery within the wait proves the
 * notification woke it.
 */
import pg from 'pg';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { startReceiver, type Receiver } from '../../helpers/receiver.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import { waitFor } from '../../helpers/wait.js';

// PostgreSQL only: SQLite has no notification channel (its workers poll), so there is nothing to run there.
const postgresMissing = !inject('postgresAvailable');
describe.skipIf(postgresMissing)(`wake-ups across processes [postgres${postgresMissing ? ': SKIPPED, PostgreSQL not reachable' : ''}]`, () => {
  const dialect = 'postgres';
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function apiAndWorker(): Promise<{ api: TestServer; worker: TestServer; receiver: Receiver }> {
    const receiver = await startReceiver();
    cleanups.push(() => receiver.close());
    const api = await startTestServer(dialect, { startWorker: false });
    cleanups.push(() => api.close());
    const worker = await startTestServer(dialect, { database: api.database, startWorker: false, runtime: { worker: { pollIntervalMs: 60_000 } } });
    cleanups.push(() => worker.close());
    await worker.runtime.startWorker();
    const created = await api.request('POST', '/webhooks', { body: { webhook: { name: 'woken', targetUrl: receiver.url(), events: ['ticket.created'] } } });
    expect(created.status).toBe(201);
    return { api, worker, receiver };
  }

  it('wakes an idle worker in another process as soon as an event commits', async () => {
    const { api, receiver } = await apiAndWorker();
    // Idle: its first claim found nothing and it sleeps for the poll interval.
    await api.request('POST', '/tickets', { body: { ticket: { subject: 'wake up' } } });
    const [request] = await receiver.waitForRequests(1, 10_000);
    expect(JSON.parse(request!.body)).toMatchObject({ event: 'ticket.created', data: { ticket: { subject: 'wake up' } } });
  });

  it('listens again after its notification connection is cut', async () => {
    const { api, receiver } = await apiAndWorker();
    const admin = new pg.Client({ connectionString: api.database.url });
    await admin.connect();
    cleanups.push(() => admin.end());
    const listening = async () =>
      (await admin.query("select pid from pg_stat_activity where datname = current_database() and query = 'listen helpdesk_deliveries'")).rows as { pid: number }[];
    const [before] = await waitFor('the worker to listen', async () => ((await listening()).length === 1 ? listening() : null));
    await admin.query('select pg_terminate_backend($1)', [before!.pid]);
    await waitFor('the worker to listen again', async () => (await listening()).some((row) => row.pid !== before!.pid));
    await api.request('POST', '/tickets', { body: { ticket: { subject: 'after reconnect' } } });
    const [request] = await receiver.waitForRequests(1, 10_000);
    expect(JSON.parse(request!.body)).toMatchObject({ data: { ticket: { subject: 'after reconnect' } } });
  });
});
