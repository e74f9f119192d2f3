/**
 * Delivery management (docs/api.md, "Delivery management"): the delivery log of a webhook and one delivery with its
 * attempts, redelivery, recovery of failed deliveries and the test event, against real HTTPS
 * receivers.
 */
import { Webhook as StandardWebhook } from 'standardwebhooks';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import type { Delivery } from '../../../src/webhooks/delivery-log.service.js';
import { describeEachDialect } from '../../helpers/dialects.js';
import { startReceiver, type Receiver, type ReceivedRequest, type Reply } from '../../helpers/receiver.js';
import { startTestServer, type ApiResponse, type TestServer } from '../../helpers/server.js';
import { waitFor } from '../../helpers/wait.js';

const DELIVERY_KEYS = ['attemptCount', 'createdAt', 'event', 'id', 'lastAttemptAt', 'lastStatusCode', 'nextAttemptAt', 'status', 'webhookId'];
const ATTEMPT_KEYS = ['at', 'durationMs', 'error', 'errorMessage', 'id', 'responseBody', 'responseHeaders', 'statusCode'];
const ISO_MS_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const HOUR_MS = 60 * 60 * 1000;
const DAY_MS = 24 * HOUR_MS;


/** Parks a delivery: a retry an hour away, so it stays pending for the whole test. */
const PARK: Reply = { status: 503, headers: { 'retry-after': '3600' } };

function verify(secret: string, request: ReceivedRequest): unknown {
  return new StandardWebhook(secret).verify(request.body, {
    'webhook-id': request.headers['webhook-id']!,
    'webhook-timestamp': request.headers['webhook-timestamp']!,
    'webhook-signature': request.headers['webhook-signature']!,
  });
}

function expectError(response: ApiResponse, status: number, code: string): void {
  expect(response.status, JSON.stringify(response.body)).toBe(status);
  expect(response.body.error.code).toBe(code);
}

const iso = (ms: number) => new Date(ms).toISOString();

/** Newest first: createdAt, then id, descending (docs/api.md, "Conventions"). */
function newestFirst(a: Delivery, b: Delivery): number {
  if (a.createdAt !== b.createdAt) return a.createdAt < b.createdAt ? 1 : -1;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

describeEachDialect('delivery log and management', (dialect) => {
  let server: TestServer;
  let agentKey: string;
  let receivers: Receiver[] = [];
  let webhookIds: string[] = [];

  beforeAll(async () => {
    // Some receivers here fail on purpose more than ten times in a row, which would open the
    // circuit breaker; the test server keeps it out (it has its own tests, in webhook-health).
    server = await startTestServer(dialect);
    agentKey = (await server.keyFor('agent')).key;
  });
  afterAll(async () => {
    await server.close();
  });
  afterEach(async () => {
    // Each test's webhooks go with it, so later tickets are not delivered to closed receivers.
    for (const id of webhookIds) await server.request('DELETE', `/webhooks/${id}`);
    for (const receiver of receivers) await receiver.close();
    receivers = [];
    webhookIds = [];
  });

  async function receiver(responder?: (request: ReceivedRequest, index: number) => Reply): Promise<Receiver> {
    const started = await startReceiver(responder ? { responder } : {});
    receivers.push(started);
    return started;
  }

  async function subscribe(target: Receiver, events = ['ticket.created'], name = 'log'): Promise<{ id: string; name: string; signingSecret: string }> {
    const response = await server.request('POST', '/webhooks', { body: { webhook: { name, targetUrl: target.url(), events } } });
    expect(response.status, JSON.stringify(response.body)).toBe(201);
    webhookIds.push(response.body.webhook.id);
    return response.body.webhook;
  }

  async function createTicket(subject: string): Promise<{ id: string }> {
    const response = await server.request('POST', '/tickets', { body: { ticket: { subject } } });
    expect(response.status).toBe(201);
    return response.body.ticket;
  }

  async function list(webhookId: string, query = ''): Promise<Delivery[]> {
    const response = await server.request('GET', `/webhooks/${webhookId}/deliveries${query ? `?${query}` : ''}`);
    expect(response.status, JSON.stringify(response.body)).toBe(200);
    expect(response.body.nextCursor).toBeNull();
    return response.body.deliveries;
  }

  async function detail(webhookId: string, deliveryId: string) {
    const response = await server.request('GET', `/webhooks/${webhookId}/deliveries/${deliveryId}`);
    expect(response.status, JSON.stringify(response.body)).toBe(200);
    return response.body.delivery as Delivery & {
      payload: unknown;
      attempts: { id: string; at: string; statusCode: number | null; durationMs: number; error: string | null; responseHeaders: Record<string, string> | null; responseBody: string | null }[];
    };
  }

  /** Waits until the webhook's deliveries (newest first) satisfy `done`. */
  async function settled(webhookId: string, what: string, done: (deliveries: Delivery[]) => boolean): Promise<Delivery[]> {
    return waitFor(what, async () => {
      const deliveries = await list(webhookId, 'limit=100');
      return done(deliveries) ? deliveries : null;
    });
  }

  async function settledOne(webhookId: string, deliveryId: string, what: string, done: (delivery: Delivery) => boolean): Promise<Delivery> {
    return waitFor(what, async () => {
      const delivery = await detail(webhookId, deliveryId);
      return done(delivery) ? delivery : null;
    });
  }

  it('lists a webhook\'s deliveries newest first, each with its state', async () => {
    // Created: delivered; updated: parked on a long retry; deleted: fails until the schedule is spent.
    const target = await receiver((request) => {
      const event = request.headers['x-helpdesk-event'];
      if (event === 'ticket.created') return { status: 200 };
      if (event === 'ticket.updated') return PARK;
      return { status: 500 };
    });
    const webhook = await subscribe(target, ['ticket.created', 'ticket.updated', 'ticket.deleted']);
    const t1 = await createTicket('one');
    const t2 = await createTicket('two');
    await createTicket('three');
    expect((await server.request('PUT', `/tickets/${t1.id}`, { body: { ticket: { priority: 'high' } } })).status).toBe(200);
    expect((await server.request('DELETE', `/tickets/${t2.id}`)).status).toBe(204);

    const all = await settled(webhook.id, 'every delivery to reach its state', (ds) =>
      ds.length === 5 &&
      ds.every((d) => (d.event === 'ticket.created' ? d.status === 'succeeded' : d.event === 'ticket.updated' ? d.attemptCount === 1 : d.status === 'failed')),
    );
    expect([...all].sort(newestFirst)).toEqual(all);
    for (const d of all) {
      expect(Object.keys(d).sort()).toEqual(DELIVERY_KEYS);
      expect(d.id).toMatch(/^msg_/);
      expect(d.webhookId).toBe(webhook.id);
      expect(d.createdAt).toMatch(ISO_MS_UTC);
      expect(d.lastAttemptAt).toMatch(ISO_MS_UTC);
    }
    // The log's ids are the webhook-id headers the receiver saw.
    expect(new Set(target.requests.map((r) => r.headers['webhook-id']))).toEqual(new Set(all.map((d) => d.id)));

    const byEvent = (event: string) => all.filter((d) => d.event === event);
    expect(byEvent('ticket.created').map(({ status, attemptCount, lastStatusCode, nextAttemptAt }) => ({ status, attemptCount, lastStatusCode, nextAttemptAt }))).toEqual(
      Array(3).fill({ status: 'succeeded', attemptCount: 1, lastStatusCode: 200, nextAttemptAt: null }),
    );
    const [updated] = byEvent('ticket.updated');
    expect(updated).toMatchObject({ status: 'pending', attemptCount: 1, lastStatusCode: 503 });
    expect(Date.parse(updated!.nextAttemptAt!) - Date.parse(updated!.lastAttemptAt!)).toBeGreaterThanOrEqual(3600 * 1000);
    const [deleted] = byEvent('ticket.deleted');
    // The test schedule: one attempt and three retries.
    expect(deleted).toMatchObject({ status: 'failed', attemptCount: 4, lastStatusCode: 500, nextAttemptAt: null });

    // Filters, alone and together.
    const ids = (ds: Delivery[]) => ds.map((d) => d.id);
    expect(ids(await list(webhook.id, 'status=succeeded'))).toEqual(ids(byEvent('ticket.created')));
    expect(ids(await list(webhook.id, 'status=pending'))).toEqual([updated!.id]);
    expect(ids(await list(webhook.id, 'status=failed'))).toEqual([deleted!.id]);
    expect(ids(await list(webhook.id, 'event=ticket.created'))).toEqual(ids(byEvent('ticket.created')));
    expect(await list(webhook.id, 'event=ticket.deleted&status=succeeded')).toEqual([]);
    expect(await list(webhook.id, 'event=ticket.resolved')).toEqual([]);
    const oldest = all[all.length - 1]!.createdAt;
    const newest = all[0]!.createdAt;
    const middle = all[2]!.createdAt;
    expect(ids(await list(webhook.id, `since=${middle}`))).toEqual(ids(all.filter((d) => d.createdAt >= middle)));
    expect(ids(await list(webhook.id, `until=${middle}`))).toEqual(ids(all.filter((d) => d.createdAt < middle)));
    expect(ids(await list(webhook.id, `since=${oldest}&until=${newest}`))).toEqual(ids(all.filter((d) => d.createdAt < newest)));
    expect(ids(await list(webhook.id, `since=${iso(Date.parse(newest) + 1)}`))).toEqual([]);
    // A time without milliseconds is accepted too.
    expect(ids(await list(webhook.id, `until=${iso(Date.parse(newest) + 2000).replace(/\.\d{3}Z$/, 'Z')}`))).toEqual(ids(all));

    // Cursor pagination walks the same list, two at a time, and keeps the filter.
    const walk = async (query: string) => {
      const pages: Delivery[][] = [];
      let cursor: string | null = null;
      do {
        const response: ApiResponse = await server.request('GET', `/webhooks/${webhook.id}/deliveries?limit=2&${query}${cursor ? `&cursor=${cursor}` : ''}`);
        expect(response.status).toBe(200);
        pages.push(response.body.deliveries);
        cursor = response.body.nextCursor;
      } while (cursor !== null);
      return pages;
    };
    const pages = await walk('');
    expect(pages.map((p) => p.length)).toEqual([2, 2, 1]);
    expect(pages.flat()).toEqual(all);
    const succeededPages = await walk('status=succeeded');
    expect(succeededPages.map((p) => p.length)).toEqual([2, 1]);
    expect(ids(succeededPages.flat())).toEqual(ids(byEvent('ticket.created')));

    // Asked for, each delivery also carries its event's ticket version (docs/api.md, "Versions"):
    // 1 for each creation, 2 for the change of t1 and for the deletion of t2; nothing else moves.
    const withVersions = await list(webhook.id, 'include=ticketVersion');
    expect(withVersions.map(({ ticketVersion: _version, ...rest }) => rest)).toEqual(all);
    const versionOf = (d: Delivery) => ({ event: d.event, ticketVersion: d.ticketVersion });
    expect(withVersions.map(versionOf)).toEqual(
      all.map((d) => ({ event: d.event, ticketVersion: d.event === 'ticket.created' ? 1 : 2 })),
    );
    expect((await list(webhook.id, 'include=ticketVersion&status=failed')).map(versionOf)).toEqual([{ event: 'ticket.deleted', ticketVersion: 2 }]);
  });

  it('finds a delivery by its webhook-id and lists a ticket\'s deliveries, with the ticket and the last error when asked', async () => {
    const target = await receiver();
    const webhook = await subscribe(target, ['ticket.created', 'ticket.updated']);
    const first = await createTicket('first');
    const second = await createTicket('second');
    expect((await server.request('PUT', `/tickets/${first.id}`, { body: { ticket: { priority: 'high' } } })).status).toBe(200);
    const all = await settled(webhook.id, 'three deliveries to succeed', (ds) => ds.length === 3 && ds.every((d) => d.status === 'succeeded'));
    const ids = (ds: Delivery[]) => ds.map((d) => d.id);

    // By id: the one delivery a receiver's log names, or none (another webhook's id too).
    const [newest] = all;
    expect(ids(await list(webhook.id, `id=${newest!.id}`))).toEqual([newest!.id]);
    expect(await list(webhook.id, 'id=msg_0123456789abcdef')).toEqual([]);
    expect(await list(webhook.id, `id=${newest!.id}&status=failed`)).toEqual([]);

    // By ticket: the creation and the change of the first, newest first; the second's creation alone.
    const withTicket = await list(webhook.id, 'include=ticketId,ticketVersion');
    expect(withTicket.map(({ ticketId, ticketVersion, ...rest }) => ({ rest, ticketId, ticketVersion }))).toEqual(
      all.map((d) => ({ rest: d, ticketId: expect.stringMatching(/^tkt_/), ticketVersion: expect.any(Number) })),
    );
    const ofFirst = await list(webhook.id, `ticketId=${first.id}&include=ticketId,ticketVersion`);
    expect(ofFirst.map((d) => ({ event: d.event, ticketId: d.ticketId, ticketVersion: d.ticketVersion }))).toEqual([
      { event: 'ticket.updated', ticketId: first.id, ticketVersion: 2 },
      { event: 'ticket.created', ticketId: first.id, ticketVersion: 1 },
    ]);
    expect((await list(webhook.id, `ticketId=${second.id}`)).map((d) => d.event)).toEqual(['ticket.created']);
    expect(Object.keys((await list(webhook.id, `ticketId=${second.id}`))[0]!).sort()).toEqual(DELIVERY_KEYS);
    expect(await list(webhook.id, 'ticketId=tkt_0123456789abcdef')).toEqual([]);

    // The last attempt's error: null after a success; the kind of a failure with no status code.
    expect((await list(webhook.id, 'include=lastError')).map((d) => d.lastError)).toEqual([null, null, null]);
    const refusing = await receiver();
    const closedUrl = refusing.url();
    await refusing.close();
    const dead = await server.request('POST', '/webhooks', { body: { webhook: { name: 'closed port', targetUrl: closedUrl, events: ['ticket.created'] } } });
    webhookIds.push(dead.body.webhook.id);
    await createTicket('to nobody');
    const [refused] = await waitFor('an attempt refused', async () => {
      const ds = await list(dead.body.webhook.id, 'include=lastError,ticketId');
      return ds[0]?.attemptCount ? ds : null;
    });
    expect(refused).toMatchObject({ lastStatusCode: null, lastError: 'connection_refused', ticketId: expect.stringMatching(/^tkt_/) });
    // A test event is about no ticket.
    expect((await server.request('POST', `/webhooks/${webhook.id}/test`)).status).toBe(202);
    expect((await list(webhook.id, 'event=webhook.test&include=ticketId,lastError')).map((d) => [d.ticketId, d.lastError === undefined])).toEqual([[null, false]]);
  });

  it('refuses a malformed query with 400', async () => {
    const webhook = await subscribe(await receiver());
    for (const query of [
      'limit=0',
      'limit=101',
      'limit=ten',
      'status=done',
      'status=',
      'event=',
      'since=yesterday',
      'until=2025-01-15',
      'since=2025-01-15T10:30:00.000%2B01:00',
      'cursor=not-a-cursor',
      'colour=blue',
      'include=payload',
      'include=',
      'include=ticketVersion,payload',
      'include=ticketVersion,',
      'include=,ticketId',
      'id=',
      'id=whk_0123',
      'id=msg_not-an-id',
      'ticketId=',
      'ticketId=usr_0123',
      `ticketId=tkt_${'a'.repeat(61)}`,
      // Shaped like a time, but no such day: refused, not a server error.
      'since=2025-13-45T10:30:00.000Z',
      'until=2025-01-15T25:61:00.000Z',
      'since=2025-02-30T10:30:00.000Z',
    ]) {
      const response = await server.request('GET', `/webhooks/${webhook.id}/deliveries?${query}`);
      expect(response.status, `${query}: ${JSON.stringify(response.body)}`).toBe(400);
      expect(response.body.error.code).toBe('validation_failed');
    }
  });

  it('shows one delivery with the exact payload sent and every attempt, oldest first', async () => {
    const big = 'x'.repeat(30 * 1024);
    const target = await receiver((_request, index) =>
      index === 0 ? { status: 500, headers: { 'x-reason': 'first' }, body: 'boom' } : { status: 200, headers: { 'x-reason': 'second' }, body: big },
    );
    const webhook = await subscribe(target);
    await createTicket('inspect me');
    const [listed] = await settled(webhook.id, 'the delivery to succeed', (ds) => ds[0]?.status === 'succeeded');
    const delivery = await detail(webhook.id, listed!.id);

    expect(Object.keys(delivery).sort()).toEqual([...DELIVERY_KEYS, 'attempts', 'payload'].sort());
    expect(delivery).toMatchObject(listed!);
    expect(delivery).toMatchObject({ status: 'succeeded', attemptCount: 2, lastStatusCode: 200, event: 'ticket.created', nextAttemptAt: null });
    const sent = target.requests;
    expect(sent).toHaveLength(2);
    // The payload is the body that was sent, byte for byte, on every attempt.
    for (const request of sent) expect(JSON.stringify(delivery.payload)).toBe(request.body);
    expect(verify(webhook.signingSecret, sent[0]!)).toEqual(delivery.payload);

    const [first, second] = delivery.attempts;
    expect(delivery.attempts).toHaveLength(2);
    for (const attempt of delivery.attempts) {
      expect(Object.keys(attempt).sort()).toEqual(ATTEMPT_KEYS);
      expect(attempt.id).toMatch(/^att_/);
      expect(attempt.at).toMatch(ISO_MS_UTC);
      expect(Number.isInteger(attempt.durationMs) && attempt.durationMs >= 0).toBe(true);
    }
    expect(first!.id).not.toBe(second!.id);
    expect(first!.at <= second!.at).toBe(true);
    expect(Date.parse(first!.at)).toBeLessThanOrEqual(sent[0]!.receivedAt);
    expect(Date.parse(second!.at)).toBeGreaterThanOrEqual(sent[0]!.receivedAt);
    expect(delivery.lastAttemptAt).toBe(second!.at);
    expect(first).toMatchObject({ statusCode: 500, error: 'http_status', errorMessage: null, responseBody: 'boom' });
    expect(first!.responseHeaders!['x-reason']).toBe('first');
    expect(second).toMatchObject({ statusCode: 200, error: null, errorMessage: null });
    expect(second!.responseHeaders!['x-reason']).toBe('second');
    // At most 20 KB of the response are kept.
    expect(second!.responseBody!.length).toBeGreaterThan(0);
    expect(second!.responseBody!.length).toBeLessThanOrEqual(20 * 1024);
    expect(big.startsWith(second!.responseBody!)).toBe(true);
  });

  it('answers 404 for an unknown webhook or delivery, or a delivery of another webhook', async () => {
    const target = await receiver();
    const mine = await subscribe(target);
    const theirs = await subscribe(target);
    await createTicket('one event, two webhooks');
    const [own] = await settled(mine.id, 'a delivery', (ds) => ds[0]?.status === 'succeeded');
    const [other] = await settled(theirs.id, 'a delivery', (ds) => ds[0]?.status === 'succeeded');
    expect(own!.id).not.toBe(other!.id);

    expectError(await server.request('GET', '/webhooks/whk_nope/deliveries'), 404, 'not_found');
    expectError(await server.request('GET', `/webhooks/whk_nope/deliveries/${own!.id}`), 404, 'not_found');
    expectError(await server.request('GET', `/webhooks/${mine.id}/deliveries/msg_nope`), 404, 'not_found');
    expectError(await server.request('GET', `/webhooks/${mine.id}/deliveries/${other!.id}`), 404, 'not_found');
    expectError(await server.request('POST', `/webhooks/${mine.id}/deliveries/${other!.id}/redeliver`), 404, 'not_found');
    expectError(await server.request('POST', `/webhooks/${mine.id}/deliveries/msg_nope/redeliver`), 404, 'not_found');
    expectError(await server.request('POST', `/webhooks/whk_nope/deliveries/${own!.id}/redeliver`), 404, 'not_found');
    expectError(await server.request('POST', '/webhooks/whk_nope/recover', { body: { since: iso(Date.now() - HOUR_MS) } }), 404, 'not_found');
    expectError(await server.request('POST', '/webhooks/whk_nope/test'), 404, 'not_found');
    // Nothing was sent for any of those.
    expect(target.requests).toHaveLength(2);
    expect((await list(mine.id)).map((d) => d.id)).toEqual([own!.id]);
  });

  it('is for admins only', async () => {
    const target = await receiver();
    const webhook = await subscribe(target);
    await createTicket('admins only');
    const [delivery] = await settled(webhook.id, 'the delivery to succeed', (ds) => ds[0]?.status === 'succeeded');
    const calls: [string, string, unknown][] = [
      ['GET', `/webhooks/${webhook.id}/deliveries`, undefined],
      ['GET', `/webhooks/${webhook.id}/deliveries/${delivery!.id}`, undefined],
      ['POST', `/webhooks/${webhook.id}/deliveries/${delivery!.id}/redeliver`, {}],
      ['POST', `/webhooks/${webhook.id}/recover`, { since: iso(Date.now() - HOUR_MS) }],
      ['POST', `/webhooks/${webhook.id}/test`, {}],
    ];
    for (const [method, path, body] of calls) {
      expectError(await server.request(method, path, { key: agentKey, ...(body === undefined ? {} : { body }) }), 403, 'forbidden');
      expectError(await server.request(method, path, { key: null, ...(body === undefined ? {} : { body }) }), 401, 'unauthorized');
    }
    expect(target.requests).toHaveLength(1);
    expect((await list(webhook.id)).map((d) => d.attemptCount)).toEqual([1]);
  });

  it('redelivers a succeeded delivery once, with the same webhook-id, with no body or an empty one', async () => {
    const target = await receiver();
    const webhook = await subscribe(target);
    await createTicket('again please');
    const [first] = await target.waitForRequests(1);
    const [delivered] = await settled(webhook.id, 'the delivery to succeed', (ds) => ds[0]?.status === 'succeeded');

    const response = await server.request('POST', `/webhooks/${webhook.id}/deliveries/${delivered!.id}/redeliver`);
    expect(response.status, JSON.stringify(response.body)).toBe(202);
    expect(Object.keys(response.body.delivery).sort()).toEqual(DELIVERY_KEYS);
    expect(response.body.delivery).toMatchObject({ id: delivered!.id, webhookId: webhook.id, event: 'ticket.created' });
    const [, second] = await target.waitForRequests(2);
    expect(second!.headers['webhook-id']).toBe(delivered!.id);
    expect(second!.body).toBe(first!.body);
    expect(verify(webhook.signingSecret, second!)).toMatchObject({ event: 'ticket.created' });
    expect(await settledOne(webhook.id, delivered!.id, 'the redelivery to be recorded', (d) => d.attemptCount === 2)).toMatchObject({
      status: 'succeeded',
      nextAttemptAt: null,
      lastStatusCode: 200,
    });

    const withEmptyBody = await server.request('POST', `/webhooks/${webhook.id}/deliveries/${delivered!.id}/redeliver`, { body: {} });
    expect(withEmptyBody.status, JSON.stringify(withEmptyBody.body)).toBe(202);
    const [, , third] = await target.waitForRequests(3);
    expect(third!.headers['webhook-id']).toBe(delivered!.id);
    const after = await settledOne(webhook.id, delivered!.id, 'the second redelivery to be recorded', (d) => d.attemptCount === 3);
    expect((await detail(webhook.id, after.id)).attempts).toHaveLength(3);

    const typo = await server.request('POST', `/webhooks/${webhook.id}/deliveries/${delivered!.id}/redeliver`, { body: { now: true } });
    expectError(typo, 400, 'validation_failed');
    expect(await list(webhook.id)).toEqual([expect.objectContaining({ id: after.id, attemptCount: 3 })]);
  });

  it('redelivers a failed delivery once without a new schedule: a failed redelivery stays failed', async () => {
    let answer = 500;
    const target = await receiver(() => ({ status: answer }));
    const webhook = await subscribe(target);
    await createTicket('always failing');
    const [failed] = await settled(webhook.id, 'the delivery to fail', (ds) => ds[0]?.status === 'failed');
    expect(failed!.attemptCount).toBe(4);
    expect(target.requests).toHaveLength(4);

    expect((await server.request('POST', `/webhooks/${webhook.id}/deliveries/${failed!.id}/redeliver`)).status).toBe(202);
    const requests = await target.waitForRequests(5);
    expect(requests[4]!.headers['webhook-id']).toBe(failed!.id);
    const after = await settledOne(webhook.id, failed!.id, 'the redelivery to be recorded', (d) => d.attemptCount === 5);
    // Nothing more is scheduled: no retry of the redelivery.
    expect(after).toMatchObject({ status: 'failed', nextAttemptAt: null, lastStatusCode: 500 });
    expect(target.requests).toHaveLength(5);

    // The next redelivery succeeds, and the delivery with it.
    answer = 200;
    expect((await server.request('POST', `/webhooks/${webhook.id}/deliveries/${failed!.id}/redeliver`, { body: {} })).status).toBe(202);
    expect(await settledOne(webhook.id, failed!.id, 'the delivery to succeed', (d) => d.status === 'succeeded')).toMatchObject({
      attemptCount: 6,
      nextAttemptAt: null,
      lastStatusCode: 200,
    });
    expect(target.requests).toHaveLength(6);
  });

  it('redelivers a pending delivery at once instead of at its next retry', async () => {
    const target = await receiver((_request, index) => (index === 0 ? PARK : { status: 204 }));
    const webhook = await subscribe(target);
    await createTicket('parked');
    const [parked] = await settled(webhook.id, 'the first attempt', (ds) => ds[0]?.attemptCount === 1);
    expect(parked).toMatchObject({ status: 'pending' });
    expect(Date.parse(parked!.nextAttemptAt!)).toBeGreaterThan(Date.now() + HOUR_MS / 2);

    expect((await server.request('POST', `/webhooks/${webhook.id}/deliveries/${parked!.id}/redeliver`)).status).toBe(202);
    const [, second] = await target.waitForRequests(2);
    expect(second!.headers['webhook-id']).toBe(parked!.id);
    expect(await settledOne(webhook.id, parked!.id, 'the delivery to succeed', (d) => d.status === 'succeeded')).toMatchObject({
      attemptCount: 2,
      nextAttemptAt: null,
      lastStatusCode: 204,
    });
  });

  it('redelivers to an inactive webhook, including a delivery its deactivation failed', async () => {
    let park = true;
    const target = await receiver((request) => (park && request.headers['x-helpdesk-event'] === 'ticket.updated' ? PARK : { status: 200 }));
    const webhook = await subscribe(target, ['ticket.created', 'ticket.updated']);
    const ticket = await createTicket('before the switch-off');
    await server.request('PUT', `/tickets/${ticket.id}`, { body: { ticket: { priority: 'urgent' } } });
    await settled(webhook.id, 'one delivered, one parked', (ds) => ds.length === 2 && ds.every((d) => d.attemptCount === 1));
    const deactivated = await server.request('PUT', `/webhooks/${webhook.id}`, { body: { webhook: { active: false } } });
    expect(deactivated.body.webhook.active).toBe(false);
    const [parked, delivered] = await list(webhook.id, 'limit=100');
    expect(parked).toMatchObject({ event: 'ticket.updated', status: 'failed', nextAttemptAt: null });
    expect(delivered).toMatchObject({ event: 'ticket.created', status: 'succeeded' });

    park = false;
    for (const d of [parked!, delivered!]) {
      expect((await server.request('POST', `/webhooks/${webhook.id}/deliveries/${d.id}/redeliver`)).status).toBe(202);
    }
    const requests = await target.waitForRequests(4);
    expect(new Set(requests.slice(2).map((r) => r.headers['webhook-id']))).toEqual(new Set([parked!.id, delivered!.id]));
    const after = await settled(webhook.id, 'both redeliveries to be recorded', (ds) => ds.every((d) => d.attemptCount === 2));
    expect(after.map((d) => d.status)).toEqual(['succeeded', 'succeeded']);
    expect((await server.request('GET', `/webhooks/${webhook.id}`)).body.webhook.active).toBe(false);
  });

  it('recovers failed deliveries with a fresh schedule, and delivers them', async () => {
    let answer = 500;
    const target = await receiver(() => ({ status: answer }));
    const webhook = await subscribe(target);
    const since = iso(Date.now() - HOUR_MS);
    await createTicket('lost one');
    await createTicket('lost two');
    await settled(webhook.id, 'both deliveries to fail', (ds) => ds.length === 2 && ds.every((d) => d.status === 'failed'));
    expect(target.requests).toHaveLength(8);

    // Still failing: each recovered delivery runs through a whole new schedule, then fails again.
    const first = await server.request('POST', `/webhooks/${webhook.id}/recover`, { body: { since } });
    expect(first.status, JSON.stringify(first.body)).toBe(202);
    expect(first.body).toEqual({ recovered: 2 });
    const again = await settled(webhook.id, 'the recovered deliveries to fail again', (ds) => ds.every((d) => d.status === 'failed' && d.attemptCount === 8));
    expect(again.map((d) => d.nextAttemptAt)).toEqual([null, null]);
    expect(target.requests).toHaveLength(16);

    answer = 200;
    const second = await server.request('POST', `/webhooks/${webhook.id}/recover`, { body: { since, until: iso(Date.now() + 1000) } });
    expect(second.body).toEqual({ recovered: 2 });
    const delivered = await settled(webhook.id, 'the recovered deliveries to succeed', (ds) => ds.every((d) => d.status === 'succeeded'));
    expect(delivered.map((d) => d.attemptCount)).toEqual([9, 9]);
    expect(target.requests).toHaveLength(18);
    // Nothing failed is left to recover.
    expect((await server.request('POST', `/webhooks/${webhook.id}/recover`, { body: { since } })).body).toEqual({ recovered: 0 });
  });

  it('recovers only the failed deliveries created in [since, until)', async () => {
    let park = true;
    const target = await receiver(() => (park ? PARK : { status: 200 }));
    const webhook = await subscribe(target);
    for (const subject of ['old', 'older', 'new']) await createTicket(subject);
    await settled(webhook.id, 'three parked deliveries', (ds) => ds.length === 3 && ds.every((d) => d.attemptCount === 1));
    // Deactivating fails them; reactivating leaves them failed, for recover to send.
    await server.request('PUT', `/webhooks/${webhook.id}`, { body: { webhook: { active: false } } });
    await server.request('PUT', `/webhooks/${webhook.id}`, { body: { webhook: { active: true } } });
    const [fresh, older, old] = await list(webhook.id);
    expect([fresh, older, old].map((d) => d!.status)).toEqual(['failed', 'failed', 'failed']);
    // Age two of them: one three days, one two days.
    const now = Date.now();
    const threeDaysAgo = iso(now - 3 * DAY_MS);
    const twoDaysAgo = iso(now - 2 * DAY_MS);
    const { db } = server.runtime.database;
    await db.updateTable('deliveries').set({ created_at: threeDaysAgo }).where('id', '=', old!.id).execute();
    await db.updateTable('deliveries').set({ created_at: twoDaysAgo }).where('id', '=', older!.id).execute();
    park = false;

    const recover = async (since: string, until?: string) => {
      const response = await server.request('POST', `/webhooks/${webhook.id}/recover`, { body: until === undefined ? { since } : { since, until } });
      expect(response.status, JSON.stringify(response.body)).toBe(202);
      return response.body.recovered as number;
    };
    // until is exclusive, since inclusive.
    expect(await recover(iso(now - 4 * DAY_MS), threeDaysAgo)).toBe(0);
    expect(await recover(threeDaysAgo, iso(Date.parse(threeDaysAgo) + 1))).toBe(1);
    await settledOne(webhook.id, old!.id, 'the oldest to be delivered', (d) => d.status === 'succeeded');
    expect((await list(webhook.id, 'status=failed')).map((d) => d.id)).toEqual([fresh!.id, older!.id]);

    expect(await recover(iso(now - 2 * DAY_MS - HOUR_MS), iso(now - DAY_MS))).toBe(1);
    await settledOne(webhook.id, older!.id, 'the older one to be delivered', (d) => d.status === 'succeeded');
    expect((await list(webhook.id, 'status=failed')).map((d) => d.id)).toEqual([fresh!.id]);

    expect(await recover(iso(now - HOUR_MS))).toBe(1);
    await settledOne(webhook.id, fresh!.id, 'the newest to be delivered', (d) => d.status === 'succeeded');
    expect(target.requests.filter((r) => r.headers['webhook-id'] === old!.id)).toHaveLength(2);
  });

  it('refuses a recovery window out of bounds, and a recovery for an inactive webhook', async () => {
    const webhook = await subscribe(await receiver());
    const now = Date.now();
    const recover = (body: unknown) => server.request('POST', `/webhooks/${webhook.id}/recover`, { body });
    for (const body of [
      {},
      { until: iso(now) },
      { since: iso(now - 15 * DAY_MS) },
      { since: iso(now + HOUR_MS) },
      { since: iso(now - HOUR_MS), until: iso(now - HOUR_MS) },
      { since: iso(now - HOUR_MS), until: iso(now - 2 * HOUR_MS) },
      { since: 'yesterday' },
      { since: now - HOUR_MS },
      { since: iso(now - HOUR_MS), colour: 'blue' },
      { since: iso(now - HOUR_MS).slice(0, 10) },
      // Shaped like a time, but no such day: refused, not a server error.
      { since: '2025-13-45T10:30:00.000Z' },
      { since: iso(now - HOUR_MS), until: '2025-01-15T25:61:00.000Z' },
    ]) {
      const response = await recover(body);
      expect(response.status, `${JSON.stringify(body)}: ${JSON.stringify(response.body)}`).toBe(400);
      expect(response.body.error.code).toBe('validation_failed');
    }
    expect((await recover({ since: iso(now - 13 * DAY_MS) })).body).toEqual({ recovered: 0 });

    await server.request('PUT', `/webhooks/${webhook.id}`, { body: { webhook: { active: false } } });
    expectError(await recover({ since: iso(now - HOUR_MS) }), 409, 'conflict');
  });

  it('sends a signed webhook.test event, logged like any other', async () => {
    const target = await receiver();
    const webhook = await subscribe(target, ['ticket.created'], 'Test target');
    const response = await server.request('POST', `/webhooks/${webhook.id}/test`);
    expect(response.status, JSON.stringify(response.body)).toBe(202);
    const queued = response.body.delivery as Delivery;
    expect(Object.keys(queued).sort()).toEqual(DELIVERY_KEYS);
    expect(queued).toMatchObject({ webhookId: webhook.id, event: 'webhook.test', status: 'pending', attemptCount: 0 });
    expect(queued.id).toMatch(/^msg_/);

    const [request] = await target.waitForRequests(1);
    expect(request!.headers['webhook-id']).toBe(queued.id);
    expect(request!.headers['x-helpdesk-event']).toBe('webhook.test');
    expect(request!.headers['x-helpdesk-webhook-id']).toBe(webhook.id);
    const payload = verify(webhook.signingSecret, request!) as { timestamp: string };
    expect(payload).toEqual({ event: 'webhook.test', timestamp: queued.createdAt, data: { webhook: { id: webhook.id, name: 'Test target' } } });
    expect(Object.keys(JSON.parse(request!.body) as object)).toEqual(['event', 'timestamp', 'data']);

    const logged = await settledOne(webhook.id, queued.id, 'the test delivery to succeed', (d) => d.status === 'succeeded');
    expect(logged).toMatchObject({ attemptCount: 1, lastStatusCode: 200 });
    expect((await list(webhook.id, 'event=webhook.test')).map((d) => d.id)).toEqual([queued.id]);
    // A test event belongs to no ticket: asked for its ticket version, it has none.
    expect((await list(webhook.id, 'event=webhook.test&include=ticketVersion')).map((d) => d.ticketVersion)).toEqual([null]);
    expect((await detail(webhook.id, queued.id)).payload).toEqual(payload);

    // An empty object is accepted too; an unknown field is not.
    expect((await server.request('POST', `/webhooks/${webhook.id}/test`, { body: {} })).status).toBe(202);
    await target.waitForRequests(2);
    expectError(await server.request('POST', `/webhooks/${webhook.id}/test`, { body: { event: 'ticket.created' } }), 400, 'validation_failed');
    expect(await list(webhook.id)).toHaveLength(2);
  });

  it('sends the test event to an inactive webhook too', async () => {
    const target = await receiver();
    const webhook = await subscribe(target, ['ticket.created'], 'Dormant');
    await server.request('PUT', `/webhooks/${webhook.id}`, { body: { webhook: { active: false } } });
    await createTicket('not for an inactive webhook');
    const response = await server.request('POST', `/webhooks/${webhook.id}/test`);
    expect(response.status).toBe(202);
    const [request] = await target.waitForRequests(1);
    expect(verify(webhook.signingSecret, request!)).toMatchObject({ event: 'webhook.test', data: { webhook: { id: webhook.id, name: 'Dormant' } } });
    await settledOne(webhook.id, response.body.delivery.id, 'the test delivery to succeed', (d) => d.status === 'succeeded');
    // Only the test event: the ticket was not queued for the inactive webhook.
    expect((await list(webhook.id)).map((d) => d.event)).toEqual(['webhook.test']);
    expect((await server.request('GET', `/webhooks/${webhook.id}`)).body.webhook).toMatchObject({ active: false, disabledReason: null });
  });
});

describeEachDialect('redelivery while an attempt is in flight', (dialect) => {
  it('keeps a redelivery asked while another attempt of the delivery is still running', async () => {
    const server = await startTestServer(dialect, { runtime: { outbound: { totalTimeoutMs: 1000 } } });
    let hang = false;
    const target = await startReceiver({ responder: () => (hang ? { status: 200, hang: true } : { status: 200 }) });
    try {
      const created = await server.request('POST', '/webhooks', { body: { webhook: { name: 'r', targetUrl: target.url(), events: ['ticket.created'] } } });
      const webhookId = created.body.webhook.id as string;
      await server.request('POST', '/tickets', { body: { ticket: { subject: 'twice more' } } });
      const delivery = await waitFor('the delivery to succeed', async () => {
        const { body } = await server.request('GET', `/webhooks/${webhookId}/deliveries`);
        return body.deliveries[0]?.status === 'succeeded' ? (body.deliveries[0] as Delivery) : null;
      });
      const redeliver = () => server.request('POST', `/webhooks/${webhookId}/deliveries/${delivery.id}/redeliver`);

      // The first redelivery hangs until the client gives up (1 s); the second is asked meanwhile.
      hang = true;
      expect((await redeliver()).status).toBe(202);
      await target.waitForRequests(2);
      hang = false;
      expect((await redeliver()).status).toBe(202);
      const requests = await target.waitForRequests(3);
      expect(requests[2]!.headers['webhook-id']).toBe(delivery.id);
      const final = await waitFor('both redeliveries to be recorded', async () => {
        const { body } = await server.request('GET', `/webhooks/${webhookId}/deliveries/${delivery.id}`);
        return body.delivery.attemptCount === 3 ? body.delivery : null;
      });
      expect(final.attempts.map((a: { error: string | null }) => a.error)).toEqual([null, 'timeout', null]);
      expect(final).toMatchObject({ status: 'succeeded', nextAttemptAt: null });
    } finally {
      await server.close();
      await target.close();
    }
  });
});
