/**
 * Operational events (docs/api.md, "Operational events"), on both databases, through real HTTPS
 * receivers: `webhook.disabled` when a 410 deactivates another webhook, `delivery.failed` when a
 * ticket event's delivery spends its schedule; signed, with their exact payloads; written in the
 * transaction of what they report; never made by the failure of an operational event's delivery;
 * kept out of the event feed; counted in /metrics.
 */
import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import type { DialectName } from '../../../src/db/capabilities.js';
import { sequenceEvents } from '../../../src/events/events.repository.js';
import { describeEachDialect } from '../../helpers/dialects.js';
import { startReceiver, type Receiver, type ReceivedRequest, type Reply } from '../../helpers/receiver.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import { verifies } from '../../helpers/signatures.js';
import { waitFor } from '../../helpers/wait.js';
import { createTicket, deliveriesOf as deliveryLogOf, settled as settledLog } from '../../helpers/webhook-deliveries.js';

interface Delivery {
  id: string;
  webhookId: string;
  event: string;
  status: 'pending' | 'succeeded' | 'failed';
  attemptCount: number;
  lastAttemptAt: string | null;
  lastStatusCode: number | null;
  createdAt: string;
}

interface Subscribed {
  id: string;
  signingSecret: string;
}

/** The test server's retry schedule (startTestServer): the first attempt and three retries. */
const ATTEMPTS_PER_SCHEDULE = 4;

describeEachDialect('operational events', (dialect) => {
  let server: TestServer;
  let receivers: Receiver[] = [];

  beforeAll(async () => {
    server = await startTestServer(dialect);
  });
  afterAll(async () => {
    await server.close();
  });
  afterEach(async () => {
    await removeWebhooks(server);
    for (const receiver of receivers) await receiver.close();
    receivers = [];
  });

  async function receiver(status: number): Promise<Receiver> {
    const started = await startReceiver({ responder: (): Reply => ({ status }) });
    receivers.push(started);
    return started;
  }

  it('sends webhook.disabled, signed, to a subscribed webhook when a 410 deactivates another, whatever its filter', async () => {
    const alerts = await receiver(200);
    const gone = await receiver(410);
    // A filter on tickets chooses among ticket events only: the operational event still goes.
    const alerting = await subscribe(server, 'alerts', alerts, ['webhook.disabled'], { 'ticket.priority': 'urgent' });
    // The deactivated webhook is subscribed too, and gets nothing: it is inactive.
    const dying = await subscribe(server, 'dying', gone, ['ticket.created', 'webhook.disabled']);
    const before = await operationalEventsTotal(server);

    await createTicket(server, 'to a receiver that is gone');
    const [request] = await alerts.waitForRequests(1);
    const webhook = (await server.request('GET', `/webhooks/${dying.id}`)).body.webhook;
    expect(webhook).toMatchObject({ active: false, disabledReason: 'gone' });
    // The exact bytes: the payload's keys in the documented order, and nothing else.
    expect(request!.body).toBe(
      JSON.stringify({
        event: 'webhook.disabled',
        timestamp: webhook.disabledAt,
        data: { webhook: { id: dying.id, name: 'dying', targetUrl: gone.url(), disabledReason: 'gone', disabledAt: webhook.disabledAt } },
      }),
    );
    expectSignedDelivery(request!, alerting, 'webhook.disabled');

    // Logged and managed like any delivery.
    const [delivery] = await settled(server, alerting.id, 'the alert to succeed', (ds) => ds.length === 1 && ds[0]!.status === 'succeeded');
    expect(delivery).toMatchObject({ webhookId: alerting.id, event: 'webhook.disabled', attemptCount: 1, lastStatusCode: 200 });
    expect((await server.request('POST', `/webhooks/${alerting.id}/deliveries/${delivery!.id}/redeliver`)).status).toBe(202);
    const [again] = await alerts.waitForRequests(2).then((requests) => requests.slice(1));
    expect(again!.body).toBe(request!.body);
    expect(again!.headers['webhook-id']).toBe(request!.headers['webhook-id']);

    // The dying webhook's own delivery is the 410; nothing else was queued for it.
    expect((await deliveriesOf(server, dying.id)).map((d) => [d.event, d.status, d.lastStatusCode])).toEqual([['ticket.created', 'failed', 410]]);
    expect(gone.requests).toHaveLength(1);
    // Counted once, by the process that recorded the 410.
    expect(await operationalEventsTotal(server)).toEqual({ ...before, 'webhook.disabled': before['webhook.disabled']! + 1 });
  });

  it('sends webhook.disabled with reason failing after five days of failures, and no delivery.failed for the deliveries the deactivation fails', async () => {
    const alerts = await receiver(200);
    const down = await receiver(500);
    await subscribe(server, 'alerts', alerts, ['webhook.disabled', 'delivery.failed']);
    const failing = await subscribe(server, 'failing for days', down, ['ticket.created']);
    const db = server.runtime.database.db;
    await db.updateTable('webhooks').set({ failing_since: new Date(Date.now() - 6 * 24 * 3600 * 1000).toISOString() }).where('id', '=', failing.id).execute();

    await createTicket(server, 'the last straw');
    const [request] = await alerts.waitForRequests(1);
    const webhook = (await server.request('GET', `/webhooks/${failing.id}`)).body.webhook;
    expect(JSON.parse(request!.body)).toEqual({
      event: 'webhook.disabled',
      timestamp: webhook.disabledAt,
      data: { webhook: { id: failing.id, name: 'failing for days', targetUrl: down.url(), disabledReason: 'failing', disabledAt: webhook.disabledAt } },
    });
    expect((await deliveriesOf(server, failing.id)).map((d) => d.status)).toEqual(['failed']);
    expect(await eventsAbout(server, 'delivery.failed', failing.id)).toEqual([]);
  });

  it('sends delivery.failed, signed, when a ticket event spends its retry schedule, with the delivery as the log shows it', async () => {
    const alerts = await receiver(200);
    const down = await receiver(500);
    const alerting = await subscribe(server, 'alerts', alerts, ['delivery.failed']);
    const failing = await subscribe(server, 'failing', down, ['ticket.created']);
    const before = await operationalEventsTotal(server);

    await createTicket(server, 'to a receiver that is down');
    const [request] = await alerts.waitForRequests(1);
    const [failed] = await deliveriesOf(server, failing.id);
    expect(failed).toMatchObject({ status: 'failed', attemptCount: ATTEMPTS_PER_SCHEDULE, lastStatusCode: 500, event: 'ticket.created' });
    expect(down.requests).toHaveLength(ATTEMPTS_PER_SCHEDULE);
    const payload = JSON.parse(request!.body);
    expect(request!.body).toBe(
      JSON.stringify({
        event: 'delivery.failed',
        timestamp: payload.timestamp,
        data: { delivery: { id: failed!.id, webhookId: failing.id, event: 'ticket.created', attemptCount: ATTEMPTS_PER_SCHEDULE, lastStatusCode: 500, createdAt: failed!.createdAt } },
      }),
    );
    // The time the last attempt was recorded: after it started.
    expect(Date.parse(payload.timestamp)).toBeGreaterThanOrEqual(Date.parse(failed!.lastAttemptAt!));
    expectSignedDelivery(request!, alerting, 'delivery.failed');
    expect(await operationalEventsTotal(server)).toEqual({ ...before, 'delivery.failed': before['delivery.failed']! + 1 });
  });

  it('makes no delivery.failed from a failed delivery.failed, and no webhook.disabled from a deactivation by an operational event', async () => {
    // A webhook told of its own failure: it fails that delivery too, and hears no more.
    const down = await receiver(500);
    const selfAware = await subscribe(server, 'self-aware', down, ['ticket.created', 'delivery.failed']);
    await createTicket(server, 'the first failure');
    const deliveries = await settled(server, selfAware.id, 'both deliveries to fail for good', (ds) => ds.length === 2 && ds.every((d) => d.status === 'failed'));
    expect(deliveries.map((d) => d.event).sort()).toEqual(['delivery.failed', 'ticket.created']);
    // An event is committed with the failure it reports: the second failure has committed, and made none.
    expect(await eventsAbout(server, 'delivery.failed', selfAware.id)).toHaveLength(1);

    // A webhook gone for its alerts: the alert's 410 deactivates it, and tells nobody.
    const gone = await receiver(410);
    const watching = await receiver(200);
    const first = await subscribe(server, 'first gone', gone, ['ticket.created']);
    const second = await subscribe(server, 'gone for alerts', gone, ['webhook.disabled']);
    const watcher = await subscribe(server, 'watcher', watching, ['webhook.disabled']);
    await createTicket(server, 'the first deactivation');
    await waitFor('the second webhook to be deactivated by the alert', async () => !(await server.request('GET', `/webhooks/${second.id}`)).body.webhook.active);
    expect(await eventsAbout(server, 'webhook.disabled', first.id)).toHaveLength(1);
    expect(await eventsAbout(server, 'webhook.disabled', second.id)).toHaveLength(0);
    await settled(server, watcher.id, "the watcher's alert", (ds) => ds.length === 1 && ds[0]!.status === 'succeeded');
    expect(watching.requests.map((r) => JSON.parse(r.body).data.webhook.id)).toEqual([first.id]);
  });

  it('keeps operational events out of the event feed, with no place in its order', async () => {
    const gone = await receiver(410);
    const dying = await subscribe(server, 'dying', gone, ['ticket.created']);
    const ticket = await createTicket(server, 'one feed event');
    await waitFor('the webhook.disabled event', async () => (await eventsAbout(server, 'webhook.disabled', dying.id)).length === 1);
    await sequenceEvents(server.runtime.database.db, server.runtime.database.capabilities);
    const [event] = await eventsAbout(server, 'webhook.disabled', dying.id);
    expect(event!.feed_position).toBeNull();
    const feed = await server.request('GET', '/events?limit=100');
    expect(feed.body.events.map((e: { event: string }) => e.event)).not.toContain('webhook.disabled');
    expect(feed.body.events[0]).toMatchObject({ event: 'ticket.created', data: { ticket: { id: ticket.id } } });
    expect((await server.request('GET', `/events/${event!.id}`)).status).toBe(404);
  });
});

describeEachDialect('operational events in the transaction of what they report', (dialect) => {
  let server: TestServer;
  let receivers: Receiver[] = [];

  beforeAll(async () => {
    // Retries enough for the test to put the database back while the 410s keep coming.
    server = await startTestServer(dialect, { env: { HELPDESK_RETRY_SCHEDULE: Array(20).fill('0.2').join(',') } });
  });
  afterAll(async () => {
    await server.close();
  });
  afterEach(async () => {
    await refuseWebhookDisabledEvents(server, dialect, false);
    await removeWebhooks(server);
    for (const receiver of receivers) await receiver.close();
    receivers = [];
  });

  it('deactivates a webhook only with its webhook.disabled event: an event refused rolls the deactivation back', async () => {
    const gone = await startReceiver({ responder: () => ({ status: 410 }) });
    const alerts = await startReceiver();
    receivers.push(gone, alerts);
    await refuseWebhookDisabledEvents(server, dialect, true);
    const dying = await subscribe(server, 'dying', gone, ['ticket.created']);
    await subscribe(server, 'alerts', alerts, ['webhook.disabled']);

    await createTicket(server, 'to a receiver that is gone');
    // A second 410: the first one's record, deactivation and all, was rolled back with its event.
    await gone.waitForRequests(2);
    expect((await server.request('GET', `/webhooks/${dying.id}`)).body.webhook).toMatchObject({ active: true, disabledReason: null, disabledAt: null });
    expect(await eventsAbout(server, 'webhook.disabled', dying.id)).toHaveLength(0);

    await refuseWebhookDisabledEvents(server, dialect, false);
    const webhook = await waitFor('the webhook to be deactivated', async () => {
      const current = (await server.request('GET', `/webhooks/${dying.id}`)).body.webhook;
      return !current.active && current;
    });
    const events = await eventsAbout(server, 'webhook.disabled', dying.id);
    expect(events.map((e) => JSON.parse(e.payload).data.webhook.disabledAt)).toEqual([webhook.disabledAt]);
    const [alert] = await alerts.waitForRequests(1);
    expect(JSON.parse(alert!.body).data.webhook).toMatchObject({ id: dying.id, disabledReason: 'gone' });
  });
});

async function subscribe(server: TestServer, name: string, target: Receiver, events: string[], filter: object | null = null): Promise<Subscribed> {
  const response = await server.request('POST', '/webhooks', { body: { webhook: { name, targetUrl: target.url(), events, filter } } });
  expect(response.status, JSON.stringify(response.body)).toBe(201);
  return { id: response.body.webhook.id, signingSecret: response.body.webhook.signingSecret };
}

async function removeWebhooks(server: TestServer): Promise<void> {
  // Each test's webhooks go with it, so later tickets are not delivered to closed receivers.
  const { body } = await server.request('GET', '/webhooks?limit=100');
  for (const webhook of body.webhooks as { id: string }[]) await server.request('DELETE', `/webhooks/${webhook.id}`);
}

function expectSignedDelivery(request: ReceivedRequest, webhook: Subscribed, type: string): void {
  expect(verifies(webhook.signingSecret, request)).toBe(true);
  expect(request.headers['x-helpdesk-event']).toBe(type);
  expect(request.headers['x-helpdesk-webhook-id']).toBe(webhook.id);
  expect(request.headers['webhook-id']).toMatch(/^msg_/);
}

/** The stored events of a type that name a webhook: the one disabled, or the one whose delivery failed. */
async function eventsAbout(server: TestServer, type: string, webhookId: string) {
  const rows = await server.runtime.database.db.selectFrom('events').select(['id', 'ticket_id', 'payload', 'feed_position']).where('type', '=', type).execute();
  return rows.filter((row) => {
    const data = JSON.parse(row.payload).data;
    return (data.webhook?.id ?? data.delivery?.webhookId) === webhookId;
  });
}

async function operationalEventsTotal(server: TestServer): Promise<Record<string, number>> {
  const metrics = await server.runtime.app.inject({ method: 'GET', url: '/metrics' });
  return Object.fromEntries([...metrics.body.matchAll(/^helpdesk_operational_events_total\{event="([^"]+)"\} (\d+)$/gm)].map((m) => [m[1]!, Number(m[2])]));
}

/** A trigger that refuses to store a webhook.disabled event, as a failing write would: the recorder's whole transaction rolls back. */
async function refuseWebhookDisabledEvents(server: TestServer, dialect: DialectName, refuse: boolean): Promise<void> {
  const db = server.runtime.database.db;
  if (dialect === 'sqlite') {
    await sql`drop trigger if exists refuse_webhook_disabled`.execute(db);
    if (refuse) {
      await sql`create trigger refuse_webhook_disabled before insert on events when new.type = 'webhook.disabled' begin select raise(abort, 'refused by the test'); end`.execute(db);
    }
    return;
  }
  await sql`drop trigger if exists refuse_webhook_disabled on events`.execute(db);
  if (refuse) {
    await sql`create or replace function refuse_webhook_disabled() returns trigger language plpgsql as $$ begin raise exception 'refused by the test'; end $$`.execute(db);
    await sql`create trigger refuse_webhook_disabled before insert on events for each row when (new.type = 'webhook.disabled') execute function refuse_webhook_disabled()`.execute(db);
  }
}

const deliveriesOf = (server: TestServer, webhookId: string) => deliveryLogOf<Delivery>(server, webhookId);
const settled = (server: TestServer, webhookId: string, what: string, done: (deliveries: Delivery[]) => boolean) => settledLog<Delivery>(server, webhookId, what, done);
