/**
 * OpenTelemetry tracing with the real program (docs/deployment.md, "Tracing"), on both
 * databases, exporting to a real OTLP/HTTP collector in this test, in JSON and in protobuf:
 * - a ticket's creation, continuing the client's traceparent, makes one trace: the request span,
 *   its transaction's span under it, and a span per delivery attempt under that, with the HTTP
 *   and database semantic conventions' attributes; the receiver's traceparent names that trace
 *   and the attempt's span;
 * - a retry made by the process started after a SIGKILL joins the same trace;
 * - off (OTEL_SDK_DISABLED wins over an endpoint): no traceparent, nothing exported;
 * - a collector that never answers costs the deliveries nothing (its lost spans are counted on
 *   /metrics), and the process still exits.
 */
import { afterAll, expect, inject, it } from 'vitest';
import type { DialectName } from '../../src/db/capabilities.js';
import { createTestDatabase, type TestDatabase } from '../helpers/databases.js';
import { describeEachDialect } from '../helpers/dialects.js';
import { SPAN_KIND, STATUS_CODE, startOtlpCollector, type CollectedSpan, type OtlpCollector } from '../helpers/otlp-collector.js';
import { freePort, spawnHelpdesk, type HelpdeskProcess } from '../helpers/processes.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { waitFor } from '../helpers/wait.js';

const TOKEN = 'tracing-admin-token-0123456789abc';
const API = '/helpdesk/api/v1';
/** The client's own span, which the request span continues. */
const CLIENT_TRACE_ID = '0af7651916cd43dd8448eb211c80319c';
const CLIENT_SPAN_ID = 'b7ad6b7169203331';
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/;

describeEachDialect('tracing', (dialect: DialectName) => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  });

  async function setUp(collectorOptions: { hang?: boolean } = {}) {
    const database: TestDatabase = await createTestDatabase(dialect);
    cleanups.push(() => database.drop());
    const receiver: Receiver = await startReceiver({ host: '127.0.0.1' });
    cleanups.push(() => receiver.close());
    const collector: OtlpCollector = await startOtlpCollector(collectorOptions);
    cleanups.push(() => collector.close());
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const start = async (env: Record<string, string>): Promise<HelpdeskProcess> => {
      const server = spawnHelpdesk('serve', {
        HELPDESK_DATABASE_URL: database.url,
        HELPDESK_ADMIN_TOKEN: TOKEN,
        HELPDESK_PORT: String(port),
        HELPDESK_ALLOW_PRIVATE_TARGETS: 'true',
        HELPDESK_RETRY_SCHEDULE: '0.2,0.2,0.2,0.2,0.2,0.2,0.2,0.2',
        HELPDESK_LOG_LEVEL: 'warn',
        NODE_EXTRA_CA_CERTS: inject('tls').caPath,
        ...env,
      });
      cleanups.push(async () => server.child.exitCode === null && server.child.kill('SIGKILL'));
      await waitFor(`serve to answer (output: ${server.output()})`, () => fetch(`${base}/healthz`).then((r) => r.ok, () => false), 20_000);
      return server;
    };
    const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
      const response = await fetch(`${base}${API}${path}`, {
        method,
        headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: response.status, body: (await response.json()) as Record<string, { id: string; status?: string; attemptCount?: number }[] | { id: string }> };
    };
    const subscribe = async (targetUrl: string) => {
      const created = await call('POST', '/webhooks', { webhook: { name: 'traced', targetUrl, events: ['ticket.created'] } });
      expect(created.status).toBe(201);
      return (created.body.webhook as { id: string }).id;
    };
    const createTicket = async () => {
      const created = await call('POST', '/tickets', { ticket: { subject: 'traced' } }, { traceparent: `00-${CLIENT_TRACE_ID}-${CLIENT_SPAN_ID}-01` });
      expect(created.status).toBe(201);
      return (created.body.ticket as { id: string }).id;
    };
    const tracingEnv = (protocol: string) => ({
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.origin,
      OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
      OTEL_SERVICE_NAME: 'helpdesk-under-test',
      // Exported within 100 ms, so that the spans of a process about to be killed are out.
      OTEL_BSP_SCHEDULE_DELAY: '100',
    });
    const scrape = async () => (await fetch(`${base}/metrics`)).text();
    return { database, receiver, collector, start, call, subscribe, createTicket, tracingEnv, scrape };
  }

  /** The trace of the ticket's creation: its request span, its transaction's span, its attempt spans. */
  function creationTrace(spans: readonly CollectedSpan[], attempts: number) {
    const request = spans.find((s) => s.traceId === CLIENT_TRACE_ID && s.name === `POST ${API}/tickets`);
    const transaction = request && spans.find((s) => s.parentSpanId === request.spanId && s.name === 'TRANSACTION ticket.create');
    const attemptSpans = transaction ? spans.filter((s) => s.parentSpanId === transaction.spanId && s.name === 'POST') : [];
    if (!request || !transaction || attemptSpans.length < attempts) return null;
    return { request, transaction, attempts: attemptSpans.sort((a, b) => Number(a.attributes['helpdesk.delivery.attempt']) - Number(b.attributes['helpdesk.delivery.attempt'])) };
  }

  for (const protocol of ['http/json', 'http/protobuf'] as const) {
    it(`puts a ticket's request, its transaction and every delivery attempt in one trace, exported as ${protocol}`, { timeout: 60_000 }, async () => {
      const { receiver, collector, start, subscribe, createTicket, tracingEnv, scrape } = await setUp();
      const server = await start(tracingEnv(protocol));
      // The first attempt fails: the retry is a second attempt span of the same trace.
      receiver.respondWith((_request, index) => ({ status: index === 0 ? 500 : 200 }));
      const webhookId = await subscribe(`${receiver.url('/hook')}?token=receiver-secret`);
      await createTicket();

      const received = await receiver.waitForRequests(2);
      const spans = await collector.waitForSpans('the request, transaction and two attempt spans', (all) => creationTrace(all, 2) !== null);
      const trace = creationTrace(spans, 2)!;
      const { request, transaction, attempts } = trace;

      // The request continues the client's trace; everything else hangs below it.
      expect(request.parentSpanId).toBe(CLIENT_SPAN_ID);
      expect(request.kind).toBe(SPAN_KIND.server);
      expect(request.attributes).toMatchObject({ 'http.request.method': 'POST', 'http.route': `${API}/tickets`, 'url.path': `${API}/tickets`, 'http.response.status_code': 201, 'server.address': '127.0.0.1' });
      expect(request.resource['service.name']).toBe('helpdesk-under-test');

      expect(transaction.traceId).toBe(CLIENT_TRACE_ID);
      expect(transaction.kind).toBe(SPAN_KIND.client);
      expect(transaction.attributes).toMatchObject({ 'db.system.name': dialect === 'sqlite' ? 'sqlite' : 'postgresql', 'db.operation.name': 'TRANSACTION', 'helpdesk.change': 'ticket.create' });
      expect(typeof transaction.attributes['db.namespace']).toBe('string');

      expect(attempts.map((a) => a.traceId)).toEqual([CLIENT_TRACE_ID, CLIENT_TRACE_ID]);
      for (const attempt of attempts) {
        expect(attempt.kind).toBe(SPAN_KIND.client);
        expect(attempt.attributes).toMatchObject({
          'http.request.method': 'POST',
          // The receiver's token in the query is not exported.
          'url.full': `${receiver.url('/hook')}?token=REDACTED`,
          'server.address': '127.0.0.1',
          'server.port': receiver.port,
          'helpdesk.webhook.id': webhookId,
          'helpdesk.event.type': 'ticket.created',
        });
      }
      expect(attempts[0]!.attributes).toMatchObject({ 'http.response.status_code': 500, 'error.type': '500', 'helpdesk.delivery.attempt': 1 });
      expect(attempts[0]!.statusCode).toBe(STATUS_CODE.error);
      expect(attempts[1]!.attributes).toMatchObject({ 'http.response.status_code': 200, 'helpdesk.delivery.attempt': 2, 'http.request.resend_count': 1 });
      expect(attempts[1]!.attributes['error.type']).toBeUndefined();
      expect(attempts[0]!.attributes['helpdesk.delivery.id']).toBe(received[0]!.headers['webhook-id']);

      // Each attempt told its receiver its own span, in the ticket's trace.
      expect(received.map((r) => r.headers.traceparent)).toEqual(attempts.map((a) => `00-${CLIENT_TRACE_ID}-${a.spanId}-01`));
      // Every export spoke the protocol asked for.
      expect(new Set(collector.exports)).toEqual(new Set([protocol === 'http/json' ? 'application/json' : 'application/x-protobuf']));
      // Counted once the collector's answer is back, a moment after it kept the spans.
      const metrics = await waitFor('the exported spans to be counted', async () => {
        const text = await scrape();
        return Number(/helpdesk_tracing_spans_total\{outcome="exported"\} (\d+)/.exec(text)?.[1]) >= 4 && text;
      });
      expect(metrics).toContain('helpdesk_tracing_spans_total{outcome="failed"} 0');

      server.child.kill('SIGTERM');
      expect((await server.exited).code).toBe(0);
    });
  }

  it('gives each ticket created together, in one group-committed transaction, a trace of its own', { timeout: 60_000 }, async () => {
    const { receiver, collector, start, call, subscribe, tracingEnv } = await setUp();
    const server = await start(tracingEnv('http/json'));
    await subscribe(receiver.url('/hook'));
    const clients = Array.from({ length: 8 }, (_, i) => ({ traceId: `${'ab'.repeat(15)}${String(i).padStart(2, '0')}`, spanId: `${'cd'.repeat(7)}${String(i).padStart(2, '0')}` }));
    const created = await Promise.all(clients.map(({ traceId, spanId }, i) => call('POST', '/tickets', { ticket: { subject: `together ${i}` } }, { traceparent: `00-${traceId}-${spanId}-01` })));
    expect(created.map((c) => c.status)).toEqual(clients.map(() => 201));
    const received = await receiver.waitForRequests(clients.length);

    const traceOf = (all: readonly CollectedSpan[], traceId: string) => {
      const request = all.find((s) => s.traceId === traceId && s.kind === SPAN_KIND.server);
      const transaction = request && all.find((s) => s.parentSpanId === request.spanId && s.name === 'TRANSACTION ticket.create');
      const attempt = transaction && all.find((s) => s.parentSpanId === transaction.spanId && s.name === 'POST');
      return attempt ? { request, transaction, attempt } : null;
    };
    const spans = await collector.waitForSpans('a full trace per ticket', (all) => clients.every(({ traceId }) => traceOf(all, traceId) !== null));
    const traces = clients.map(({ traceId, spanId }) => {
      const trace = traceOf(spans, traceId)!;
      expect(trace.request.parentSpanId).toBe(spanId);
      expect([trace.transaction.traceId, trace.attempt.traceId]).toEqual([traceId, traceId]);
      return trace;
    });
    // Each receiver request names its own ticket's trace and attempt span.
    expect(new Set(received.map((r) => r.headers.traceparent))).toEqual(new Set(traces.map((t) => `00-${t.attempt.traceId}-${t.attempt.spanId}-01`)));
    // Creations that arrive together may share one transaction; each trace still has a span of its own.
    expect(new Set(traces.map((t) => t.transaction.spanId)).size).toBe(clients.length);

    server.child.kill('SIGTERM');
    expect((await server.exited).code).toBe(0);
  });

  it('joins the trace with a retry made by the process started after a SIGKILL', { timeout: 60_000 }, async () => {
    const { receiver, collector, start, call, subscribe, createTicket, tracingEnv } = await setUp();
    let killed = false;
    // Refused until the first process is dead: the attempt that succeeds is the new process's.
    receiver.respondWith(() => ({ status: killed ? 200 : 503 }));
    // The retry falls due well after the kill, in the next process.
    const env = { ...tracingEnv('http/protobuf'), HELPDESK_RETRY_SCHEDULE: '3,0.2,0.2' };
    const first = await start(env);
    const webhookId = await subscribe(receiver.url('/hook'));
    await createTicket();
    await receiver.waitForRequests(1);
    // The failed attempt is recorded (so the next process retries it, without a lease to wait
    // out) and its span is exported.
    await waitFor('the first attempt to be recorded', async () => {
      const list = await call('GET', `/webhooks/${webhookId}/deliveries`);
      const delivery = (list.body.deliveries as { status?: string; attemptCount?: number }[])[0];
      return delivery !== undefined && delivery.attemptCount! >= 1 && delivery.status === 'pending';
    });
    await collector.waitForSpans('the first attempt span', (all) => creationTrace(all, 1) !== null);
    first.child.kill('SIGKILL');
    await first.exited;
    killed = true;

    // Only a living process exports its spans: the successful attempt's span is the new one's.
    const second = await start(env);
    const succeededIn = (all: readonly CollectedSpan[]) => creationTrace(all, 1)?.attempts.find((a) => a.attributes['http.response.status_code'] === 200);
    const retry = succeededIn(await collector.waitForSpans('the successful attempt span, in the ticket\'s trace', (all) => succeededIn(all) !== undefined))!;
    expect(retry.traceId).toBe(CLIENT_TRACE_ID);
    expect(Number(retry.attributes['helpdesk.delivery.attempt'])).toBeGreaterThan(1);
    // The receiver was told the retry's span, in the ticket's trace.
    expect(receiver.requests.map((r) => r.headers.traceparent)).toContain(`00-${CLIENT_TRACE_ID}-${retry.spanId}-01`);

    second.child.kill('SIGTERM');
    expect((await second.exited).code).toBe(0);
  });

  it('sends no traceparent and exports nothing when off, OTEL_SDK_DISABLED winning over an endpoint', { timeout: 60_000 }, async () => {
    const { receiver, collector, start, subscribe, createTicket, database } = await setUp();
    const server = await start({ OTEL_SDK_DISABLED: 'true', OTEL_EXPORTER_OTLP_ENDPOINT: collector.origin, OTEL_BSP_SCHEDULE_DELAY: '100' });
    await subscribe(receiver.url('/hook'));
    await createTicket();
    const [delivered] = await receiver.waitForRequests(1);
    expect(delivered!.headers.traceparent).toBeUndefined();
    // A traced process exports what it has when it stops: this one has nothing to export.
    server.child.kill('SIGTERM');
    expect((await server.exited).code).toBe(0);
    expect(collector.exports).toEqual([]);
    expect(database.dialect).toBe(dialect);
  });

  it('delivers as usual while the collector never answers, and still stops', { timeout: 60_000 }, async () => {
    const { receiver, collector, start, subscribe, call, tracingEnv, scrape } = await setUp({ hang: true });
    const server = await start({ ...tracingEnv('http/protobuf'), OTEL_BSP_SCHEDULE_DELAY: '20' });
    await subscribe(receiver.url('/hook'));
    const tickets = 20;
    for (let i = 0; i < tickets; i += 1) expect((await call('POST', '/tickets', { ticket: { subject: `t${i}` } })).status).toBe(201);
    const received = await receiver.waitForRequests(tickets);
    expect(received.every((r) => TRACEPARENT.test(r.headers.traceparent ?? ''))).toBe(true);
    await waitFor('the collector to be sent an export', () => collector.exports.length > 0);
    // The spans of an export that timed out (after the exporter's 10 s) are counted as lost.
    await waitFor('failed spans to be counted', async () => Number(/helpdesk_tracing_spans_total\{outcome="failed"\} (\d+)/.exec(await scrape())?.[1]) > 0, 30_000);
    const stopping = Date.now();
    server.child.kill('SIGTERM');
    expect((await server.exited).code).toBe(0);
    // Bounded by the close's wait for the last spans (5 s), not by the collector.
    expect(Date.now() - stopping).toBeLessThan(9_000);
    expect(collector.spans).toEqual([]);
  });
});
