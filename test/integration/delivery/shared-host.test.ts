/**
 * Webhooks that share one host (docs/delivery.md, "Concurrency and isolation" and "Circuit
 * breaker"): a receiver host often serves many customers, one path each. A path that fails or
 * hangs must not delay another webhook on the same host; the breaker pauses the failing webhook
 * only; an admin's act on a paused webhook goes out at once and ends the pause when it succeeds;
 * after a 410 Gone nothing more is sent to that webhook.
 */
import { afterEach, expect, it } from 'vitest';
import { describeEachDialect } from '../../helpers/dialects.js';
import { startReceiver, type Receiver, type Responder } from '../../helpers/receiver.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import { waitFor } from '../../helpers/wait.js';

/** What "never delay a healthy webhook" is held to: each of its deliveries lands within this. */
const PROMPT_MS = 1_000;
/** An admin's act on a paused webhook lands within this. */
const ADMIN_ACT_MS = 2_000;

describeEachDialect('webhooks sharing a host', (dialect) => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function server(options: Parameters<typeof startTestServer>[1]): Promise<TestServer> {
    const s = await startTestServer(dialect, options);
    cleanups.push(() => s.close());
    return s;
  }

  async function receiver(responder: Responder): Promise<Receiver> {
    const r = await startReceiver({ responder });
    cleanups.push(() => r.close());
    return r;
  }

  async function subscribe(s: TestServer, url: string): Promise<string> {
    const response = await s.request('POST', '/webhooks', { body: { webhook: { name: url, targetUrl: url, events: ['ticket.created'] } } });
    expect(response.status, JSON.stringify(response.body)).toBe(201);
    return response.body.webhook.id as string;
  }

  async function createTickets(s: TestServer, count: number): Promise<string[]> {
    const responses = await Promise.all(Array.from({ length: count }, (_, i) => s.request('POST', '/tickets', { body: { ticket: { subject: `t${i}` } } })));
    for (const response of responses) expect(response.status).toBe(201);
    return responses.map((r) => r.body.ticket.id as string);
  }

  it('keeps a healthy webhook prompt beside a failing path (500s, 404s) and a hanging path (100 deliveries) on the same host', async () => {
    const s = await server({
      runtime: { worker: { breakerPolicy: { windowMs: 60_000, minimumAttempts: 5, failureRatio: 0.7, pauseMs: 60_000 } } },
    });
    let failures = 0;
    const host = await receiver((request) => {
      if (request.path === '/hanging') return { status: 200, hang: true };
      if (request.path === '/failing') return { status: (failures += 1) % 2 === 0 ? 404 : 500 };
      return { status: 204 };
    });
    const hanging = await subscribe(s, host.url('/hanging'));
    await createTickets(s, 100);
    await waitFor('the hanging path holding its connections', () => host.unanswered >= 64);

    const failing = await subscribe(s, host.url('/failing'));
    const healthy = await subscribe(s, host.url('/healthy'));
    const latencies: number[] = [];
    for (let round = 0; round < 8; round += 1) {
      const sent = Date.now();
      const [ticketId] = await createTickets(s, 1);
      await waitFor('the healthy webhook to hear of the ticket', () => host.requests.some((r) => r.path === '/healthy' && r.body.includes(ticketId!)), 20_000);
      latencies.push(Date.now() - sent);
    }
    expect(Math.max(...latencies), `healthy latencies ${latencies.join(', ')} ms`).toBeLessThan(PROMPT_MS);
    // The failing webhook's breaker paused it, and it alone.
    await waitFor('the failing webhook paused', () => s.runtime.worker.breakers.state(failing) === 'open');
    expect(s.runtime.worker.breakers.state(healthy)).toBe('closed');
    expect(s.runtime.worker.breakers.state(hanging)).toBe('closed');
    const sent = Date.now();
    const [late] = await createTickets(s, 1);
    await waitFor('the healthy webhook while the other is paused', () => host.requests.some((r) => r.path === '/healthy' && r.body.includes(late!)), 20_000);
    expect(Date.now() - sent).toBeLessThan(PROMPT_MS);
  });

  /** A webhook whose breaker opened after three failed first attempts, its deliveries waiting out the pause. */
  async function pausedWebhook(respond: () => number): Promise<{ s: TestServer; host: Receiver; webhookId: string }> {
    const s = await server({ runtime: { worker: { breakerPolicy: { windowMs: 60_000, minimumAttempts: 3, failureRatio: 0.7, pauseMs: 120_000 } } } });
    const host = await receiver(() => ({ status: respond() }));
    const webhookId = await subscribe(s, host.url('/paused'));
    await createTickets(s, 3);
    await waitFor('the breaker to open', () => s.runtime.worker.breakers.state(webhookId) === 'open');
    return { s, host, webhookId };
  }

  async function pendingDeliveries(s: TestServer, webhookId: string): Promise<{ id: string; attemptCount: number }[]> {
    return (await s.request('GET', `/webhooks/${webhookId}/deliveries?status=pending`)).body.deliveries;
  }

  it('sends a test event to a paused webhook at once, and its success ends the pause so the queue flows', async () => {
    let status = 500;
    const { s, host, webhookId } = await pausedWebhook(() => status);
    expect(await pendingDeliveries(s, webhookId)).toHaveLength(3);
    status = 204;
    const started = Date.now();
    expect((await s.request('POST', `/webhooks/${webhookId}/test`)).status).toBe(202);
    await waitFor('the test event', () => host.requests.some((r) => r.headers['x-helpdesk-event'] === 'webhook.test'), 10_000);
    expect(Date.now() - started).toBeLessThan(ADMIN_ACT_MS);
    // Its success was the probe: once its attempt is recorded, the pause is over (it had two
    // minutes to run), and the rest flows.
    await waitFor('the test event to end the pause', () => s.runtime.worker.breakers.state(webhookId) === 'closed');
    expect((await s.request('GET', `/webhooks/${webhookId}/stats`)).body.stats.breaker).toEqual({ state: 'closed', pausedUntil: null, reason: null });
    await waitFor('the queued deliveries to succeed', async () => (await pendingDeliveries(s, webhookId)).length === 0, 10_000);
  });

  it('sends a redelivery to a paused webhook at once; when it fails, the pause goes on', async () => {
    const { s, host, webhookId } = await pausedWebhook(() => 500);
    // The stats say it is paused, until when, and why.
    const { breaker } = (await s.request('GET', `/webhooks/${webhookId}/stats`)).body.stats;
    expect(breaker).toEqual({ state: 'open', pausedUntil: expect.any(String), reason: expect.stringMatching(/^\d+ of its last \d+ attempts failed$/) });
    expect(Date.parse(breaker.pausedUntil)).toBeGreaterThan(Date.now() + 60_000);
    const [delivery] = await pendingDeliveries(s, webhookId);
    // A retry that started before the breaker opened may still be on its way: let it land first.
    await waitFor('the attempts started before the pause to end', () => s.runtime.worker.inFlightCount === 0);
    const before = host.requests.length;
    const started = Date.now();
    expect((await s.request('POST', `/webhooks/${webhookId}/deliveries/${delivery!.id}/redeliver`)).status).toBe(202);
    await waitFor('the redelivery', () => host.requests.slice(before).some((r) => r.headers['webhook-id'] === delivery!.id), 10_000);
    expect(Date.now() - started).toBeLessThan(ADMIN_ACT_MS);
    await waitFor('the redelivery to be recorded', async () => {
      const detail = await s.request('GET', `/webhooks/${webhookId}/deliveries/${delivery!.id}`);
      return detail.body.delivery.attemptCount === delivery!.attemptCount + 1;
    });
    expect(s.runtime.worker.breakers.state(webhookId)).toBe('open');
    // Only the admin's act went out: the other deliveries still wait out the pause.
    expect(host.requests.slice(before)).toHaveLength(1);
  });

  it('sends nothing more to a webhook after its 410 Gone, not even what was already claimed', async () => {
    // One attempt at a time to the host: the others wait in the lane, claimed, when the 410 comes.
    const s = await server({ runtime: { worker: { perHostConcurrency: 1 } } });
    const host = await receiver(() => ({ status: 410 }));
    const webhookId = await subscribe(s, host.url('/gone'));
    await createTickets(s, 5);
    await waitFor('the webhook to be deactivated', async () => (await s.request('GET', `/webhooks/${webhookId}`)).body.webhook.active === false);
    const settled = await waitFor('every delivery to be failed', async () => {
      const list = (await s.request('GET', `/webhooks/${webhookId}/deliveries`)).body.deliveries as { status: string; attemptCount: number }[];
      return list.length === 5 && list.every((d) => d.status === 'failed') ? list : null;
    });
    await waitFor('the worker idle', () => s.runtime.worker.inFlightCount === 0);
    expect(host.requests).toHaveLength(1);
    expect(settled.reduce((sum, d) => sum + d.attemptCount, 0)).toBe(1);
  });
});
