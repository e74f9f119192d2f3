import { Webhook as StandardWebhook } from 'standardwebhooks';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { describeEachDialect } from '../../helpers/dialects.js';
import { startReceiver, type Receiver } from '../../helpers/receiver.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import { waitFor } from '../../helpers/wait.js';

const ALL_EVENTS = ['ticket.created', 'ticket.updated', 'ticket.deleted', 'ticket.assignment.changed', 'ticket.resolved'];

function verify(secret: string, request: { headers: Record<string, string>; body: string }): unknown {
  return new StandardWebhook(secret).verify(request.body, {
    'webhook-id': request.headers['webhook-id']!,
    'webhook-timestamp': request.headers['webhook-timestamp']!,
    'webhook-signature': request.headers['webhook-signature']!,
  });
}

describeEachDialect('delivery', (dialect) => {
  let server: TestServer;
  let receiver: Receiver;

  beforeAll(async () => {
    server = await startTestServer(dialect);
  });
  afterAll(async () => {
    await server.close();
  });
  afterEach(async () => {
    await receiver?.close();
  });

  async function subscribe(events: string[] = ALL_EVENTS, extra: Record<string, unknown> = {}) {
    const response = await server.request('POST', '/webhooks', {
      body: { webhook: { name: 'receiver', targetUrl: receiver.url(), events, ...extra } },
    });
    expect(response.status).toBe(201);
    return response.body.webhook as { id: string; signingSecret: string };
  }

  it('sends each of the five events, signed, with the exact payloads', async () => {
    receiver = await startReceiver();
    const webhook = await subscribe();
    const { userId } = await server.keyFor('agent');

    const created = await server.request('POST', '/tickets', { body: { ticket: { subject: 'Printer on fire', tags: ['hw'] } } });
    expect(created.status).toBe(201);
    const ticket = created.body.ticket;
    const [first] = await receiver.waitForRequests(1);
    expect(verify(webhook.signingSecret, first!)).toEqual({ event: 'ticket.created', timestamp: ticket.createdAt, data: { ticket } });
    expect(first!.headers['x-helpdesk-event']).toBe('ticket.created');
    expect(first!.headers['x-helpdesk-webhook-id']).toBe(webhook.id);
    expect(first!.headers['user-agent']).toMatch(/^Helpdesk-Webhooks\/\d+\.\d+\.\d+$/);
    expect(first!.headers['webhook-id']).toMatch(/^msg_/);
    expect(first!.headers['content-type']).toBe('application/json');
    expect(Math.abs(Number(first!.headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(30);

    const updated = await server.request('PUT', `/tickets/${ticket.id}`, {
      body: { ticket: { status: 'resolved', assigneeId: userId, customFields: { tier: 'gold' } } },
    });
    expect(updated.status).toBe(200);
    const after = updated.body.ticket;
    const requests = await receiver.waitForRequests(4);
    // First attempts start in queue order, but may arrive in any order (docs/delivery.md): put the
    // payloads in queue order (the deliveries' seq) before comparing.
    const queued = await server.runtime.database.db
      .selectFrom('deliveries')
      .select(['id', 'event_type'])
      .where('webhook_id', '=', webhook.id)
      .orderBy('seq')
      .execute();
    expect(queued.map((d) => d.event_type)).toEqual(['ticket.created', 'ticket.updated', 'ticket.assignment.changed', 'ticket.resolved']);
    const byId = new Map(requests.map((r) => [r.headers['webhook-id'], r]));
    const payloads = queued.slice(1).map((d) => verify(webhook.signingSecret, byId.get(d.id)!));
    expect(payloads).toEqual([
      {
        event: 'ticket.updated',
        timestamp: after.updatedAt,
        data: {
          ticket: {
            id: ticket.id,
            version: after.version,
            updatedFields: {
              status: { from: 'open', to: 'resolved' },
              assigneeId: { from: null, to: userId },
              customFields: { from: { tier: null }, to: { tier: 'gold' } },
            },
          },
        },
      },
      { event: 'ticket.assignment.changed', timestamp: after.updatedAt, data: { ticket: after, assignment: { from: null, to: userId } } },
      { event: 'ticket.resolved', timestamp: after.updatedAt, data: { ticket: after } },
    ]);

    expect((await server.request('DELETE', `/tickets/${ticket.id}`)).status).toBe(204);
    const deleted = (await receiver.waitForRequests(5))[4]!;
    expect(verify(webhook.signingSecret, deleted)).toMatchObject({ event: 'ticket.deleted', data: { ticket: { ...after, version: after.version + 1 } } });
    expect(new Set(receiver.requests.map((r) => r.headers['webhook-id'])).size).toBe(5);
  });

  it('retries a failing delivery with the same webhook-id until it succeeds', async () => {
    receiver = await startReceiver({ responder: (_request, index) => (index < 2 ? { status: 500, body: 'boom' } : { status: 204 }) });
    const webhook = await subscribe(['ticket.created']);
    await server.request('POST', '/tickets', { body: { ticket: { subject: 'retry me' } } });
    const requests = await receiver.waitForRequests(3);
    expect(new Set(requests.map((r) => r.headers['webhook-id'])).size).toBe(1);
    for (const request of requests) expect(verify(webhook.signingSecret, request)).toMatchObject({ event: 'ticket.created' });
    const delivery = await waitFor('the delivery to succeed', async () => {
      const row = await server.runtime.database.db.selectFrom('deliveries').selectAll().where('webhook_id', '=', webhook.id).executeTakeFirst();
      return row?.status === 'succeeded' ? row : null;
    });
    expect(delivery.attempt_count).toBe(3);
    const attempts = await server.runtime.database.db.selectFrom('attempts').selectAll().where('delivery_id', '=', delivery.id).orderBy('attempted_at').execute();
    expect(attempts.map((a) => [a.status_code, a.error])).toEqual([[500, 'http_status'], [500, 'http_status'], [204, null]]);
    expect(attempts[0]!.response_body).toBe('boom');
  });

  it('marks a delivery failed once the schedule is spent', async () => {
    receiver = await startReceiver({ responder: () => ({ status: 503 }) });
    const webhook = await subscribe(['ticket.created']);
    await server.request('POST', '/tickets', { body: { ticket: { subject: 'doomed' } } });
    const delivery = await waitFor('the delivery to fail', async () => {
      const row = await server.runtime.database.db.selectFrom('deliveries').selectAll().where('webhook_id', '=', webhook.id).executeTakeFirst();
      return row?.status === 'failed' ? row : null;
    });
    // The test schedule has three retries: four attempts in all, and no fifth.
    expect(delivery.attempt_count).toBe(4);
    expect(receiver.requests).toHaveLength(4);
    expect(delivery.next_attempt_at).toBeNull();
  });

  it('sends nothing to an inactive or unsubscribed webhook', async () => {
    receiver = await startReceiver();
    const inactive = await subscribe(['ticket.created'], { active: false });
    const other = await subscribe(['ticket.deleted']);
    const watcher = await subscribe(['ticket.created']);
    await server.request('POST', '/tickets', { body: { ticket: { subject: 'only the watcher hears' } } });
    const [request] = await receiver.waitForRequests(1);
    expect(request!.headers['x-helpdesk-webhook-id']).toBe(watcher.id);
    const rows = await server.runtime.database.db.selectFrom('deliveries').select('webhook_id').where('webhook_id', 'in', [inactive.id, other.id]).execute();
    expect(rows).toEqual([]);
  });

  it('does not follow redirects', async () => {
    receiver = await startReceiver({ responder: () => ({ status: 302, headers: { location: 'https://localhost:1/elsewhere' } }) });
    const webhook = await subscribe(['ticket.created']);
    await server.request('POST', '/tickets', { body: { ticket: { subject: 'redirected' } } });
    const attempt = await waitFor('an attempt', async () =>
      server.runtime.database.db
        .selectFrom('attempts')
        .innerJoin('deliveries', 'deliveries.id', 'attempts.delivery_id')
        .select(['attempts.error', 'attempts.status_code'])
        .where('deliveries.webhook_id', '=', webhook.id)
        .executeTakeFirst(),
    );
    expect(attempt).toEqual({ error: 'redirect', status_code: 302 });
  });
});

describeEachDialect('delivery to a blocked address', (dialect) => {
  it('refuses a host name that resolves to loopback and records blocked_address', async () => {
    const receiver = await startReceiver({ host: 'localhost' });
    const server = await startTestServer(dialect, { env: { HELPDESK_ALLOW_PRIVATE_TARGETS: 'false' } });
    try {
      const created = await server.request('POST', '/webhooks', {
        body: { webhook: { name: 'sneaky', targetUrl: receiver.url(), events: ['ticket.created'] } },
      });
      expect(created.status).toBe(201);
      await server.request('POST', '/tickets', { body: { ticket: { subject: 'ssrf?' } } });
      const attempt = await waitFor('an attempt', async () => server.runtime.database.db.selectFrom('attempts').select(['error', 'status_code']).executeTakeFirst());
      expect(attempt).toEqual({ error: 'blocked_address', status_code: null });
      expect(receiver.requests).toHaveLength(0);
    } finally {
      await server.close();
      await receiver.close();
    }
  });
});
