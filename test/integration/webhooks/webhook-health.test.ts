/**
 * What a target's answers do (docs/delivery.md): a 410 deactivates its webhook, five days of failures
 * too; Retry-After is a floor on the next delay; a circuit breaker pauses a target that keeps
 * failing without spending its deliveries' schedules; a target that hangs never delays another.
 */
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { describeEachDialect } from '../../helpers/dialects.js';
import { startReceiver, type Receiver, type ReceivedRequest, type Reply } from '../../helpers/receiver.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import { waitFor } from '../../helpers/wait.js';
import { createTicket, deliveriesOf as deliveryLogOf, settled as settledLog } from '../../helpers/webhook-deliveries.js';

const ISO_MS_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const DAY_MS = 24 * 60 * 60 * 1000;
/** Parks a delivery: a retry an hour away, so it stays pending for the whole test. */
const PARK: Reply = { status: 503, headers: { 'retry-after': '3600' } };

interface Delivery {
  id: string;
  status: 'pending' | 'succeeded' | 'failed';
  attemptCount: number;
  lastAttemptAt: string | null;
  nextAttemptAt: string | null;
  lastStatusCode: number | null;
}

const iso = (ms: number) => new Date(ms).toISOString();

function subjectOf(request: ReceivedRequest): string {
  return (JSON.parse(request.body) as { data: { ticket: { subject: string } } }).data.ticket.subject;
}

async function subscribe(server: TestServer, target: Receiver, events = ['ticket.created']): Promise<string> {
  const response = await server.request('POST', '/webhooks', { body: { webhook: { name: 'health', targetUrl: target.url(), events } } });
  expect(response.status, JSON.stringify(response.body)).toBe(201);
  return response.body.webhook.id;
}

describeEachDialect('webhook health', (dialect) => {
  let server: TestServer;
  let receivers: Receiver[] = [];

  beforeAll(async () => {
    server = await startTestServer(dialect);
  });
  afterAll(async () => {
    await server.close();
  });
  afterEach(async () => {
    // Each test's webhooks go with it, so later tickets are not delivered to closed receivers
    // (whose ports another test, maybe in another process, may have taken since).
    const { body } = await server.request('GET', '/webhooks?limit=100');
    for (const webhook of body.webhooks as { id: string }[]) await server.request('DELETE', `/webhooks/${webhook.id}`);
    for (const receiver of receivers) await receiver.close();
    receivers = [];
  });

  async function receiver(responder: (request: ReceivedRequest, index: number) => Reply): Promise<Receiver> {
    const started = await startReceiver({ responder });
    receivers.push(started);
    return started;
  }

  const db = () => server.runtime.database.db;
  const getWebhook = async (id: string) => (await server.request('GET', `/webhooks/${id}`)).body.webhook;
  const failingSince = async (id: string) => (await db().selectFrom('webhooks').select('failing_since').where('id', '=', id).executeTakeFirstOrThrow()).failing_since;
  const setFailingSince = async (id: string, value: string | null) => {
    await db().updateTable('webhooks').set({ failing_since: value }).where('id', '=', id).execute();
  };

  it('deactivates a webhook at once on 410 Gone and fails its other pending deliveries', async () => {
    let gone = true;
    const target = await receiver((request) => (!gone ? { status: 200 } : subjectOf(request) === 'gone' ? { status: 410 } : PARK));
    const webhookId = await subscribe(server, target);
    await createTicket(server, 'parked one');
    await createTicket(server, 'parked two');
    await settled(server, webhookId, 'two parked deliveries', (ds) => ds.length === 2 && ds.every((d) => d.attemptCount === 1 && d.status === 'pending'));

    const before = Date.now();
    await createTicket(server, 'gone');
    const webhook = await waitFor('the webhook to be deactivated', async () => {
      const current = await getWebhook(webhookId);
      return current.active ? null : current;
    });
    expect(webhook).toMatchObject({ active: false, disabledReason: 'gone' });
    expect(webhook.disabledAt).toMatch(ISO_MS_UTC);
    expect(Date.parse(webhook.disabledAt)).toBeGreaterThanOrEqual(before - 1);
    expect(Date.parse(webhook.disabledAt)).toBeLessThanOrEqual(Date.now());

    // Every pending delivery is failed, the 410 one included, and none has an attempt to come.
    const deliveries = await settled(server, webhookId, 'the pending deliveries to be failed', (ds) => ds.every((d) => d.status === 'failed'));
    expect(deliveries.map((d) => [d.attemptCount, d.lastStatusCode, d.nextAttemptAt])).toEqual([
      [1, 410, null],
      [1, 503, null],
      [1, 503, null],
    ]);
    expect(target.requests).toHaveLength(3);
    // An inactive webhook gets no new events.
    await createTicket(server, 'after the 410');
    expect(await deliveriesOf(server, webhookId)).toHaveLength(3);

    // Reactivating clears the reason; recover then sends what the deactivation failed.
    gone = false;
    const reactivated = await server.request('PUT', `/webhooks/${webhookId}`, { body: { webhook: { active: true } } });
    expect(reactivated.status).toBe(200);
    expect(reactivated.body.webhook).toMatchObject({ active: true, disabledReason: null, disabledAt: null });
    expect(await getWebhook(webhookId)).toMatchObject({ active: true, disabledReason: null, disabledAt: null });
    expect(await failingSince(webhookId)).toBeNull();
    const recovered = await server.request('POST', `/webhooks/${webhookId}/recover`, { body: { since: iso(before - 60_000) } });
    expect(recovered.body).toEqual({ recovered: 3 });
    await settled(server, webhookId, 'the recovered deliveries to succeed', (ds) => ds.every((d) => d.status === 'succeeded'));

    // A manual deactivation sets no reason.
    const deactivated = await server.request('PUT', `/webhooks/${webhookId}`, { body: { webhook: { active: false } } });
    expect(deactivated.body.webhook).toMatchObject({ active: false, disabledReason: null, disabledAt: null });
    expect(await getWebhook(webhookId)).toMatchObject({ active: false, disabledReason: null, disabledAt: null });
  });

  it('deactivates a webhook whose attempts have all failed for five days', async () => {
    const target = await receiver(() => ({ status: 500 }));
    const webhookId = await subscribe(server, target);
    const sixDaysAgo = iso(Date.now() - 6 * DAY_MS);
    await setFailingSince(webhookId, sixDaysAgo);
    const before = Date.now();
    await createTicket(server, 'the last straw');

    const webhook = await waitFor('the webhook to be deactivated', async () => {
      const current = await getWebhook(webhookId);
      return current.active ? null : current;
    });
    expect(webhook).toMatchObject({ active: false, disabledReason: 'failing' });
    expect(Date.parse(webhook.disabledAt)).toBeGreaterThanOrEqual(before - 1);
    // The failing attempt was the last: its delivery is failed, with no retry.
    const [delivery] = await settled(server, webhookId, 'the delivery to be failed', (ds) => ds[0]?.status === 'failed');
    expect(delivery).toMatchObject({ attemptCount: 1, lastStatusCode: 500, nextAttemptAt: null });
    expect(target.requests).toHaveLength(1);
    expect(await failingSince(webhookId)).toBe(sixDaysAgo);

    // Reactivation restarts the count.
    const reactivated = await server.request('PUT', `/webhooks/${webhookId}`, { body: { webhook: { active: true } } });
    expect(reactivated.body.webhook).toMatchObject({ active: true, disabledReason: null, disabledAt: null });
    expect(await failingSince(webhookId)).toBeNull();
  });

  it('keeps a webhook failing for less than five days active, and starts the count at its first failure', async () => {
    const target = await receiver(() => ({ status: 500 }));
    const fresh = await subscribe(server, target);
    const veteran = await subscribe(server, target);
    const almostFiveDays = iso(Date.now() - 5 * DAY_MS + 60 * 60 * 1000);
    await setFailingSince(veteran, almostFiveDays);
    expect(await failingSince(fresh)).toBeNull();
    await createTicket(server, 'failing, not for long enough');
    const [delivery] = await settled(server, fresh, 'the delivery to fail', (ds) => ds[0]?.status === 'failed');
    await settled(server, veteran, 'the delivery to fail', (ds) => ds[0]?.status === 'failed');

    expect(delivery!.attemptCount).toBe(4);
    for (const id of [fresh, veteran]) expect(await getWebhook(id)).toMatchObject({ active: true, disabledReason: null, disabledAt: null });
    // Further failures do not move the start of the count.
    expect(await failingSince(veteran)).toBe(almostFiveDays);
    const firstAttempt = (await server.request('GET', `/webhooks/${fresh}/deliveries/${delivery!.id}`)).body.delivery.attempts[0];
    const started = await failingSince(fresh);
    expect(started).toMatch(ISO_MS_UTC);
    expect(Date.parse(started!)).toBeGreaterThanOrEqual(Date.parse(firstAttempt.at));
    expect(Date.parse(started!)).toBeLessThan(Date.parse(delivery!.lastAttemptAt!));
  });

  it('restarts the five-day count after a success', async () => {
    const target = await receiver((request) => ({ status: subjectOf(request) === 'fine' ? 200 : 500 }));
    const webhookId = await subscribe(server, target);
    await setFailingSince(webhookId, iso(Date.now() - 6 * DAY_MS));
    await createTicket(server, 'fine');
    await settled(server, webhookId, 'the delivery to succeed', (ds) => ds[0]?.status === 'succeeded');
    // The success is applied to the webhook just after the delivery is marked succeeded.
    await waitFor('the success to clear failing_since', async () => (await failingSince(webhookId)) === null);

    // A failure now starts a new count: nowhere near five days, so the webhook stays active.
    const before = Date.now();
    await createTicket(server, 'broken');
    await settled(server, webhookId, 'the second delivery to fail', (ds) => ds.length === 2 && ds[0]!.status === 'failed');
    expect(await getWebhook(webhookId)).toMatchObject({ active: true, disabledReason: null });
    expect(Date.parse((await failingSince(webhookId))!)).toBeGreaterThanOrEqual(before - 1);
  });

  it('waits at least Retry-After after a 429 before the next attempt, without adding an attempt', async () => {
    const target = await receiver((_request, index) => (index === 0 ? { status: 429, headers: { 'retry-after': '2' } } : { status: 500 }));
    const webhookId = await subscribe(server, target);
    await createTicket(server, 'slow down');
    const [first] = await settled(server, webhookId, 'the first attempt', (ds) => ds[0]?.attemptCount === 1);
    expect(first).toMatchObject({ status: 'pending', lastStatusCode: 429 });
    // The test schedule alone would retry after 50 ms (±20%).
    const delay = Date.parse(first!.nextAttemptAt!) - Date.parse(first!.lastAttemptAt!);
    expect(delay).toBeGreaterThanOrEqual(2000);
    expect(delay).toBeLessThan(3000);

    // Retry-After replaced the first delay; it did not add a retry: four attempts in all.
    const [failed] = await settled(server, webhookId, 'the delivery to fail', (ds) => ds[0]?.status === 'failed');
    expect(failed!.attemptCount).toBe(4);
    expect(target.requests).toHaveLength(4);
    expect(target.requests[1]!.receivedAt - target.requests[0]!.receivedAt).toBeGreaterThanOrEqual(2000);
  });

  it('ignores Retry-After on other statuses than 429 and 503', async () => {
    const target = await receiver(() => ({ status: 500, headers: { 'retry-after': '3600' } }));
    const webhookId = await subscribe(server, target);
    await createTicket(server, 'not a rate limit');
    const [failed] = await settled(server, webhookId, 'the delivery to fail on the test schedule', (ds) => ds[0]?.status === 'failed');
    expect(failed!.attemptCount).toBe(4);
  });
});

describeEachDialect('circuit breaker and isolation', (dialect) => {
  it('does not attempt deliveries to a target while its breaker is open, nor spend their schedule', async () => {
    // Three attempts, 70% failed: open for 800 ms, longer than the whole retry schedule takes.
    const server = await startTestServer(dialect, {
      startWorker: false,
      env: { HELPDESK_RETRY_SCHEDULE: '0.2,0.2,0.2' },
      runtime: { worker: { breakerPolicy: { windowMs: 60_000, minimumAttempts: 3, failureRatio: 0.7, pauseMs: 800 } } },
    });
    // Fails until the pause is over: an attempt made while the breaker is open fails (and spends a
    // retry); the probe after it succeeds.
    let healthyFrom = Number.POSITIVE_INFINITY;
    const target = await startReceiver({ responder: (request) => ({ status: request.receivedAt >= healthyFrom ? 200 : 500 }) });
    try {
      const { breakers } = server.runtime.worker;
      const webhookId = await subscribe(server, target);
      for (const subject of ['one', 'two', 'three']) await createTicket(server, subject);
      server.runtime.worker.start();

      const pausedUntil = await waitFor('the breaker to open', () => breakers.state(webhookId) === 'open' && breakers.pausedUntil(webhookId));
      healthyFrom = pausedUntil;
      const requestsAtOpening = target.requests.length;
      const atOpening = await deliveriesOf(server, webhookId);
      expect(atOpening.map((d) => d.status)).toEqual(['pending', 'pending', 'pending']);
      // Normally one attempt each; a slow machine may have let a retry in before the third failure.
      const attemptsAtOpening = new Map(atOpening.map((d) => [d.id, d.attemptCount]));

      // Nothing reaches the target until the pause is over; then the probe does, and succeeds.
      const probe = (await target.waitForRequests(requestsAtOpening + 1))[requestsAtOpening]!;
      expect(probe.receivedAt).toBeGreaterThanOrEqual(pausedUntil);
      expect(target.requests.filter((r) => r.receivedAt < pausedUntil)).toHaveLength(requestsAtOpening);
      const delivered = await settled(server, webhookId, 'every delivery to succeed', (ds) => ds.every((d) => d.status === 'succeeded'));
      // Held past the point where the test schedule would have been spent, each still had its
      // retries, and was sent exactly once more after the pause: successfully.
      expect(delivered.map((d) => d.attemptCount - attemptsAtOpening.get(d.id)!)).toEqual([1, 1, 1]);
      expect(target.requests).toHaveLength(requestsAtOpening + 3);
      expect(breakers.state(webhookId)).toBe('closed');
    } finally {
      await server.close();
      await target.close();
    }
  });

  it('probes again when a probe\'s outcome could not be recorded, instead of pausing the target for good', async () => {
    const server = await startTestServer(dialect, {
      startWorker: false,
      runtime: { worker: { breakerPolicy: { windowMs: 60_000, minimumAttempts: 3, failureRatio: 0.7, pauseMs: 300 } } },
    });
    let healthy = false;
    const target = await startReceiver({ responder: () => ({ status: healthy ? 200 : 500 }) });
    const { db } = server.runtime.database;
    try {
      const webhookId = await subscribe(server, target);
      for (const subject of ['one', 'two', 'three']) await createTicket(server, subject);
      server.runtime.worker.start();
      await waitFor('the breaker to open', () => server.runtime.worker.breakers.state(webhookId) === 'open');
      // The probe's attempt then cannot be recorded (an internal error, not an HTTP outcome): it
      // must still count for the breaker, or the target stays half-open and "probing" for good.
      await db.schema.alterTable('attempts').renameTo('attempts_hidden').execute();
      try {
        await target.waitForRequests(4);
        await waitFor('the probe to be given up', () => server.runtime.worker.inFlightCount === 0);
      } finally {
        await db.schema.alterTable('attempts_hidden').renameTo('attempts').execute();
      }
      healthy = true;
      const delivered = await settled(server, webhookId, 'every delivery to succeed', (ds) => ds.every((d) => d.status === 'succeeded'));
      expect(delivered).toHaveLength(3);
      expect(server.runtime.worker.breakers.state(webhookId)).toBe('closed');
    } finally {
      await server.close();
      await target.close();
    }
  });

  it('keeps delivering promptly to a healthy target while another one hangs', async () => {
    const server = await startTestServer(dialect, { runtime: { outbound: { totalTimeoutMs: 3000 }, worker: { perHostConcurrency: 2 } } });
    const hanging = await startReceiver({ responder: () => ({ status: 200, hang: true }) });
    const healthy = await startReceiver();
    try {
      const stuck = await subscribe(server, hanging, ['ticket.created']);
      const fine = await subscribe(server, healthy, ['ticket.updated']);
      // Queued first: four deliveries to the hanging target, two of which take its two slots.
      const tickets = [];
      for (let i = 0; i < 4; i += 1) tickets.push(await createTicket(server, `stuck ${i}`));
      await hanging.waitForRequests(2);

      const before = Date.now();
      for (const ticket of tickets) expect((await server.request('PUT', `/tickets/${ticket.id}`, { body: { ticket: { priority: 'high' } } })).status).toBe(200);
      const arrived = await healthy.waitForRequests(4, 2000);
      expect(arrived[3]!.receivedAt - before).toBeLessThan(2000);
      expect((await settled(server, fine, 'the healthy deliveries to be recorded', (ds) => ds.every((d) => d.status === 'succeeded'))).length).toBe(4);

      // The hanging target holds its own two slots and no more: its other deliveries wait.
      expect(hanging.requests).toHaveLength(2);
      const waiting = await deliveriesOf(server, stuck);
      expect(waiting.map((d) => d.attemptCount).sort()).toEqual([0, 0, 0, 0]);
    } finally {
      await hanging.close();
      await healthy.close();
      await server.close();
    }
  });
});

const deliveriesOf = (server: TestServer, webhookId: string) => deliveryLogOf<Delivery>(server, webhookId);
const settled = (server: TestServer, webhookId: string, what: string, done: (deliveries: Delivery[]) => boolean) => settledLog<Delivery>(server, webhookId, what, done);
