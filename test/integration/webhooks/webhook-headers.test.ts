/**
 * Custom webhook headers (docs/api.md, "Custom headers") through the HTTP API: received by a
 * real HTTPS receiver on first attempts, retries, redeliveries and test events; never in clear in
 * an answer, a log line, a table row or (SQLite) the database file and its WAL; a GET's object
 * sent back in a PUT changes nothing; and every refused set is a 400 naming its path that leaves
 * the webhooks as they were.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { SecretBox } from '../../../src/secrets/secret-box.js';
import { describeEachDialect } from '../../helpers/dialects.js';
import { startReceiver, type ReceivedRequest, type Receiver } from '../../helpers/receiver.js';
import { startTestServer, type ApiResponse, type TestServer } from '../../helpers/server.js';
import { waitFor } from '../../helpers/wait.js';

const MASK = '********';

/** A long random value: found in a byte dump only if it was written there. */
const marker = (what: string) => `${what}-${randomBytes(32).toString('hex')}`;

/** Every form a value could be written down in: as is, hex, base64, base64url. */
function formsOf(value: string): Buffer[] {
  const bytes = Buffer.from(value, 'latin1');
  return [bytes, Buffer.from(bytes.toString('hex')), Buffer.from(bytes.toString('base64')), Buffer.from(bytes.toString('base64url'))];
}

/** The path of a header in a 400: the service quotes the name, the schema layers dot it. */
const headerPaths = (name: string) => [`webhook.headers.${name}`];

function expectRefused(response: ApiResponse, paths: string[]): void {
  expect(response.status, JSON.stringify(response.body)).toBe(400);
  expect(response.body.error.code).toBe('validation_failed');
  const given = (response.body.error.details as { path: string }[]).map((d) => d.path);
  expect(given.some((p) => paths.includes(p)), `details ${JSON.stringify(response.body.error.details)} name one of ${JSON.stringify(paths)}`).toBe(true);
}

/** Every reserved name, in several cases, and names under each reserved prefix. */
const RESERVED = [
  'host', 'Host', 'HOST',
  'content-type', 'Content-Type',
  'content-length', 'Content-Length',
  'connection', 'Connection',
  'transfer-encoding', 'Transfer-Encoding',
  'te', 'TE',
  'upgrade', 'Upgrade',
  'user-agent', 'User-Agent', 'uSeR-aGeNt',
  'traceparent', 'TraceParent',
  // The HTTP client refuses to send these two: every attempt would fail.
  'expect', 'Expect', 'keep-alive', 'Keep-Alive',
  'proxy-authorization', 'Proxy-Authorization', 'PROXY-X',
  'webhook-id', 'Webhook-Signature', 'WEBHOOK-TIMESTAMP', 'webhook-anything',
  'x-helpdesk-event', 'X-Helpdesk-Webhook-Id', 'X-HELPDESK-ANYTHING',
];

describeEachDialect('webhook headers', (dialect) => {
  let server: TestServer;
  let receiver: Receiver;
  const logLines: string[] = [];
  /** The delivery of the ticket "retry me" fails once, then succeeds (its redelivery too). */
  const failedOnce = new Set<string>();

  beforeAll(async () => {
    receiver = await startReceiver({
      responder: (request) => {
        if (!request.body.includes('"subject":"retry me"') || failedOnce.has(request.headers['webhook-id']!)) return { status: 200, body: 'ok' };
        failedOnce.add(request.headers['webhook-id']!);
        return { status: 500, body: 'try again' };
      },
    });
    const logDestination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        logLines.push(...chunk.toString('latin1').split('\n').filter(Boolean));
        done();
      },
    });
    server = await startTestServer(dialect, { logDestination });
  });
  afterAll(async () => {
    await server?.close();
    await receiver?.close();
  });

  /** Every answer of the test, as text, to search for values. */
  const answers: string[] = [];
  async function call(method: string, path: string, options: Parameters<TestServer['request']>[2] = {}): Promise<ApiResponse> {
    const response = await server.request(method, path, options);
    answers.push(JSON.stringify(response.body ?? null), JSON.stringify(response.headers));
    return response;
  }

  async function rowsOfEveryTable(): Promise<string> {
    const db = server.runtime.database.db;
    const tables = (await db.introspection.getTables()).map((t) => t.name);
    // The tables this suite must see: the ones holding webhooks, events and deliveries.
    expect(tables).toEqual(expect.arrayContaining(['webhooks', 'events', 'deliveries', 'attempts', 'idempotency_keys', 'webhook_send_slots']));
    const dumps = await Promise.all(tables.map(async (table) => JSON.stringify(await db.selectFrom(table as 'webhooks').selectAll().execute())));
    return dumps.join('\n');
  }

  async function webhookList(): Promise<unknown[]> {
    const response = await call('GET', '/webhooks?limit=100');
    expect(response.body.nextCursor).toBeNull();
    return response.body.webhooks;
  }

  const receivedFor = (webhookId: string) => receiver.requests.filter((r) => r.headers['x-helpdesk-webhook-id'] === webhookId);

  async function nextRequest(webhookId: string, act: () => Promise<unknown>): Promise<ReceivedRequest> {
    const before = receivedFor(webhookId).length;
    await act();
    return waitFor(`a request for ${webhookId}`, () => receivedFor(webhookId)[before]);
  }

  async function createTicket(subject: string): Promise<void> {
    expect((await call('POST', '/tickets', { body: { ticket: { subject } } })).status).toBe(201);
  }

  it('sends the headers on every attempt, retries, redeliveries and test events, and never shows, logs or stores a value in clear', async () => {
    const apiKey = marker('key');
    const tenant = marker('tenant');
    const bearer = marker('bearer');
    const replacement = marker('replacement');
    const everyValue = [apiKey, tenant, `Bearer ${bearer}`, bearer, replacement];
    const headers = { 'X-Api-Key': apiKey, 'X-Tenant-Id': tenant, Authorization: `Bearer ${bearer}` };
    const masked = { 'X-Api-Key': MASK, 'X-Tenant-Id': MASK, Authorization: MASK };

    // Kept for its Idempotency-Key: the stored answer must not hold the values either.
    const created = await call('POST', '/webhooks', {
      body: { webhook: { name: 'crm', targetUrl: receiver.url('/crm'), events: ['ticket.created'], headers } },
      headers: { 'idempotency-key': 'headers-create-1' },
    });
    expect(created.status).toBe(201);
    const webhook = created.body.webhook;
    expect(webhook.headers).toEqual(masked);
    expect(Object.keys(webhook.headers)).toEqual(Object.keys(headers));
    const replayed = await call('POST', '/webhooks', {
      body: { webhook: { name: 'crm', targetUrl: receiver.url('/crm'), events: ['ticket.created'], headers } },
      headers: { 'idempotency-key': 'headers-create-1' },
    });
    expect([replayed.status, replayed.body.webhook.id, replayed.body.webhook.headers]).toEqual([201, webhook.id, masked]);
    const got = await call('GET', `/webhooks/${webhook.id}`);
    expect(got.body.webhook.headers).toEqual(masked);
    expect((await webhookList()).find((w) => (w as { id: string }).id === webhook.id)).toMatchObject({ headers: masked });
    const stored = await server.runtime.database.db.selectFrom('webhooks').select('headers').where('id', '=', webhook.id).executeTakeFirstOrThrow();
    const sealed = JSON.parse(stored.headers) as Record<string, string>;
    expect(Object.keys(sealed)).toEqual(Object.keys(headers));
    for (const value of Object.values(sealed)) expect(SecretBox.isSealed(value)).toBe(true);

    const expectCarried = (request: ReceivedRequest, values: Record<string, string | undefined>) => {
      for (const [name, value] of Object.entries(values)) expect(request.headers[name.toLowerCase()], name).toBe(value);
    };
    const sent = { 'X-Api-Key': apiKey, 'X-Tenant-Id': tenant, Authorization: `Bearer ${bearer}` };

    // First attempt (answered 500) and its retry.
    const first = await nextRequest(webhook.id, () => createTicket('retry me'));
    const retry = await waitFor('the retry', () => receivedFor(webhook.id)[1]);
    expect(retry.headers['webhook-id']).toBe(first.headers['webhook-id']);
    expectCarried(first, sent);
    expectCarried(retry, sent);
    const deliveries = await call('GET', `/webhooks/${webhook.id}/deliveries`);
    const [delivery] = deliveries.body.deliveries;
    await waitFor('the delivery to succeed', async () => (await call('GET', `/webhooks/${webhook.id}/deliveries`)).body.deliveries[0].status === 'succeeded');
    expect((await call('GET', `/webhooks/${webhook.id}/deliveries/${delivery.id}`)).body.delivery.attemptCount).toBe(2);

    // A redelivery and a test event.
    const redelivered = await nextRequest(webhook.id, async () => expect((await call('POST', `/webhooks/${webhook.id}/deliveries/${delivery.id}/redeliver`)).status).toBe(202));
    expect(redelivered.headers['webhook-id']).toBe(delivery.id);
    expectCarried(redelivered, sent);
    const test = await nextRequest(webhook.id, async () => expect((await call('POST', `/webhooks/${webhook.id}/test`)).status).toBe(202));
    expect(JSON.parse(test.body).event).toBe('webhook.test');
    expectCarried(test, sent);

    // A GET's object sent back in a PUT changes nothing, and the real values are still sent.
    const { name, targetUrl, events, active, filter, headers: shown, rateLimit } = got.body.webhook;
    const sentBack = await call('PUT', `/webhooks/${webhook.id}`, { body: { webhook: { name, targetUrl, events, active, filter, headers: shown, rateLimit } } });
    expect(sentBack.status).toBe(200);
    expect(sentBack.body).toEqual(got.body);
    const headersOnly = await call('PUT', `/webhooks/${webhook.id}`, { body: { webhook: { headers: shown } } });
    expect(headersOnly.body).toEqual(got.body);
    expect((await server.runtime.database.db.selectFrom('webhooks').select('headers').where('id', '=', webhook.id).executeTakeFirstOrThrow()).headers).toBe(stored.headers);
    expectCarried(await nextRequest(webhook.id, () => createTicket('after the round trip')), sent);

    // A name's case changed (its value kept), one value replaced, one header left out.
    const renamed = await call('PUT', `/webhooks/${webhook.id}`, { body: { webhook: { headers: { 'x-api-key': MASK, 'X-Tenant-Id': replacement } } } });
    expect(renamed.status, JSON.stringify(renamed.body)).toBe(200);
    expect(renamed.body.webhook.headers).toEqual({ 'x-api-key': MASK, 'X-Tenant-Id': MASK });
    expect(renamed.body.webhook.updatedAt > got.body.webhook.updatedAt).toBe(true);
    expect((await call('GET', `/webhooks/${webhook.id}`)).body).toEqual(renamed.body);
    const afterRename = await nextRequest(webhook.id, () => createTicket('after the rename'));
    expectCarried(afterRename, { 'X-Api-Key': apiKey, 'X-Tenant-Id': replacement, Authorization: undefined });

    // The mask for a name with no stored value, on a webhook with headers and on one without.
    const before = await call('GET', `/webhooks/${webhook.id}`);
    expectRefused(await call('PUT', `/webhooks/${webhook.id}`, { body: { webhook: { headers: { 'x-api-key': MASK, Authorization: MASK } } } }), headerPaths('Authorization'));
    expect((await call('GET', `/webhooks/${webhook.id}`)).body).toEqual(before.body);
    const count = (await webhookList()).length;
    expectRefused(await call('POST', '/webhooks', { body: { webhook: { name: 'masked', targetUrl: receiver.url('/plain'), events: ['ticket.created'], headers: { 'X-Api-Key': MASK } } } }), headerPaths('X-Api-Key'));
    expect((await webhookList()).length).toBe(count);

    // Nothing in clear anywhere: answers, log lines, rows, and on SQLite the file and its WAL.
    await waitFor('the attempt log lines', () => logLines.filter((l) => l.includes('"delivery attempt"')).length >= 6);
    const answerText = Buffer.from(answers.join('\n'), 'latin1');
    expect(answerText.includes(Buffer.from(MASK))).toBe(true);
    const logText = Buffer.from(logLines.join('\n'), 'latin1');
    expect(logText.includes(Buffer.from(webhook.id))).toBe(true);
    const rows = Buffer.from(await rowsOfEveryTable(), 'latin1');
    expect(rows.includes(Buffer.from('X-Tenant-Id'))).toBe(true);
    for (const value of everyValue) {
      for (const form of formsOf(value)) {
        expect(answerText.includes(form), `${value} in an answer`).toBe(false);
        expect(logText.includes(form), `${value} in a log line`).toBe(false);
        expect(rows.includes(form), `${value} in a row`).toBe(false);
      }
    }
    if (dialect === 'sqlite') {
      const file = server.database.url.slice('sqlite:'.length);
      expect(existsSync(`${file}-wal`)).toBe(true);
      const bytes = Buffer.concat([file, `${file}-wal`].map((f) => readFileSync(f)));
      // The probe works: what is stored in clear is there.
      expect(bytes.includes(Buffer.from('X-Tenant-Id'))).toBe(true);
      expect(bytes.includes(Buffer.from(webhook.id))).toBe(true);
      for (const value of everyValue) for (const form of formsOf(value)) expect(bytes.includes(form), `${value} in the database file`).toBe(false);
    }
  });

  it('refuses reserved names, too many headers and bad values with a 400 naming the path, on POST and PUT, changing nothing', async () => {
    const secret = marker('kept');
    const target = await call('POST', '/webhooks', { body: { webhook: { name: 'target', targetUrl: receiver.url('/refusals'), events: ['ticket.created'], headers: { 'X-Kept': secret } } } });
    expect(target.status).toBe(201);
    const id = target.body.webhook.id as string;
    const before = await call('GET', `/webhooks/${id}`);
    const count = (await webhookList()).length;

    const tooMany = Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`X-H${i}`, `v${i}`]));
    const cases: [string, Record<string, unknown>, string[]][] = [
      ...RESERVED.map((name): [string, Record<string, unknown>, string[]] => [`reserved ${name}`, { 'X-Fine': 'ok', [name]: 'value' }, headerPaths(name)]),
      ['21 headers', tooMany, ['webhook.headers']],
      ['a CR', { 'X-Cr': 'a\rb' }, headerPaths('X-Cr')],
      ['an LF', { 'X-Lf': 'a\nb' }, headerPaths('X-Lf')],
      ['a CRLF injecting a header', { 'X-Crlf': 'a\r\nX-Injected: yes' }, headerPaths('X-Crlf')],
      ['a NUL', { 'X-Nul': 'a\u0000b' }, headerPaths('X-Nul')],
      ['another control character', { 'X-Bell': 'a\u0007b' }, headerPaths('X-Bell')],
      ['DEL', { 'X-Del': 'a\u007fb' }, headerPaths('X-Del')],
      ['a character beyond Latin-1', { 'X-Euro': '5 €' }, headerPaths('X-Euro')],
      ['a leading space', { 'X-Space': ' value' }, headerPaths('X-Space')],
      ['a trailing tab', { 'X-Tab': 'value\t' }, headerPaths('X-Tab')],
      ['an empty value', { 'X-Empty': '' }, headerPaths('X-Empty')],
      ['a value of 1025 characters', { 'X-Long': 'v'.repeat(1025) }, headerPaths('X-Long')],
      ['a value that is not a string', { 'X-Number': 5 }, headerPaths('X-Number')],
      ['names differing in case only', { 'X-Dup': 'a', 'x-dup': 'b' }, headerPaths('x-dup')],
      ['a name with a space', { 'X Bad': 'v' }, headerPaths('X Bad')],
      ['a name with a colon', { 'X-Bad:': 'v' }, headerPaths('X-Bad:')],
      ['an empty name', { '': 'v' }, headerPaths('')],
      ['headers as an array', [['X-A', 'v']] as unknown as Record<string, unknown>, ['webhook.headers']],
    ];
    for (const [what, headers, paths] of cases) {
      const created = await call('POST', '/webhooks', { body: { webhook: { name: what, targetUrl: receiver.url('/refusals'), events: ['ticket.created'], headers } } });
      expectRefused(created, paths);
      const updated = await call('PUT', `/webhooks/${id}`, { body: { webhook: { headers } } });
      expectRefused(updated, paths);
    }
    expect((await webhookList()).length).toBe(count);
    expect((await call('GET', `/webhooks/${id}`)).body).toEqual(before.body);

    // At the limits: 20 headers, a value of 1024 characters, Latin-1 and inner spaces.
    const twenty = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`X-H${i}`, `v${i}`]));
    const atLimits = { ...Object.fromEntries(Object.entries(twenty).slice(0, 17)), 'X-Long': 'v'.repeat(1024), 'X-Latin': 'Grüße aus Köln', 'X-Inner': 'a b\tc' };
    for (const headers of [twenty, atLimits]) {
      const created = await call('POST', '/webhooks', { body: { webhook: { name: 'at the limits', targetUrl: receiver.url('/limits'), events: ['ticket.created'], headers } } });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      expect(Object.keys(created.body.webhook.headers)).toEqual(Object.keys(headers));
    }
    const limits = await call('PUT', `/webhooks/${id}`, { body: { webhook: { headers: atLimits } } });
    expect(limits.status).toBe(200);
    const request = await nextRequest(id, () => createTicket('at the limits'));
    expect(request.headers['x-long']).toBe('v'.repeat(1024));
    expect(Buffer.from(request.headers['x-latin']!, 'latin1')).toEqual(Buffer.from('Grüße aus Köln', 'latin1'));
    expect(request.headers['x-inner']).toBe('a b\tc');
    expect(request.headers['x-kept']).toBeUndefined();

    expect(Buffer.from(logLines.join('\n'), 'latin1').includes(Buffer.from(secret))).toBe(false);
  });
});
