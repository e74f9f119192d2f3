/**
 * SSRF through DNS rebinding (docs/delivery.md, "Outbound safety": "a hostname is checked on the address actually connected
 * to, so DNS tricks cannot bypass it"). A DNS server of the test's own answers `localhost` with
 * 127.0.0.2 (let through by `allowedTargetCidrs: ['127.0.0.2/32']`, the stand-in for a public
 * address) and 127.0.0.1 (loopback: blocked) in turn, with TTL 0. A receiver listens on
 * 127.0.0.2 and an "internal" server on 127.0.0.1, on the same port. A client that looked the
 * name up once to check it and again to connect would, sooner or later, be told 127.0.0.2 first
 * and 127.0.0.1 second; the outbound module does one lookup per connection and connects to an
 * address of that same answer, so the internal server must never see a connection.
 */
import { afterEach, describe, expect, inject, it } from 'vitest';
import { OutboundHttp, type OutboundResponse } from '../../../src/outbound/http-client.js';
import { describeEachDialect } from '../../helpers/dialects.js';
import { startDnsServer, type DnsServer } from '../../helpers/dns-server.js';
import { startReceiver, startTcpServer, type Receiver, type TcpServer } from '../../helpers/receiver.js';
import { startTestServer } from '../../helpers/server.js';
import { waitFor } from '../../helpers/wait.js';

const ALLOWED = '127.0.0.2';
const INTERNAL = '127.0.0.1';

interface Targets {
  /** On 127.0.0.2: answers 200 and closes, so that every request opens a new connection (and looks the name up again). */
  receiver: Receiver;
  /** On 127.0.0.1, same port: must never be connected to. */
  internal: TcpServer;
  url: string;
}

/** The receiver on 127.0.0.2 and the internal server on 127.0.0.1, on one port. */
async function startTargets(): Promise<Targets> {
  for (let tries = 0; ; tries += 1) {
    const receiver = await startReceiver({ bindAddress: ALLOWED, responder: () => ({ status: 200, headers: { connection: 'close' }, body: 'reached 127.0.0.2' }) });
    try {
      const internal = await startTcpServer((socket) => socket.destroy(), { bindAddress: INTERNAL, port: receiver.port });
      return { receiver, internal, url: `https://localhost:${receiver.port}/hook` };
    } catch (error) {
      await receiver.close();
      // The port is taken on 127.0.0.1 by someone else: draw another.
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE' || tries >= 5) throw error;
    }
  }
}

describe('DNS rebinding, at the outbound module', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function setUp(answerFor: (index: number) => string[]): Promise<{ dns: DnsServer; targets: Targets; http: OutboundHttp }> {
    const dns = await startDnsServer(answerFor);
    cleanups.push(() => dns.close());
    const targets = await startTargets();
    cleanups.push(() => targets.receiver.close(), () => targets.internal.close());
    const http = new OutboundHttp({
      allowPrivateTargets: false,
      allowedTargetCidrs: [`${ALLOWED}/32`],
      extraCaCertificates: [inject('tls').ca],
      lookup: dns.resolveAll(),
    });
    cleanups.push(() => http.close());
    return { dns, targets, http };
  }

  async function postSequentially(http: OutboundHttp, url: string, count: number): Promise<OutboundResponse[]> {
    const responses: OutboundResponse[] = [];
    for (let i = 0; i < count; i += 1) responses.push(await http.post(url, { 'content-type': 'application/json' }, `{"n":${i}}`));
    return responses;
  }

  it('connects only to an address of the answer it checked, however the answer changes between lookups', async () => {
    const { dns, targets, http } = await setUp((index) => (index % 2 === 0 ? [ALLOWED] : [INTERNAL]));
    const responses = await postSequentially(http, targets.url, 20);
    expect(targets.internal.connections).toBe(0);

    // One lookup per connection, one connection per request: the n-th answer decided the n-th post.
    const answers = dns.queries.filter((q) => q.type === 1).map((q) => q.answer);
    expect(answers).toHaveLength(20);
    expect(new Set(answers.map((a) => a.join()))).toEqual(new Set([ALLOWED, INTERNAL]));
    responses.forEach((response, i) => {
      expect(response).toMatchObject(answers[i]![0] === ALLOWED ? { statusCode: 200, error: null, body: 'reached 127.0.0.2' } : { statusCode: null, error: 'blocked_address' });
    });
    expect(targets.receiver.requests).toHaveLength(10);
    expect(targets.receiver.connections).toBe(10);
  });

  it('connects to the allowed address of an answer that mixes allowed and blocked ones, and to none when all are blocked', async () => {
    const ANSWERS = [
      [INTERNAL, ALLOWED],
      [ALLOWED, INTERNAL],
      ['169.254.169.254', INTERNAL, '10.0.0.1'],
    ];
    const { dns, targets, http } = await setUp((index) => ANSWERS[index % ANSWERS.length]!);
    const responses = await postSequentially(http, targets.url, 9);
    expect(targets.internal.connections).toBe(0);

    expect(dns.queries.filter((q) => q.type === 1).map((q) => q.answer)).toEqual([...ANSWERS, ...ANSWERS, ...ANSWERS]);
    expect(responses.map((r) => r.error)).toEqual(Array.from({ length: 3 }, () => [null, null, 'blocked_address']).flat());
    expect(targets.receiver.requests).toHaveLength(6);
  });

  it('keeps every attempt on the checked address when many connect at once', async () => {
    const { dns, targets, http } = await setUp((index) => (index % 2 === 0 ? [ALLOWED] : [INTERNAL]));
    const responses = await Promise.all(Array.from({ length: 30 }, (_, i) => http.post(targets.url, {}, `{"n":${i}}`)));
    expect(targets.internal.connections).toBe(0);
    for (const response of responses) {
      expect([JSON.stringify([200, null]), JSON.stringify([null, 'blocked_address'])]).toContain(JSON.stringify([response.statusCode, response.error]));
    }
    expect(responses.filter((r) => r.statusCode === 200).length).toBe(targets.receiver.requests.length);
    expect(targets.receiver.requests.length).toBeGreaterThan(0);
    expect(responses.some((r) => r.error === 'blocked_address')).toBe(true);
    expect(dns.queries.length).toBeGreaterThan(1);
  });

  it('records an answer with no address as a DNS failure', async () => {
    const { targets, http } = await setUp(() => []);
    expect(await http.post(targets.url, {}, '{}')).toMatchObject({ statusCode: null, error: 'dns' });
    expect(targets.internal.connections + targets.receiver.connections).toBe(0);
  });
});

describeEachDialect('DNS rebinding, through the worker', (dialect) => {
  it('records every attempt as delivered to the checked address or blocked_address, never reaching the internal one', async () => {
    const dns = await startDnsServer((index) => (index % 2 === 0 ? [ALLOWED] : [INTERNAL]));
    const targets = await startTargets();
    const server = await startTestServer(dialect, {
      env: { HELPDESK_ALLOW_PRIVATE_TARGETS: 'false', HELPDESK_ALLOWED_TARGET_CIDRS: `${ALLOWED}/32` },
      runtime: { outbound: { lookup: dns.resolveAll() } },
    });
    try {
      const created = await server.request('POST', '/webhooks', { body: { webhook: { name: 'rebinding', targetUrl: targets.url, events: ['ticket.created'] } } });
      expect(created.status).toBe(201);
      const webhookId = created.body.webhook.id as string;
      for (let i = 0; i < 10; i += 1) expect((await server.request('POST', '/tickets', { body: { ticket: { subject: `rebind ${i}` } } })).status).toBe(201);

      const db = server.runtime.database.db;
      await waitFor('every delivery to finish', async () => {
        const rows = await db.selectFrom('deliveries').select('status').where('webhook_id', '=', webhookId).execute();
        return rows.length === 10 && rows.every((r) => r.status !== 'pending');
      });
      const attempts = await db
        .selectFrom('attempts')
        .innerJoin('deliveries', 'deliveries.id', 'attempts.delivery_id')
        .select(['attempts.status_code', 'attempts.error'])
        .where('deliveries.webhook_id', '=', webhookId)
        .execute();
      expect(targets.internal.connections).toBe(0);
      const outcomes = attempts.map((a) => `${a.status_code}/${a.error}`);
      expect(new Set(outcomes)).toEqual(new Set(['200/null', 'null/blocked_address']));
      expect(outcomes.filter((o) => o === '200/null').length).toBe(targets.receiver.requests.length);
      // A blocked attempt is retried on the schedule and the next lookup may let it through.
      const statuses = await db.selectFrom('deliveries').select('status').where('webhook_id', '=', webhookId).execute();
      expect(statuses.filter((s) => s.status === 'succeeded').length).toBe(new Set(targets.receiver.requests.map((r) => r.headers['webhook-id'])).size);
      expect(dns.queries.length).toBeGreaterThanOrEqual(10);
    } finally {
      await server.close();
      await targets.receiver.close();
      await targets.internal.close();
      await dns.close();
    }
  });
});
