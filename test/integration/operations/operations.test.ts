/**
 * Running it: Prometheus metrics, retention of the delivery log, the allow-list of private
 * ranges, and logs that carry ids but never a secret.
 */
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { describeEachDialect } from '../../helpers/dialects.js';
import { startReceiver, type Receiver } from '../../helpers/receiver.js';
import { ADMIN_TOKEN, startTestServer, type TestServer } from '../../helpers/server.js';
import { waitFor } from '../../helpers/wait.js';

const DAY = 24 * 60 * 60 * 1000;

describeEachDialect('operations', (dialect) => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  async function server(options: Parameters<typeof startTestServer>[1] = {}): Promise<TestServer> {
    const s = await startTestServer(dialect, options);
    cleanups.push(() => s.close());
    return s;
  }
  async function receiver(options: Parameters<typeof startReceiver>[0] = {}): Promise<Receiver> {
    const r = await startReceiver(options);
    cleanups.push(() => r.close());
    return r;
  }

  it('serves Prometheus metrics without an API key: attempts, deliveries, latency, queue depth, breakers', async () => {
    const target = await receiver();
    const s = await server();
    const webhook = await s.request('POST', '/webhooks', { body: { webhook: { name: 'm', targetUrl: target.url(), events: ['ticket.created'] } } });
    await s.request('POST', '/tickets', { body: { ticket: { subject: 'measured' } } });
    await target.waitForRequests(1);
    const text = await waitFor('the attempt to be counted', async () => {
      const response = await s.runtime.app.inject({ method: 'GET', url: '/metrics' });
      expect(response.statusCode).toBe(200);
      expect(response.headers['content-type']).toMatch(/^text\/plain/);
      return response.body.includes('helpdesk_deliveries_total{event="ticket.created",outcome="succeeded"} 1') ? response.body : null;
    });
    expect(text).toContain('helpdesk_delivery_attempts_total{event="ticket.created",outcome="succeeded",error="none"} 1');
    expect(text).toMatch(/helpdesk_delivery_attempt_duration_seconds_count\{outcome="succeeded"\} 1/);
    expect(text).toMatch(/helpdesk_event_to_delivery_seconds_count 1/);
    expect(text).toMatch(/helpdesk_delivery_queue_depth 0/);
    expect(text).toMatch(/helpdesk_deliveries_held 0/);
    expect(text).toContain(`helpdesk_circuit_breaker_state{webhook="${webhook.body.webhook.id}",state="closed"} 1`);
    // API requests by route template (the id is not a label) and status.
    expect(text).toContain('helpdesk_http_requests_total{method="POST",route="/helpdesk/api/v1/tickets",status="201"} 1');
    expect(text).toContain('helpdesk_http_requests_total{method="POST",route="/helpdesk/api/v1/webhooks",status="201"} 1');
    expect(text).toMatch(/helpdesk_http_request_duration_seconds_count\{method="POST",route="\/helpdesk\/api\/v1\/tickets"\} 1/);
    await s.request('GET', `/tickets/tkt_${'0'.repeat(32)}`);
    await s.runtime.app.inject({ method: 'GET', url: '/no/such/path' });
    const after = (await s.runtime.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(after).toContain('helpdesk_http_requests_total{method="GET",route="/helpdesk/api/v1/tickets/:id",status="404"} 1');
    expect(after).toContain('helpdesk_http_requests_total{method="GET",route="unmatched",status="404"} 1');
  });

  it('turns /metrics off with HELPDESK_METRICS=false', async () => {
    const s = await server({ env: { HELPDESK_METRICS: 'false' }, startWorker: false });
    expect((await s.runtime.app.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(404);
  });

  it('prunes finished deliveries, their attempts and orphaned events past the retention period, never pending or held ones', async () => {
    const target = await receiver();
    // Old rows are made in the past, as they would have been: an event's id carries its time,
    // and retention finds old events by that id.
    let shift = 0;
    const s = await server({ env: { HELPDESK_RETENTION_DAYS: '30' }, runtime: { clock: { now: () => Date.now() + shift } } });
    const webhook = await s.request('POST', '/webhooks', { body: { webhook: { name: 'r', targetUrl: target.url(), events: ['ticket.created'] } } });
    shift = -31 * DAY;
    await s.request('POST', '/tickets', { body: { ticket: { subject: 'old' } } });
    shift = 0;
    await s.request('POST', '/tickets', { body: { ticket: { subject: 'recent' } } });
    await target.waitForRequests(2);
    const db = s.runtime.database.db;
    await waitFor('both deliveries to succeed', async () => {
      const rows = await db.selectFrom('deliveries').select('status').where('status', '=', 'succeeded').execute();
      return rows.length === 2;
    });
    await s.runtime.worker.stop();
    const old = new Date(Date.now() - 31 * DAY).toISOString();
    const [first] = await db.selectFrom('deliveries').select(['id', 'event_id', 'created_at']).orderBy('seq').execute();
    expect(first!.created_at < old).toBe(true);
    // An old delivery still pending (a retry due) and an old event nobody was subscribed to.
    await s.request('PUT', `/webhooks/${webhook.body.webhook.id}`, { body: { webhook: { events: ['ticket.deleted', 'ticket.updated'] } } });
    shift = -31 * DAY;
    await s.request('POST', '/tickets', { body: { ticket: { subject: 'unsubscribed' } } });
    shift = 0;
    const ticket = await s.request('POST', '/tickets', { body: { ticket: { subject: 'pending' } } });
    await s.request('DELETE', `/tickets/${ticket.body.ticket.id}`);
    // An old delivery held behind an earlier one of its ticket: pending too, with no next attempt.
    const held = await s.request('POST', '/tickets', { body: { ticket: { subject: 'held' } } });
    for (const priority of ['high', 'low']) await s.request('PUT', `/tickets/${held.body.ticket.id}`, { body: { ticket: { priority } } });
    await db.updateTable('deliveries').set({ created_at: old }).where('event_type', 'in', ['ticket.deleted', 'ticket.updated']).execute();
    const metrics = await s.runtime.app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.body).toMatch(/helpdesk_deliveries_held 1/);
    expect(metrics.body).toMatch(/helpdesk_delivery_queue_depth 2/);

    const removed = await s.runtime.retention.pruneOnce();
    expect(removed).toBe(3); // the old delivery, its event, the orphaned old event
    const left = await db.selectFrom('deliveries').select(['event_type', 'status', 'held']).orderBy('seq').execute();
    expect(left).toEqual([
      { event_type: 'ticket.created', status: 'succeeded', held: 0 },
      { event_type: 'ticket.deleted', status: 'pending', held: 0 },
      { event_type: 'ticket.updated', status: 'pending', held: 0 },
      { event_type: 'ticket.updated', status: 'pending', held: 1 },
    ]);
    expect(await db.selectFrom('attempts').select('id').where('delivery_id', '=', first!.id).execute()).toEqual([]);
    expect(await db.selectFrom('events').select('id').where('id', '=', first!.event_id).execute()).toEqual([]);
  });

  it('lifts the private-address rule for HELPDESK_ALLOWED_TARGET_CIDRS only', async () => {
    const target = await receiver({ host: '127.0.0.1' });
    const s = await server({ env: { HELPDESK_ALLOW_PRIVATE_TARGETS: 'false', HELPDESK_ALLOWED_TARGET_CIDRS: '127.0.0.0/8' } });
    const refused = await s.request('POST', '/webhooks', { body: { webhook: { name: 'x', targetUrl: 'https://10.1.2.3/hook', events: ['ticket.created'] } } });
    expect(refused.status).toBe(400);
    const allowed = await s.request('POST', '/webhooks', { body: { webhook: { name: 'y', targetUrl: target.url(), events: ['ticket.created'] } } });
    expect(allowed.status).toBe(201);
    await s.request('POST', '/tickets', { body: { ticket: { subject: 'intranet' } } });
    const [request] = await target.waitForRequests(1);
    expect(request!.headers['x-helpdesk-webhook-id']).toBe(allowed.body.webhook.id);
  });

  it('logs one line per request and per attempt with their ids, and never a key, token or secret', async () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(...chunk.toString().split('\n').filter(Boolean));
        done();
      },
    });
    const target = await receiver();
    const s = await server({ logDestination: destination });
    const webhook = await s.request('POST', '/webhooks', { body: { webhook: { name: 'l', targetUrl: target.url(), events: ['ticket.created'] } } });
    const { key } = await s.keyFor('agent');
    const ticket = await s.request('POST', '/tickets', { key, body: { ticket: { subject: 'logged' } } });
    await target.waitForRequests(1);
    const attemptLine = await waitFor('the attempt log line', () => lines.map((l) => JSON.parse(l)).find((l) => l.msg === 'delivery attempt'));
    expect(attemptLine).toMatchObject({ webhookId: webhook.body.webhook.id, event: 'ticket.created', statusCode: 200, outcome: 'succeeded' });
    expect(attemptLine.deliveryId).toMatch(/^msg_/);
    const requestIds = lines.map((l) => JSON.parse(l).reqId).filter(Boolean);
    expect(requestIds).toContain(ticket.headers['x-request-id']);
    // One line per request, written when it is answered, with what an operator greps for.
    const ticketLines = lines.map((l) => JSON.parse(l)).filter((l) => l.reqId === ticket.headers['x-request-id']);
    expect(ticketLines).toHaveLength(1);
    expect(ticketLines[0]).toMatchObject({ level: 30, msg: expect.stringMatching(/^POST \/helpdesk\/api\/v1\/tickets 201 [\d.]+ ms$/), request: { method: 'POST', route: '/helpdesk/api/v1/tickets', statusCode: 201 } });
    const all = lines.join('\n');
    expect(all).not.toContain(ADMIN_TOKEN);
    expect(all).not.toContain(key);
    expect(all).not.toContain(webhook.body.webhook.signingSecret);
    expect(all).not.toContain(webhook.body.webhook.signingSecret.slice('whsec_'.length));
  });
});

describe('metrics configuration', () => {
  it('reads HELPDESK_METRICS as every switch, on by default', async () => {
    const { loadConfig } = await import('../../../src/config.js');
    expect(loadConfig({ HELPDESK_METRICS: 'false' }).metricsEnabled).toBe(false);
    expect(loadConfig({ HELPDESK_METRICS: 'no' }).metricsEnabled).toBe(false);
    expect(loadConfig({}).metricsEnabled).toBe(true);
    expect(() => loadConfig({ HELPDESK_METRICS: 'maybe' })).toThrow(/HELPDESK_METRICS/);
    expect(() => loadConfig({ HELPDESK_ALLOWED_TARGET_CIDRS: '10.0.0.0/33' })).toThrow(/HELPDESK_ALLOWED_TARGET_CIDRS/);
    expect(loadConfig({ HELPDESK_ALLOWED_TARGET_CIDRS: '10.0.0.0/8, fd00::/8' }).allowedTargetCidrs).toEqual(['10.0.0.0/8', 'fd00::/8']);
    expect(() => loadConfig({ HELPDESK_RETENTION_DAYS: '0' })).toThrow(/HELPDESK_RETENTION_DAYS/);
  });
});
