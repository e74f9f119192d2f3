/**
 * A webhook's rate limit (docs/delivery.md, "Rate limits"): a backlog reaches its receiver no
 * faster than the limit, measured where the receiver counts (arrival times), each delivery on
 * its first attempt; a webhook with no limit beside it is not slowed; an admin's test event
 * goes out at once.
 */
import { afterEach, expect, it } from 'vitest';
import { busiestWindow } from '../../helpers/arrivals.js';
import { describeEachDialect } from '../../helpers/dialects.js';
import { startReceiver, type Receiver } from '../../helpers/receiver.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import { waitFor } from '../../helpers/wait.js';

const LIMIT = 5;
const BACKLOG = 60;
const WINDOW_MS = 2_000;

describeEachDialect('rate limits', (dialect) => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function subscribe(s: TestServer, url: string, rateLimit: number | null): Promise<string> {
    const response = await s.request('POST', '/webhooks', { body: { webhook: { name: url, targetUrl: url, events: ['ticket.created'], rateLimit } } });
    expect(response.status, JSON.stringify(response.body)).toBe(201);
    expect(response.body.webhook.rateLimit).toBe(rateLimit);
    return response.body.webhook.id as string;
  }

  /** A server whose worker starts once `backlog` tickets are queued, with a receiver. */
  async function queued(rateLimits: readonly (number | null)[], backlog: number): Promise<{ s: TestServer; receiver: Receiver; webhookIds: string[] }> {
    const s = await startTestServer(dialect, { startWorker: false, env: { HELPDESK_METRICS: 'true' } });
    cleanups.push(() => s.close());
    const receiver = await startReceiver();
    cleanups.push(() => receiver.close());
    const webhookIds: string[] = [];
    for (const [i, rateLimit] of rateLimits.entries()) webhookIds.push(await subscribe(s, receiver.url(`/w${i}`), rateLimit));
    // Queued at once: every delivery is due before the worker starts.
    for (let i = 0; i < backlog; i += 1) expect((await s.request('POST', '/tickets', { body: { ticket: { subject: `t${i}` } } })).status).toBe(201);
    s.runtime.worker.start();
    return { s, receiver, webhookIds };
  }

  /** Waits until none of the webhook's deliveries is pending (an answer may still be being recorded). */
  async function recorded(s: TestServer, webhookId: string): Promise<{ status: string; attemptCount: number }[]> {
    return waitFor('every delivery recorded', async () => {
      const list = await s.request('GET', `/webhooks/${webhookId}/deliveries?limit=100`);
      return list.body.deliveries.every((d: { status: string }) => d.status !== 'pending') ? list.body.deliveries : null;
    });
  }

  it(`sends a backlog of ${BACKLOG} at no more than ${LIMIT} a second in any ${WINDOW_MS} ms, each on its first attempt`, { timeout: 60_000 }, async () => {
    const { s, receiver, webhookIds } = await queued([LIMIT], BACKLOG);
    await waitFor('the backlog to arrive', () => receiver.requests.length >= BACKLOG, 40_000);
    expect(receiver.requests).toHaveLength(BACKLOG);
    expect(new Set(receiver.requests.map((r) => r.headers['webhook-id'])).size).toBe(BACKLOG);
    expect(busiestWindow(receiver.requests.map((r) => r.receivedAt), WINDOW_MS)).toBeLessThanOrEqual((LIMIT * WINDOW_MS) / 1000);

    // Waiting spent no attempt and failed nothing.
    const deliveries = await recorded(s, webhookIds[0]!);
    expect(deliveries).toHaveLength(BACKLOG);
    for (const delivery of deliveries) expect(delivery).toMatchObject({ status: 'succeeded', attemptCount: 1 });
    const metrics = await s.runtime.app.inject({ method: 'GET', url: '/metrics' });
    const waited = new RegExp(`helpdesk_deliveries_rate_limited_total\\{webhook="${webhookIds[0]}"\\} (\\d+)`).exec(metrics.body);
    expect(Number(waited?.[1])).toBeGreaterThan(0);
  });

  it('does not slow a webhook with no limit beside a limited one', { timeout: 60_000 }, async () => {
    const { s, receiver, webhookIds } = await queued([LIMIT, null], BACKLOG);
    const arrivals = (path: string) => receiver.requests.filter((r) => r.path === path).map((r) => r.receivedAt);
    await waitFor('the limited backlog to arrive', () => arrivals('/w0').length >= BACKLOG, 40_000);
    const limited = arrivals('/w0');
    const unlimited = arrivals('/w1');
    expect(unlimited).toHaveLength(BACKLOG);
    // The unlimited backlog was all in within the limited one's first two seconds.
    const lastUnlimited = Math.max(...unlimited);
    expect(limited.filter((at) => at <= lastUnlimited).length).toBeLessThanOrEqual(2 * LIMIT);
    // And the limited one still kept to its limit on average, first arrival to last.
    expect(Math.max(...limited) - Math.min(...limited)).toBeGreaterThanOrEqual(((BACKLOG - 1) * 1000) / LIMIT);
    for (const webhookId of webhookIds) for (const delivery of await recorded(s, webhookId)) expect(delivery).toMatchObject({ status: 'succeeded', attemptCount: 1 });
  });

  it('sends an admin test event at once while the backlog waits its turn, and a change of limit takes hold', { timeout: 60_000 }, async () => {
    const s = await startTestServer(dialect, { startWorker: false });
    cleanups.push(() => s.close());
    const receiver: Receiver = await startReceiver();
    cleanups.push(() => receiver.close());
    const webhookId = await subscribe(s, receiver.url('/limited'), 1);
    for (let i = 0; i < 20; i += 1) expect((await s.request('POST', '/tickets', { body: { ticket: { subject: `t${i}` } } })).status).toBe(201);
    s.runtime.worker.start();
    await waitFor('the first delivery', () => receiver.requests.length >= 1);
    const test = await s.request('POST', `/webhooks/${webhookId}/test`);
    expect(test.status).toBe(202);
    await waitFor('the test event', () => receiver.requests.some((r) => r.headers['x-helpdesk-event'] === 'webhook.test'), 10_000);
    // At one a second, the test event came long before the backlog could have drained.
    const createdBefore = receiver.requests.filter((r) => r.headers['x-helpdesk-event'] === 'ticket.created').length;
    expect(createdBefore).toBeLessThan(10);

    // Lifting the limit lets the rest go at once.
    const lifted = await s.request('PUT', `/webhooks/${webhookId}`, { body: { webhook: { rateLimit: null } } });
    expect(lifted.status).toBe(200);
    expect(lifted.body.webhook.rateLimit).toBeNull();
    await waitFor('the rest of the backlog', () => receiver.requests.filter((r) => r.headers['x-helpdesk-event'] === 'ticket.created').length >= 20, 10_000);
    const deliveries = await recorded(s, webhookId);
    expect(deliveries).toHaveLength(21);
    for (const delivery of deliveries) expect(delivery).toMatchObject({ status: 'succeeded', attemptCount: 1 });
  });

  it('keeps a recovery of many failed deliveries to the limit', { timeout: 60_000 }, async () => {
    const s = await startTestServer(dialect);
    cleanups.push(() => s.close());
    let failing = true;
    const receiver = await startReceiver({ responder: () => ({ status: failing ? 500 : 204 }) });
    cleanups.push(() => receiver.close());
    const webhookId = await subscribe(s, receiver.url('/recovered'), null);
    const since = new Date(Date.now() - 1_000).toISOString();
    const count = 30;
    for (let i = 0; i < count; i += 1) expect((await s.request('POST', '/tickets', { body: { ticket: { subject: `t${i}` } } })).status).toBe(201);
    const failed = await recorded(s, webhookId);
    expect(failed.filter((d) => d.status === 'failed')).toHaveLength(count);

    expect((await s.request('PUT', `/webhooks/${webhookId}`, { body: { webhook: { rateLimit: LIMIT } } })).status).toBe(200);
    failing = false;
    const before = receiver.requests.length;
    const recovered = await s.request('POST', `/webhooks/${webhookId}/recover`, { body: { since } });
    expect(recovered.status).toBe(202);
    expect(recovered.body.recovered).toBe(count);
    await waitFor('the recovered deliveries', () => receiver.requests.length >= before + count, 30_000);
    const arrivals = receiver.requests.slice(before);
    expect(arrivals).toHaveLength(count);
    expect(busiestWindow(arrivals.map((r) => r.receivedAt), WINDOW_MS)).toBeLessThanOrEqual((LIMIT * WINDOW_MS) / 1000);
    for (const delivery of await recorded(s, webhookId)) expect(delivery.status).toBe('succeeded');
  });

  it('refuses a rate limit outside 1 to 10,000 or not an integer, changing nothing', async () => {
    const s = await startTestServer(dialect, { startWorker: false });
    cleanups.push(() => s.close());
    const webhookId = await subscribe(s, 'https://example.com/hook', 10);
    for (const rateLimit of [0, -1, 10_001, 1.5, '5', true]) {
      const created = await s.request('POST', '/webhooks', { body: { webhook: { name: 'x', targetUrl: 'https://example.com/x', events: ['ticket.created'], rateLimit } } });
      expect(created.status, JSON.stringify(rateLimit)).toBe(400);
      expect(created.body.error.code).toBe('validation_failed');
      expect(created.body.error.details.map((d: { path: string }) => d.path)).toContain('webhook.rateLimit');
      const updated = await s.request('PUT', `/webhooks/${webhookId}`, { body: { webhook: { rateLimit } } });
      expect(updated.status).toBe(400);
    }
    const list = await s.request('GET', '/webhooks');
    expect(list.body.webhooks).toHaveLength(1);
    expect(list.body.webhooks[0].rateLimit).toBe(10);
  });
});
