/**
 * Idempotency-Key on POST: the same key and request replay the first response; another request
 * under the key is refused with 422; a key whose request is running is refused with 409; keys
 * are per API key and kept 24 h.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { RetentionPruner } from '../../../src/retention/retention.js';
import { DeliveryWakeup } from '../../../src/delivery/wakeup.js';
import { IdempotencyService, LOCK_MS, requestFingerprint } from '../../../src/idempotency/idempotency.service.js';
import { createLogger } from '../../../src/logger.js';
import { TicketsService } from '../../../src/tickets/tickets.service.js';
import { SecretBox } from '../../../src/secrets/secret-box.js';
import { Outbox } from '../../../src/delivery/outbox.js';
import { webhookDirectory } from '../../../src/webhooks/webhook-directory.js';
import { describeEachDialect } from '../../helpers/dialects.js';
import { startReceiver, type Receiver } from '../../helpers/receiver.js';
import { API, SECRET_KEY, startTestServer, type ApiResponse, type TestServer } from '../../helpers/server.js';

const HOUR = 60 * 60 * 1000;

describeEachDialect('Idempotency-Key', (dialect) => {
  let server: TestServer;
  let receiver: Receiver;
  let now = Date.now();
  beforeAll(async () => {
    receiver = await startReceiver();
    server = await startTestServer(dialect, { runtime: { clock: { now: () => now } } });
  });
  afterAll(async () => {
    await server.close();
    await receiver.close();
  });

  let counter = 0;
  function newKey(): string {
    counter += 1;
    return `key-${counter}-${Math.random().toString(36).slice(2)}`;
  }

  function createTicket(key: string | null, subject: string, apiKey?: string): Promise<ApiResponse> {
    return server.request('POST', '/tickets', {
      body: { ticket: { subject } },
      headers: key === null ? {} : { 'idempotency-key': key },
      ...(apiKey === undefined ? {} : { key: apiKey }),
    });
  }

  async function ticketCount(subject: string): Promise<number> {
    const rows = await server.runtime.database.db.selectFrom('tickets').select('id').where('subject', '=', subject).execute();
    return rows.length;
  }

  async function eventCount(ticketId: string): Promise<number> {
    return (await server.runtime.database.db.selectFrom('events').select('id').where('ticket_id', '=', ticketId).execute()).length;
  }

  it('replays the first response to the same key and body, and creates the ticket once', async () => {
    const hook = await server.request('POST', '/webhooks', { body: { webhook: { name: 'idem', targetUrl: receiver.url(), events: ['ticket.created'] } } });
    expect(hook.status).toBe(201);
    const key = newKey();
    const first = await createTicket(key, 'once only');
    expect(first.status).toBe(201);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    for (let i = 0; i < 3; i += 1) {
      const again = await createTicket(key, 'once only');
      expect(again.status).toBe(201);
      expect(again.body).toEqual(first.body);
      expect(again.headers['idempotent-replayed']).toBe('true');
      expect(again.headers['content-type']).toMatch(/^application\/json/);
    }
    expect(await ticketCount('once only')).toBe(1);
    expect(await eventCount(first.body.ticket.id)).toBe(1);
    // Without a key, the same body is a new ticket each time.
    expect((await createTicket(null, 'once only')).status).toBe(201);
    expect(await ticketCount('once only')).toBe(2);
    await server.request('DELETE', `/webhooks/${hook.body.webhook.id}`);
  });

  it('fingerprints the body whatever the order of its fields', async () => {
    const key = newKey();
    const post = (rawBody: string) => server.request('POST', '/tickets', { rawBody, headers: { 'idempotency-key': key, 'content-type': 'application/json' } });
    const first = await post('{"ticket":{"subject":"ordered","priority":"high"}}');
    const reordered = await post('{ "ticket": { "priority": "high", "subject": "ordered" } }');
    expect(reordered.status).toBe(201);
    expect(reordered.body).toEqual(first.body);
    expect(await ticketCount('ordered')).toBe(1);
  });

  it('stores the fingerprint sealed, so a reader of the database cannot test guesses of the body against it', async () => {
    const key = newKey();
    expect((await createTicket(key, 'fingerprinted')).status).toBe(201);
    const row = await server.runtime.database.db.selectFrom('idempotency_keys').select('fingerprint').where('key', '=', key).executeTakeFirstOrThrow();
    const canonical = `POST ${API}/tickets\n{"ticket":{"subject":"fingerprinted"}}`;
    const hash = createHash('sha256').update(canonical).digest('hex');
    expect(requestFingerprint('POST', `${API}/tickets`, { ticket: { subject: 'fingerprinted' } })).toEqual({ sha256: hash, canonical });
    expect(SecretBox.isSealed(row.fingerprint)).toBe(true);
    expect(row.fingerprint).not.toContain(hash);
    expect(new SecretBox(Buffer.from(SECRET_KEY, 'base64')).open(row.fingerprint, `idempotency fingerprint:bootstrap:${key}`)).toBe(hash);
  });

  it('still recognises a fingerprint stored before they were sealed (a keyed digest)', async () => {
    const key = newKey();
    const body = { ticket: { subject: 'digested before' } };
    const first = await server.request('POST', '/tickets', { body, headers: { 'idempotency-key': key } });
    expect(first.status).toBe(201);
    const { canonical } = requestFingerprint('POST', `${API}/tickets`, body);
    const [digest] = new SecretBox(Buffer.from(SECRET_KEY, 'base64')).digests(canonical, 'idempotency fingerprint');
    await server.runtime.database.db.updateTable('idempotency_keys').set({ fingerprint: digest! }).where('key', '=', key).execute();
    const replayed = await server.request('POST', '/tickets', { body, headers: { 'idempotency-key': key } });
    expect(replayed.headers['idempotent-replayed']).toBe('true');
    expect(replayed.body).toEqual(first.body);
    expect((await server.request('POST', '/tickets', { body: { ticket: { subject: 'another' } }, headers: { 'idempotency-key': key } })).status).toBe(422);
  });

  it('refuses the key with another body or on another route (422), changing nothing', async () => {
    const key = newKey();
    expect((await createTicket(key, 'the first body')).status).toBe(201);
    const other = await createTicket(key, 'another body');
    expect(other.status).toBe(422);
    expect(other.body.error).toMatchObject({ code: 'idempotency_key_reused', requestId: expect.any(String) });
    expect(await ticketCount('another body')).toBe(0);
    const otherRoute = await server.request('POST', '/webhooks', {
      body: { webhook: { name: 'x', targetUrl: receiver.url(), events: ['ticket.created'] } },
      headers: { 'idempotency-key': key },
    });
    expect(otherRoute.status).toBe(422);
    expect((await server.request('GET', '/webhooks')).body.webhooks.filter((w: { name: string }) => w.name === 'x')).toEqual([]);
  });

  it('keeps keys apart per API key', async () => {
    const agent = await server.keyFor('agent');
    const key = newKey();
    expect((await createTicket(key, 'per caller')).status).toBe(201);
    const theirs = await createTicket(key, 'per caller', agent.key);
    expect(theirs.status).toBe(201);
    expect(theirs.headers['idempotent-replayed']).toBeUndefined();
    expect(await ticketCount('per caller')).toBe(2);
  });

  it('answers 409 with Retry-After while the key’s first request runs, and runs it again once its lock has run out', async () => {
    const key = newKey();
    const body = { ticket: { subject: 'in flight' } };
    // A request under way in another process: its row, locked, with no response yet.
    await server.runtime.database.db
      .insertInto('idempotency_keys')
      .values({
        scope: 'bootstrap',
        key,
        fingerprint: new SecretBox(Buffer.from(SECRET_KEY, 'base64')).seal(requestFingerprint('POST', `${API}/tickets`, body).sha256, `idempotency fingerprint:bootstrap:${key}`),
        locked_until: new Date(now + LOCK_MS).toISOString(),
        response_status: null,
        response_body: null,
        created_at: new Date(now).toISOString(),
        expires_at: new Date(now + 24 * HOUR).toISOString(),
      })
      .execute();
    const busy = await server.request('POST', '/tickets', { body, headers: { 'idempotency-key': key } });
    expect(busy.status).toBe(409);
    expect(busy.body.error.code).toBe('idempotency_key_in_use');
    expect(busy.headers['retry-after']).toBe('1');
    expect(await ticketCount('in flight')).toBe(0);
    // Its process died: once the lock has run out, the retry runs.
    now += LOCK_MS + 1;
    const retried = await server.request('POST', '/tickets', { body, headers: { 'idempotency-key': key } });
    expect(retried.status).toBe(201);
    expect(await ticketCount('in flight')).toBe(1);
    expect((await server.request('POST', '/tickets', { body, headers: { 'idempotency-key': key } })).body).toEqual(retried.body);
  });

  it('stores a ticket creation’s response in the ticket’s own transaction, so a crash after the commit replays', async () => {
    const { db, capabilities } = server.runtime.database;
    const clock = { now: () => now };
    const box = new SecretBox(Buffer.from(SECRET_KEY, 'base64'));
    const idempotency = new IdempotencyService(db, capabilities, clock, box);
    const outbox = new Outbox(capabilities, webhookDirectory(capabilities, box));
    const tickets = new TicketsService(db, capabilities, clock, outbox, new DeliveryWakeup(), idempotency, createLogger('silent'));
    const key = newKey();
    const body = { ticket: { subject: 'crash after commit' } };
    const start = await idempotency.start('bootstrap', key, idempotency.fingerprint('POST', `${API}/tickets`, body));
    expect(start.kind).toBe('run');
    // The service alone: the process dies before the HTTP layer stores the response.
    const ticket = await tickets.create(body.ticket, start.kind === 'run' ? start.claim : null);
    await tickets.settled();
    const row = await db.selectFrom('idempotency_keys').selectAll().where('key', '=', key).executeTakeFirstOrThrow();
    expect(row.response_status).toBe(201);
    const retry = await server.request('POST', '/tickets', { body, headers: { 'idempotency-key': key } });
    expect(retry.status).toBe(201);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.body).toEqual({ ticket });
    expect(await ticketCount('crash after commit')).toBe(1);
  });

  it('replays a refusal the route made (404), but keeps no trace of a body refused by validation', async () => {
    const key = newKey();
    const missing = await server.request('POST', '/webhooks/whk_missing/test', { headers: { 'idempotency-key': key } });
    expect(missing.status).toBe(404);
    const replay = await server.request('POST', '/webhooks/whk_missing/test', { headers: { 'idempotency-key': key } });
    expect(replay.status).toBe(404);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.body).toEqual(missing.body);

    const fresh = newKey();
    const invalid = await server.request('POST', '/tickets', { body: { ticket: { subject: '' } }, headers: { 'idempotency-key': fresh } });
    expect(invalid.status).toBe(400);
    const valid = await createTicket(fresh, 'after a refusal');
    expect(valid.status).toBe(201);
    expect(valid.headers['idempotent-replayed']).toBeUndefined();
  });

  it('refuses a malformed key with 400, changing nothing', async () => {
    for (const key of ['x'.repeat(256), 'has space', 'ünïcode']) {
      const response = await server.request('POST', '/tickets', { body: { ticket: { subject: 'bad key' } }, headers: { 'idempotency-key': key } });
      expect(response.status).toBe(400);
      expect(response.body.error).toMatchObject({ code: 'validation_failed', details: [{ path: 'Idempotency-Key' }] });
    }
    expect(await ticketCount('bad key')).toBe(0);
    expect((await createTicket('x'.repeat(255), 'long key')).status).toBe(201);
  });

  it('replays a response that carried a secret, which is stored sealed', async () => {
    const key = newKey();
    const body = { webhook: { name: 'secret once', targetUrl: receiver.url(), events: ['ticket.created'] } };
    const first = await server.request('POST', '/webhooks', { body, headers: { 'idempotency-key': key } });
    expect(first.status).toBe(201);
    const again = await server.request('POST', '/webhooks', { body, headers: { 'idempotency-key': key } });
    expect(again.body.webhook.signingSecret).toBe(first.body.webhook.signingSecret);
    const stored = await server.runtime.database.db.selectFrom('idempotency_keys').selectAll().where('key', '=', key).executeTakeFirstOrThrow();
    expect(stored.response_status).toBe(201);
    expect(stored.response_body).not.toContain(first.body.webhook.signingSecret.slice('whsec_'.length));
    await server.request('DELETE', `/webhooks/${first.body.webhook.id}`);
  });

  it('keeps a key 24 hours: replayed just before, a new request after, and pruned by retention', async () => {
    const key = newKey();
    const first = await createTicket(key, 'a day');
    now += 24 * HOUR - 1000;
    expect((await createTicket(key, 'a day')).body).toEqual(first.body);
    now += 2000;
    const later = await createTicket(key, 'a day');
    expect(later.status).toBe(201);
    expect(later.headers['idempotent-replayed']).toBeUndefined();
    expect(later.body.ticket.id).not.toBe(first.body.ticket.id);

    const old = newKey();
    await createTicket(old, 'to be pruned');
    now += 24 * HOUR + 1;
    const pruner = new RetentionPruner({ db: server.runtime.database.db, clock: { now: () => now }, logger: createLogger('silent'), retentionDays: 30 });
    expect(await pruner.pruneOnce()).toBeGreaterThanOrEqual(1);
    const left = await server.runtime.database.db.selectFrom('idempotency_keys').select('key').where('key', 'in', [old, key]).execute();
    expect(left).toEqual([]);
  });
});
