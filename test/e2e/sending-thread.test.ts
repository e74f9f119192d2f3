/**
 * HELPDESK_SENDING_THREAD=true (docs/configuration.md): the real program sends its attempts from
 * a thread of its own. Every event reaches an HTTPS receiver, signed and verifiable, a receiver's
 * failure is recorded and retried as inline, and the process still stops cleanly. The in-process
 * suites cover the default, sending from the main thread.
 */
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/databases.js';
import { describeEachDialect } from '../helpers/dialects.js';
import { freePort, spawnHelpdesk, type HelpdeskProcess } from '../helpers/processes.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { ADMIN_TOKEN, API, SECRET_KEY } from '../helpers/server.js';
import { verifies } from '../helpers/signatures.js';
import { waitFor } from '../helpers/wait.js';

const TICKETS = 40;

describeEachDialect('attempts sent from the sending thread', (dialect) => {
  let database: TestDatabase;
  let receiver: Receiver;
  let server: HelpdeskProcess;
  let base: string;
  const headers = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' };
  /** The webhook-ids whose first attempt was refused. */
  const retried = new Set<string>();

  beforeAll(async () => {
    database = await createTestDatabase(dialect);
    // The first attempt of every fifth ticket is refused: its retry must come from the thread too.
    receiver = await startReceiver({ responder: (request) => (/"subject":"thread [0-9]*[05]"/.test(request.body) && !retried.has(request.headers['webhook-id']!) ? (retried.add(request.headers['webhook-id']!), { status: 503 }) : { status: 200 }) });
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    server = spawnHelpdesk('serve', {
      HELPDESK_DATABASE_URL: database.url,
      HELPDESK_ADMIN_TOKEN: ADMIN_TOKEN,
      HELPDESK_SECRET_KEY: SECRET_KEY,
      HELPDESK_ALLOW_PRIVATE_TARGETS: 'true',
      HELPDESK_RETRY_SCHEDULE: '0.1',
      HELPDESK_LOG_LEVEL: 'info',
      HELPDESK_PORT: String(port),
      HELPDESK_SENDING_THREAD: 'true',
      NODE_EXTRA_CA_CERTS: inject('tls').caPath,
    });
    await waitFor(`serve to answer /healthz (output: ${server.output()})`, async () => {
      if (server.child.exitCode !== null) throw new Error(`serve exited: ${server.output()}`);
      return fetch(`${base}/healthz`).then((r) => r.ok, () => false);
    });
  });
  afterAll(async () => {
    if (server?.child.exitCode === null) server.child.kill('SIGKILL');
    await receiver?.close();
    await database?.drop();
  });

  it('delivers every event signed, retries a refused one, and stops cleanly', async () => {
    // The worker starts once the server listens and its thread is ready.
    await waitFor('the worker to start', () => /"sendingThread":true[^\n]*delivery worker started/.test(server.output()));
    const created = await fetch(`${base}${API}/webhooks`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ webhook: { name: 'thread', targetUrl: receiver.url(), events: ['ticket.created'] } }),
    });
    expect(created.status).toBe(201);
    const { webhook } = (await created.json()) as { webhook: { id: string; signingSecret: string } };
    const tickets = await Promise.all(
      Array.from({ length: TICKETS }, async (_, i) => {
        const response = await fetch(`${base}${API}/tickets`, { method: 'POST', headers, body: JSON.stringify({ ticket: { subject: `thread ${i}` } }) });
        expect(response.status).toBe(201);
        return ((await response.json()) as { ticket: { id: string } }).ticket.id;
      }),
    );
    const refused = tickets.filter((_, i) => i % 5 === 0).length;
    await receiver.waitForRequests(TICKETS + refused, 30_000);
    await waitFor('every delivery to succeed', async () => {
      const response = await fetch(`${base}${API}/webhooks/${webhook.id}/deliveries?limit=100`, { headers });
      const { deliveries } = (await response.json()) as { deliveries: { status: string }[] };
      return deliveries.length === TICKETS && deliveries.every((d) => d.status === 'succeeded');
    });
    const delivered = receiver.requests.filter((r) => r.headers['webhook-id'] !== undefined);
    expect(delivered.every((r) => verifies(webhook.signingSecret, r))).toBe(true);
    const arrived = new Set(delivered.map((r) => (JSON.parse(r.body) as { data: { ticket: { id: string } } }).data.ticket.id));
    expect([...arrived].sort()).toEqual([...tickets].sort());
    expect(retried.size).toBe(refused);

    server.child.kill('SIGTERM');
    expect(await server.exited, server.output()).toEqual({ code: 0, signal: null });
  });
});
