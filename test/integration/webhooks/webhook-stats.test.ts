/**
 * GET /webhooks/:id/stats: what the console's webhook table shows. Attempts and their success
 * rate since a time (24 h by default), the deliveries created since by status, and the delivery
 * attempted last, from real deliveries to a real HTTPS receiver.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachDialect } from '../../helpers/dialects.js';
import { startReceiver, type Receiver } from '../../helpers/receiver.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import { waitFor } from '../../helpers/wait.js';

describeEachDialect('webhook stats', (dialect) => {
  let server: TestServer;
  let receiver: Receiver;

  beforeAll(async () => {
    // Two retries, quickly: a delivery that keeps failing ends `failed` within a second.
    server = await startTestServer(dialect, { env: { HELPDESK_RETRY_SCHEDULE: '0.05,0.05' } });
    receiver = await startReceiver();
  });
  afterAll(async () => {
    await server.close();
    await receiver.close();
  });

  it('counts attempts and deliveries, gives the success rate, and names the last delivery', async () => {
    const created = await server.request('POST', '/webhooks', { body: { webhook: { name: 'stats', targetUrl: receiver.url(), events: ['ticket.created'] } } });
    const id = created.body.webhook.id;
    const empty = await server.request('GET', `/webhooks/${id}/stats`);
    expect(empty.status).toBe(200);
    expect(empty.body.stats).toMatchObject({ attempts: { total: 0, succeeded: 0, failed: 0 }, successRate: null, deliveries: { pending: 0, succeeded: 0, failed: 0 }, deliverySuccessRate: null, lastDelivery: null });
    // This process runs the worker: its breaker for the webhook is known, and closed.
    expect(empty.body.stats.breaker).toEqual({ state: 'closed', pausedUntil: null, reason: null });
    expect(Date.now() - Date.parse(empty.body.stats.since)).toBeGreaterThanOrEqual(24 * 3600 * 1000 - 60_000);

    // One delivery that succeeds at once, one that fails its three attempts.
    receiver.respondWith((_request, index) => (index === 0 ? { status: 204 } : { status: 500, body: 'down' }));
    await server.request('POST', '/tickets', { body: { ticket: { subject: 'one' } } });
    await receiver.waitForRequests(1);
    await server.request('POST', '/tickets', { body: { ticket: { subject: 'two' } } });
    const stats = await waitFor('the second delivery to fail', async () => {
      const response = await server.request('GET', `/webhooks/${id}/stats`);
      return response.body.stats.deliveries.failed === 1 ? response.body.stats : null;
    });
    expect(stats).toMatchObject({ attempts: { total: 4, succeeded: 1, failed: 3 }, successRate: 0.25, deliveries: { pending: 0, succeeded: 1, failed: 1 }, deliverySuccessRate: 0.5 });
    expect(stats.lastDelivery).toMatchObject({ webhookId: id, status: 'failed', attemptCount: 3, lastStatusCode: 500 });

    // Since now: nothing in the window, and the last delivery still named.
    const later = await server.request('GET', `/webhooks/${id}/stats?since=${new Date(Date.now() + 1000).toISOString()}`);
    expect(later.body.stats).toMatchObject({ attempts: { total: 0 }, successRate: null, deliveries: { pending: 0, succeeded: 0, failed: 0 }, lastDelivery: { id: stats.lastDelivery.id } });
  });

  it('tells deliveries from attempts: every delivery succeeding on its first retry is 100 % of deliveries and 50 % of attempts', async () => {
    const created = await server.request('POST', '/webhooks', { body: { webhook: { name: 'retried', targetUrl: receiver.url(), events: ['ticket.created'] } } });
    const id = created.body.webhook.id;
    // Each delivery's first attempt fails and its retry succeeds.
    const seen = new Set<string>();
    receiver.respondWith((request) => {
      const first = !seen.has(request.headers['webhook-id']!);
      seen.add(request.headers['webhook-id']!);
      return first ? { status: 503 } : { status: 200 };
    });
    await server.request('POST', '/tickets', { body: { ticket: { subject: 'a' } } });
    await server.request('POST', '/tickets', { body: { ticket: { subject: 'b' } } });
    const stats = await waitFor('both deliveries to succeed', async () => {
      const response = await server.request('GET', `/webhooks/${id}/stats`);
      return response.body.stats.deliveries.succeeded === 2 ? response.body.stats : null;
    });
    expect(stats).toMatchObject({ attempts: { total: 4, succeeded: 2, failed: 2 }, successRate: 0.5, deliveries: { pending: 0, succeeded: 2, failed: 0 }, deliverySuccessRate: 1 });
    await server.request('DELETE', `/webhooks/${id}`);
  });

  it('refuses a since that is not a time, and an unknown webhook', async () => {
    const created = await server.request('POST', '/webhooks', { body: { webhook: { name: 'stats', targetUrl: receiver.url(), events: ['ticket.deleted'] } } });
    const bad = await server.request('GET', `/webhooks/${created.body.webhook.id}/stats?since=yesterday`);
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: 'validation_failed', details: [expect.objectContaining({ path: 'since' })] });
    const impossible = await server.request('GET', `/webhooks/${created.body.webhook.id}/stats?since=2026-02-30T00:00:00Z`);
    expect(impossible.status).toBe(400);
    const unknown = await server.request('GET', '/webhooks/whk_nothing/stats');
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('not_found');
  });

  it('gives no breaker in a process that runs no worker (the breakers live in the workers)', async () => {
    const apiOnly = await startTestServer(dialect, { startWorker: false });
    try {
      const created = await apiOnly.request('POST', '/webhooks', { body: { webhook: { name: 'api only', targetUrl: receiver.url(), events: ['ticket.created'] } } });
      const stats = await apiOnly.request('GET', `/webhooks/${created.body.webhook.id}/stats`);
      expect(stats.status).toBe(200);
      expect(stats.body.stats.breaker).toBeNull();
    } finally {
      await apiOnly.close();
    }
  });
});
