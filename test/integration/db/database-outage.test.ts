/**
 * PostgreSQL unreachable for 10 s under a running server (through a TCP proxy the test cuts, so
 * the shared database keeps serving the other test files): every request meanwhile is answered
 * 503 `unavailable` with Retry-After in the documented error body, never a 500, and nothing of
 * it is written; the worker keeps trying; when the database is back, the API and the worker
 * recover by themselves, and every event acknowledged before or after is delivered. /healthz
 * answers 503 meanwhile (this serve runs a worker), 200 after.
 */
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../helpers/databases.js';
import { startReceiver, type Receiver } from '../../helpers/receiver.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import { startTcpProxy, type TcpProxy } from '../../helpers/tcp-proxy.js';
import { waitFor } from '../../helpers/wait.js';

const OUTAGE_MS = 10_000;

const postgresMissing = !inject('postgresAvailable');
describe.skipIf(postgresMissing)(`database outage [postgres${postgresMissing ? ': SKIPPED, PostgreSQL not reachable' : ''}]`, () => {
  let database: TestDatabase;
  let proxy: TcpProxy;
  let receiver: Receiver;
  let server: TestServer;

  afterAll(async () => {
    await server?.close();
    await proxy?.close();
    await receiver?.close();
    await database?.drop();
  });

  it('answers 503 while PostgreSQL is unreachable, then recovers by itself with nothing lost', { timeout: 60_000 }, async () => {
    database = await createTestDatabase('postgres');
    const direct = new URL(database.url);
    proxy = await startTcpProxy(direct.hostname, Number(direct.port || 5432));
    const proxied = new URL(database.url);
    proxied.hostname = '127.0.0.1';
    proxied.port = String(proxy.port);
    receiver = await startReceiver();
    server = await startTestServer('postgres', { database: { dialect: 'postgres', url: proxied.toString(), drop: async () => undefined } });

    const webhook = await server.request('POST', '/webhooks', { body: { webhook: { name: 'outage', targetUrl: receiver.url(), events: ['ticket.created'] } } });
    expect(webhook.status).toBe(201);
    const acknowledged: string[] = [];
    const create = async (subject: string) => {
      const response = await server.request('POST', '/tickets', { body: { ticket: { subject } } });
      if (response.status === 201) acknowledged.push(response.body.ticket.id as string);
      return response;
    };
    expect((await create('before the outage')).status).toBe(201);
    await receiver.waitForRequests(1);

    proxy.cut();
    const during: number[] = [];
    const outageEnds = Date.now() + OUTAGE_MS;
    let sample: Awaited<ReturnType<typeof create>> | null = null;
    for (let i = 0; Date.now() < outageEnds; i += 1) {
      const response = i % 2 === 0 ? await create(`during the outage ${i}`) : await server.request('GET', '/tickets');
      during.push(response.status);
      sample ??= response;
      await new Promise((resolve) => setTimeout(resolve, 100)); // paces the requests; nothing waits on it
    }
    expect(during.length).toBeGreaterThan(10);
    expect(during.filter((status) => status !== 503)).toEqual([]);
    expect(sample!.headers['retry-after']).toBe('5');
    expect(sample!.body.error).toMatchObject({ code: 'unavailable', requestId: sample!.headers['x-request-id'] });
    expect(acknowledged).toHaveLength(1);
    // serve runs a worker here, so its /healthz says the database is out, within the check's bound.
    const checkedAt = Date.now();
    const health = await server.request('GET', '/healthz', { key: null });
    expect(Date.now() - checkedAt).toBeLessThan(4_000);
    expect(health.status).toBe(503);
    expect(health.body).toMatchObject({ status: 'unavailable', reason: 'database_unreachable' });

    proxy.restore();
    await waitFor('the API to take tickets again', async () => (await create('after the outage')).status === 201, 20_000);
    expect(await server.request('GET', '/healthz', { key: null })).toMatchObject({ status: 200, body: { status: 'ok' } });
    // The worker delivers what was acknowledged, the ticket after the outage included.
    await waitFor('every acknowledged ticket to be delivered', () => receiver.requests.length >= acknowledged.length, 20_000);
    const delivered = new Set(receiver.requests.map((r) => (JSON.parse(r.body) as { data: { ticket: { id: string } } }).data.ticket.id));
    expect(acknowledged.filter((id) => !delivered.has(id))).toEqual([]);
    // Nothing of the refused requests went in.
    const tickets = await server.runtime.database.db.selectFrom('tickets').select('id').execute();
    expect(tickets.map((t) => t.id).sort()).toEqual([...acknowledged].sort());
    process.stdout.write(`database outage: ${during.length} requests in ${OUTAGE_MS / 1000} s, all 503; ${acknowledged.length} tickets acknowledged, 0 lost\n`);
  });
});
