/**
 * The Webhooks API of the published reference (seed/webhooks-api.txt), field for field, with
 * what docs/api.md and docs/delivery.md add: validation and the outbound address rule at
 * create/update time. What deactivating or deleting a webhook does to its deliveries is in
 * webhook-changes.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DialectName } from '../../../src/db/capabilities.js';
import { describeEachDialect } from '../../helpers/dialects.js';
import { startTestServer, type ApiResponse, type TestServer } from '../../helpers/server.js';

const ALL_EVENTS = ['ticket.created', 'ticket.updated', 'ticket.deleted', 'ticket.assignment.changed', 'ticket.resolved'];
// The reference's fields, plus the additions (docs/api.md, "Webhooks") of the delivery engine (disabledReason, disabledAt).
const CREATE_KEYS = ['active', 'createdAt', 'disabledAt', 'disabledReason', 'events', 'filter', 'headers', 'id', 'name', 'rateLimit', 'signingSecret', 'targetUrl', 'updatedAt'];
const PUBLIC_KEYS = CREATE_KEYS.filter((key) => key !== 'signingSecret');
const ISO_MS_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

interface WebhookBody {
  id: string;
  name: string;
  targetUrl: string;
  events: string[];
  active: boolean;
  signingSecret?: string;
  createdAt: string;
  updatedAt: string;
}

function validWebhook(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { name: 'My Integration', targetUrl: 'https://example.com/webhook', events: ['ticket.created', 'ticket.updated'], ...extra };
}

function expectIsoMs(value: unknown): void {
  expect(value).toMatch(ISO_MS_UTC);
  expect(new Date(value as string).toISOString()).toBe(value);
}

/** A 400 validation_failed whose details name `path` (a RegExp for paths into an array). */
function expectValidationFailed(response: ApiResponse, path: string | RegExp): void {
  expect(response.status, JSON.stringify(response.body)).toBe(400);
  expect(response.body.error.code).toBe('validation_failed');
  expect(response.body.error.requestId).toBe(response.headers['x-request-id']);
  const paths = (response.body.error.details as { path: string; message: string }[]).map((d) => d.path);
  if (typeof path === 'string') expect(paths).toContain(path);
  else expect(paths.some((p) => path.test(p)), `details paths ${JSON.stringify(paths)}`).toBe(true);
  for (const detail of response.body.error.details) expect(typeof detail.message).toBe('string');
}

async function listAll(server: TestServer): Promise<WebhookBody[]> {
  const all: WebhookBody[] = [];
  let cursor: string | null = null;
  do {
    const response: ApiResponse = await server.request('GET', `/webhooks?limit=100${cursor ? `&cursor=${cursor}` : ''}`);
    expect(response.status).toBe(200);
    all.push(...(response.body.webhooks as WebhookBody[]));
    cursor = response.body.nextCursor as string | null;
  } while (cursor !== null);
  return all;
}

async function create(server: TestServer, extra: Record<string, unknown> = {}): Promise<WebhookBody> {
  const response = await server.request('POST', '/webhooks', { body: { webhook: validWebhook(extra) } });
  expect(response.status, JSON.stringify(response.body)).toBe(201);
  return response.body.webhook as WebhookBody;
}

/** Every way a webhook body can be refused at creation, and the detail path that says why. */
const INVALID_CREATE: [string, unknown, string | RegExp][] = [
  ['missing name', { targetUrl: 'https://example.com/hook', events: ['ticket.created'] }, 'webhook.name'],
  ['missing targetUrl', { name: 'n', events: ['ticket.created'] }, 'webhook.targetUrl'],
  ['missing events', { name: 'n', targetUrl: 'https://example.com/hook' }, 'webhook.events'],
  ['empty events', validWebhook({ events: [] }), 'webhook.events'],
  ['duplicate events', validWebhook({ events: ['ticket.created', 'ticket.updated', 'ticket.created'] }), 'webhook.events'],
  ['unknown event type', validWebhook({ events: ['ticket.created', 'ticket.exploded'] }), /^webhook\.events(\.1)?$/],
  ['event type in the wrong case', validWebhook({ events: ['Ticket.Created'] }), /^webhook\.events(\.0)?$/],
  ['the test event, which is not subscribable', validWebhook({ events: ['webhook.test'] }), /^webhook\.events(\.0)?$/],
  ['events as a string', validWebhook({ events: 'ticket.created' }), 'webhook.events'],
  ['an event that is not a string', validWebhook({ events: [1] }), /^webhook\.events(\.0)?$/],
  ['active "yes"', validWebhook({ active: 'yes' }), 'webhook.active'],
  ['active 1', validWebhook({ active: 1 }), 'webhook.active'],
  ['active "true"', validWebhook({ active: 'true' }), 'webhook.active'],
  ['active null', validWebhook({ active: null }), 'webhook.active'],
  ['empty name', validWebhook({ name: '' }), 'webhook.name'],
  ['name of 201 characters', validWebhook({ name: 'n'.repeat(201) }), 'webhook.name'],
  ['name of 201 astral characters', validWebhook({ name: '😀'.repeat(201) }), 'webhook.name'],
  ['name a number', validWebhook({ name: 42 }), 'webhook.name'],
  ['name null', validWebhook({ name: null }), 'webhook.name'],
  ['http:// target', validWebhook({ targetUrl: 'http://example.com/hook' }), 'webhook.targetUrl'],
  ['ftp: target', validWebhook({ targetUrl: 'ftp://example.com/hook' }), 'webhook.targetUrl'],
  ['wss: target', validWebhook({ targetUrl: 'wss://example.com/hook' }), 'webhook.targetUrl'],
  ['javascript: target', validWebhook({ targetUrl: 'javascript:alert(1)' }), 'webhook.targetUrl'],
  ['target that is not a URL', validWebhook({ targetUrl: 'not a url' }), 'webhook.targetUrl'],
  ['scheme-relative target', validWebhook({ targetUrl: '//example.com/hook' }), 'webhook.targetUrl'],
  ['empty target', validWebhook({ targetUrl: '' }), 'webhook.targetUrl'],
  ['target a number', validWebhook({ targetUrl: 42 }), 'webhook.targetUrl'],
  ['target with user and password', validWebhook({ targetUrl: 'https://u:p@example.com/hook' }), 'webhook.targetUrl'],
  ['target with surrounding white space', validWebhook({ targetUrl: ' https://example.com/hook ' }), 'webhook.targetUrl'],
  ['target with a tab inside', validWebhook({ targetUrl: 'https://exam\tple.com/hook' }), 'webhook.targetUrl'],
  ['target with a user only', validWebhook({ targetUrl: 'https://u@example.com/hook' }), 'webhook.targetUrl'],
  ['target with a password only', validWebhook({ targetUrl: 'https://:p@example.com/hook' }), 'webhook.targetUrl'],
  ['target over 2048 characters', validWebhook({ targetUrl: `https://example.com/${'a'.repeat(2049 - 'https://example.com/'.length)}` }), 'webhook.targetUrl'],
  ['unknown field in the webhook', validWebhook({ secret: 'x' }), 'webhook.secret'],
  ['a client-chosen signingSecret', validWebhook({ signingSecret: `whsec_${Buffer.alloc(32).toString('base64')}` }), 'webhook.signingSecret'],
  ['a client-chosen id', validWebhook({ id: 'whk_mine' }), 'webhook.id'],
  ['a client-chosen createdAt', validWebhook({ createdAt: '2025-01-15T10:30:00.000Z' }), 'webhook.createdAt'],
];

/** Whole bodies that are not `{"webhook": {...}}`. */
const INVALID_BODIES: [string, unknown, string | RegExp][] = [
  ['unknown field at the top level', { webhook: validWebhook(), extra: 1 }, 'extra'],
  ['fields without the webhook wrapper', validWebhook(), /.+/],
  ['webhook null', { webhook: null }, 'webhook'],
  ['webhook an array', { webhook: [validWebhook()] }, 'webhook'],
  ['webhook a string', { webhook: 'https://example.com/hook' }, 'webhook'],
  ['a JSON array', [validWebhook()], /.+/],
];

/** Literal hosts that §5 refuses unless HELPDESK_ALLOW_PRIVATE_TARGETS is exactly "true". */
const PRIVATE_TARGETS = [
  'https://127.0.0.1/',
  'https://127.0.0.1:8443/hook',
  'https://127.0.0.1./hook',
  'https://127.1/hook',
  'https://2130706433/',
  'https://0x7f000001/',
  'https://0177.0.0.1/',
  'https://0.0.0.0/',
  'https://10.1.2.3/',
  'https://172.16.0.1/',
  'https://172.31.255.255/',
  'https://192.168.1.1/',
  'https://100.64.0.1/',
  'https://169.254.169.254/latest/meta-data/',
  'https://224.0.0.1/',
  'https://255.255.255.255/',
  'https://[::1]/',
  'https://[::]/',
  'https://[::ffff:127.0.0.1]/',
  'https://[::ffff:a9fe:a9fe]/',
  'https://[64:ff9b::a00:1]/',
  'https://[64:ff9b::127.0.0.1]/',
  'https://[2002:a00:1::]/',
  'https://[fc00::1]/',
  'https://[fd12:3456::1]/',
  'https://[fe80::1]/',
  'https://[ff02::1]/',
];

function suite(dialect: DialectName): void {
  describe('resource', () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await startTestServer(dialect, { startWorker: false });
    });
    afterAll(async () => {
      await server.close();
    });

    it('creates a webhook: 201 with exactly the reference fields and the secret, this once', async () => {
      const startedAt = Date.now();
      const response = await server.request('POST', '/webhooks', { body: { webhook: validWebhook({ active: true }) } });
      const finishedAt = Date.now();
      expect(response.status).toBe(201);
      expect(Object.keys(response.body)).toEqual(['webhook']);
      const webhook = response.body.webhook;
      expect(Object.keys(webhook).sort()).toEqual(CREATE_KEYS);
      expect(webhook.id).toMatch(/^whk_[A-Za-z0-9_-]{14,}$/);
      expect(webhook.name).toBe('My Integration');
      expect(webhook.targetUrl).toBe('https://example.com/webhook');
      expect(webhook.events).toEqual(['ticket.created', 'ticket.updated']);
      expect(webhook.active).toBe(true);
      expect(webhook.disabledReason).toBeNull();
      expect(webhook.disabledAt).toBeNull();
      expectIsoMs(webhook.createdAt);
      expect(webhook.updatedAt).toBe(webhook.createdAt);
      const created = Date.parse(webhook.createdAt);
      expect(created).toBeGreaterThanOrEqual(startedAt);
      expect(created).toBeLessThanOrEqual(finishedAt);
      expect(response.headers['content-type']).toBe('application/json; charset=utf-8');
    });

    it('makes the signing secret whsec_ + padded standard base64 of 32 random bytes', async () => {
      const secrets = new Set<string>();
      for (let i = 0; i < 3; i += 1) {
        const { signingSecret } = await create(server);
        expect(signingSecret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
        const encoded = signingSecret!.slice('whsec_'.length);
        const decoded = Buffer.from(encoded, 'base64');
        expect(decoded).toHaveLength(32);
        expect(decoded.toString('base64')).toBe(encoded);
        secrets.add(signingSecret!);
      }
      expect(secrets.size).toBe(3);
    });

    it('gives every webhook its own id', async () => {
      const ids = new Set<string>();
      for (let i = 0; i < 5; i += 1) ids.add((await create(server)).id);
      expect(ids.size).toBe(5);
    });

    it('defaults active to true and keeps active false when given', async () => {
      expect((await create(server)).active).toBe(true);
      const inactive = await create(server, { active: false });
      expect(inactive.active).toBe(false);
      expect((await server.request('GET', `/webhooks/${inactive.id}`)).body.webhook.active).toBe(false);
    });

    it('returns events in the order given, everywhere', async () => {
      const events = ['ticket.resolved', 'ticket.created', 'ticket.assignment.changed', 'ticket.deleted', 'ticket.updated'];
      const webhook = await create(server, { events });
      expect(webhook.events).toEqual(events);
      expect((await server.request('GET', `/webhooks/${webhook.id}`)).body.webhook.events).toEqual(events);
      expect((await listAll(server)).find((w) => w.id === webhook.id)!.events).toEqual(events);
      const reordered = ['ticket.updated', 'ticket.resolved'];
      expect((await server.request('PUT', `/webhooks/${webhook.id}`, { body: { webhook: { events: reordered } } })).body.webhook.events).toEqual(reordered);
      expect((await server.request('GET', `/webhooks/${webhook.id}`)).body.webhook.events).toEqual(reordered);
    });

    it('accepts the boundaries: a name of 1 and of 200 characters, a target of 2048 characters', async () => {
      expect((await create(server, { name: 'x' })).name).toBe('x');
      expect((await create(server, { name: 'n'.repeat(200) })).name).toBe('n'.repeat(200));
      // Characters, not UTF-16 code units.
      expect((await create(server, { name: '😀'.repeat(200) })).name).toBe('😀'.repeat(200));
      const longUrl = `https://example.com/${'a'.repeat(2048 - 'https://example.com/'.length)}`;
      expect(longUrl).toHaveLength(2048);
      expect((await create(server, { targetUrl: longUrl })).targetUrl).toBe(longUrl);
    });

    it('accepts every supported event type', async () => {
      expect((await create(server, { events: ALL_EVENTS })).events).toEqual(ALL_EVENTS);
    });

    it('retrieves a webhook without its secret', async () => {
      const created = await create(server, { name: 'retrieve me' });
      const response = await server.request('GET', `/webhooks/${created.id}`);
      expect(response.status).toBe(200);
      expect(Object.keys(response.body)).toEqual(['webhook']);
      expect(Object.keys(response.body.webhook).sort()).toEqual(PUBLIC_KEYS);
      const { signingSecret, ...rest } = created;
      expect(response.body.webhook).toEqual(rest);
      expect(JSON.stringify(response.body)).not.toContain(signingSecret!.slice('whsec_'.length));
    });

    it('lists webhooks as {webhooks, nextCursor}, newest first, never with a secret', async () => {
      const created = await create(server, { name: 'listed' });
      const response = await server.request('GET', '/webhooks');
      expect(response.status).toBe(200);
      expect(Object.keys(response.body).sort()).toEqual(['nextCursor', 'webhooks']);
      expect(Array.isArray(response.body.webhooks)).toBe(true);
      const text = JSON.stringify(response.body);
      expect(text).not.toContain('signingSecret');
      expect(text).not.toContain('whsec_');
      expect(text).not.toContain(created.signingSecret!.slice('whsec_'.length));
      for (const webhook of response.body.webhooks) expect(Object.keys(webhook).sort()).toEqual(PUBLIC_KEYS);
      const listed = (response.body.webhooks as WebhookBody[]).find((w) => w.id === created.id);
      const { signingSecret: _secret, ...rest } = created;
      expect(listed).toEqual(rest);
      const order = (response.body.webhooks as WebhookBody[]).map((w) => [w.createdAt, w.id].join(' '));
      expect(order).toEqual([...order].sort().reverse());
    });

    it('pages through the list with limit and nextCursor, each webhook once', async () => {
      for (let i = 0; i < 5; i += 1) await create(server, { name: `page ${i}` });
      const everything = await listAll(server);
      expect(everything.length).toBeGreaterThanOrEqual(5);
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const response: ApiResponse = await server.request('GET', `/webhooks?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
        expect(response.status).toBe(200);
        expect(response.body.webhooks.length).toBeLessThanOrEqual(2);
        seen.push(...(response.body.webhooks as WebhookBody[]).map((w) => w.id));
        cursor = response.body.nextCursor;
        if (cursor !== null) expect(typeof cursor).toBe('string');
        pages += 1;
      } while (cursor !== null && pages < 1000);
      expect(seen).toEqual(everything.map((w) => w.id));
      expect(new Set(seen).size).toBe(seen.length);
      expect(pages).toBe(Math.ceil(everything.length / 2));
    });

    it('answers nextCursor null exactly when nothing follows', async () => {
      const count = (await listAll(server)).length;
      expect(count).toBeGreaterThan(1);
      expect(count).toBeLessThanOrEqual(100);
      const whole = await server.request('GET', `/webhooks?limit=${count}`);
      expect(whole.body.webhooks).toHaveLength(count);
      expect(whole.body.nextCursor).toBeNull();
      const short = await server.request('GET', `/webhooks?limit=${count - 1}`);
      expect(short.body.webhooks).toHaveLength(count - 1);
      expect(typeof short.body.nextCursor).toBe('string');
      const rest = await server.request('GET', `/webhooks?limit=${count}&cursor=${short.body.nextCursor}`);
      expect(rest.body.webhooks.map((w: WebhookBody) => w.id)).toEqual([whole.body.webhooks[count - 1].id]);
      expect(rest.body.nextCursor).toBeNull();
    });

    it('lists with the default limit of 50', async () => {
      while ((await listAll(server)).length < 51) await create(server, { name: 'filler' });
      const response = await server.request('GET', '/webhooks');
      expect(response.body.webhooks).toHaveLength(50);
      expect(typeof response.body.nextCursor).toBe('string');
    });

    it('updates only the fields given', async () => {
      const created = await create(server, { name: 'before', events: ['ticket.created'] });
      const response = await server.request('PUT', `/webhooks/${created.id}`, { body: { webhook: { name: 'Updated Name' } } });
      expect(response.status).toBe(200);
      expect(Object.keys(response.body)).toEqual(['webhook']);
      expect(Object.keys(response.body.webhook).sort()).toEqual(PUBLIC_KEYS);
      const updated = response.body.webhook;
      expect(updated).toMatchObject({ id: created.id, name: 'Updated Name', targetUrl: created.targetUrl, events: ['ticket.created'], active: true, createdAt: created.createdAt });
      expect((await server.request('GET', `/webhooks/${created.id}`)).body.webhook).toEqual(updated);

      const next = await server.request('PUT', `/webhooks/${created.id}`, {
        body: { webhook: { targetUrl: 'https://example.org/other', events: ['ticket.deleted', 'ticket.resolved'], active: false } },
      });
      expect(next.status).toBe(200);
      expect(next.body.webhook).toMatchObject({
        id: created.id,
        name: 'Updated Name',
        targetUrl: 'https://example.org/other',
        events: ['ticket.deleted', 'ticket.resolved'],
        active: false,
        createdAt: created.createdAt,
      });
      expect((await server.request('GET', `/webhooks/${created.id}`)).body.webhook).toEqual(next.body.webhook);
    });

    it('takes the reference update body as printed', async () => {
      const created = await create(server);
      const response = await server.request('PUT', `/webhooks/${created.id}`, {
        body: { webhook: { name: 'Updated Name', events: ['ticket.created'], active: false } },
      });
      expect(response.status).toBe(200);
      expect(response.body.webhook).toMatchObject({ name: 'Updated Name', events: ['ticket.created'], active: false, targetUrl: created.targetUrl });
    });

    it('does not touch updatedAt on a PUT that changes nothing', async () => {
      const created = await create(server, { events: ['ticket.created', 'ticket.resolved'] });
      const { signingSecret: _secret, ...asCreated } = created;
      for (const webhook of [
        {},
        { name: created.name },
        { targetUrl: created.targetUrl, events: ['ticket.created', 'ticket.resolved'], active: true },
        { active: true },
      ]) {
        const response = await server.request('PUT', `/webhooks/${created.id}`, { body: { webhook } });
        expect(response.status).toBe(200);
        expect(response.body.webhook).toEqual(asCreated);
      }
      expect((await server.request('GET', `/webhooks/${created.id}`)).body.webhook).toEqual(asCreated);
    });

    it('applies concurrent partial PUTs of different fields without losing any', async () => {
      for (let round = 0; round < 5; round += 1) {
        const created = await create(server, { name: 'racy', events: ['ticket.created'] });
        const puts = [
          { name: `renamed ${round}` },
          { targetUrl: `https://example.org/race/${round}` },
          { events: ['ticket.deleted', 'ticket.resolved'] },
          { active: false },
        ].map((webhook) => server.request('PUT', `/webhooks/${created.id}`, { body: { webhook } }));
        for (const response of await Promise.all(puts)) expect(response.status).toBe(200);
        const final = (await server.request('GET', `/webhooks/${created.id}`)).body.webhook;
        expect(final).toMatchObject({
          name: `renamed ${round}`,
          targetUrl: `https://example.org/race/${round}`,
          events: ['ticket.deleted', 'ticket.resolved'],
          active: false,
        });
        expect(Date.parse(final.updatedAt)).toBeGreaterThan(Date.parse(created.updatedAt));
      }
    });

    it('never returns the secret from a PUT', async () => {
      const created = await create(server);
      const response = await server.request('PUT', `/webhooks/${created.id}`, { body: { webhook: { name: 'renamed' } } });
      expect(response.body.webhook.signingSecret).toBeUndefined();
      expect(JSON.stringify(response.body)).not.toContain(created.signingSecret!.slice('whsec_'.length));
    });

    it('deletes with 204 and no body; then GET, PUT and DELETE are 404', async () => {
      const created = await create(server);
      const deleted = await server.request('DELETE', `/webhooks/${created.id}`);
      expect(deleted.status).toBe(204);
      expect(deleted.body).toBeUndefined();
      for (const [method, options] of [
        ['GET', {}],
        ['PUT', { body: { webhook: { name: 'ghost' } } }],
        ['DELETE', {}],
      ] as const) {
        const response = await server.request(method, `/webhooks/${created.id}`, options);
        expect(response.status, method).toBe(404);
        expect(response.body.error.code).toBe('not_found');
      }
      expect((await listAll(server)).map((w) => w.id)).not.toContain(created.id);
    });

    it('answers 404 not_found for an id that never existed', async () => {
      for (const id of ['whk_000000000000000000000000', 'nope', 'tkt_000000000000000000000000']) {
        const response = await server.request('GET', `/webhooks/${id}`);
        expect(response.status).toBe(404);
        expect(response.body.error.code).toBe('not_found');
      }
    });

    it('is admin only: an agent gets 403, no key or an unknown key 401, on every endpoint', async () => {
      const target = await create(server);
      const { key: agentKey } = await server.keyFor('agent');
      const { key: adminKey } = await server.keyFor('admin');
      const calls: [string, string, unknown][] = [
        ['GET', '/webhooks', undefined],
        ['POST', '/webhooks', { webhook: validWebhook() }],
        ['GET', `/webhooks/${target.id}`, undefined],
        ['PUT', `/webhooks/${target.id}`, { webhook: { name: 'taken over' } }],
        ['DELETE', `/webhooks/${target.id}`, undefined],
      ];
      const before = await listAll(server);
      for (const [method, path, body] of calls) {
        const options = body === undefined ? {} : { body };
        const forbidden = await server.request(method, path, { ...options, key: agentKey });
        expect(forbidden.status, `${method} ${path} as agent`).toBe(403);
        expect(forbidden.body.error.code).toBe('forbidden');
        const anonymous = await server.request(method, path, { ...options, key: null });
        expect(anonymous.status, `${method} ${path} without key`).toBe(401);
        expect(anonymous.body.error.code).toBe('unauthorized');
        const unknown = await server.request(method, path, { ...options, key: 'not-a-real-key-0123456789' });
        expect(unknown.status, `${method} ${path} with an unknown key`).toBe(401);
        expect(unknown.body.error.code).toBe('unauthorized');
        expect(JSON.stringify(unknown.body)).not.toContain('not-a-real-key-0123456789');
      }
      // Nothing was created, changed or deleted by the refused calls.
      expect(await listAll(server)).toEqual(before);
      // A created admin key (not only the bootstrap token) is enough.
      expect((await server.request('GET', `/webhooks/${target.id}`, { key: adminKey })).status).toBe(200);
      expect((await server.request('POST', '/webhooks', { body: { webhook: validWebhook() }, key: adminKey })).status).toBe(201);
    });

    it('accepts a literal loopback target when private targets are allowed, never http://', async () => {
      // The default test server runs with HELPDESK_ALLOW_PRIVATE_TARGETS=true.
      expect((await create(server, { targetUrl: 'https://127.0.0.1:1/hook' })).targetUrl).toBe('https://127.0.0.1:1/hook');
      expect((await create(server, { targetUrl: 'https://[::1]/hook' })).targetUrl).toBe('https://[::1]/hook');
      const before = (await listAll(server)).length;
      for (const targetUrl of ['http://127.0.0.1/hook', 'http://example.com/hook', 'https://u:p@127.0.0.1/hook']) {
        const response = await server.request('POST', '/webhooks', { body: { webhook: validWebhook({ targetUrl }) } });
        expectValidationFailed(response, 'webhook.targetUrl');
      }
      expect((await listAll(server)).length).toBe(before);
    });
  });

  describe('validation at creation', () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await startTestServer(dialect, { startWorker: false });
    });
    afterAll(async () => {
      await server.close();
    });

    it.each(INVALID_CREATE)('refuses %s with 400 and creates nothing', async (_what, webhook, path) => {
      const before = await listAll(server);
      const response = await server.request('POST', '/webhooks', { body: { webhook } });
      expectValidationFailed(response, path);
      expect(await listAll(server)).toEqual(before);
    });

    it.each(INVALID_BODIES)('refuses a body with %s', async (_what, body, path) => {
      const before = await listAll(server);
      const response = await server.request('POST', '/webhooks', { body });
      expectValidationFailed(response, path);
      expect(await listAll(server)).toEqual(before);
    });

    it('reports every problem of a body at once', async () => {
      const response = await server.request('POST', '/webhooks', { body: { webhook: { name: '', targetUrl: 'https://example.com/hook', events: [], active: 'yes' } } });
      expectValidationFailed(response, 'webhook.name');
      const paths = response.body.error.details.map((d: { path: string }) => d.path);
      expect(paths).toEqual(expect.arrayContaining(['webhook.name', 'webhook.events', 'webhook.active']));
    });

    it('does not echo the password of a target URL with credentials', async () => {
      const response = await server.request('POST', '/webhooks', { body: { webhook: validWebhook({ targetUrl: 'https://user:hunter2-s3cret@example.com/hook' }) } });
      expectValidationFailed(response, 'webhook.targetUrl');
      expect(JSON.stringify(response.body)).not.toContain('hunter2-s3cret');
    });
  });

  describe('validation on update', () => {
    let server: TestServer;
    let original: WebhookBody;
    beforeAll(async () => {
      server = await startTestServer(dialect, { startWorker: false });
      const { signingSecret: _secret, ...rest } = await create(server, { name: 'original', events: ['ticket.created'] });
      original = rest;
    });
    afterAll(async () => {
      await server.close();
    });

    const invalidUpdates: [string, unknown, string | RegExp][] = [
      ['empty events', { events: [] }, 'webhook.events'],
      ['duplicate events', { events: ['ticket.updated', 'ticket.updated'] }, 'webhook.events'],
      ['unknown event type', { events: ['ticket.exploded'] }, /^webhook\.events(\.0)?$/],
      ['active "yes"', { active: 'yes' }, 'webhook.active'],
      ['active null', { active: null }, 'webhook.active'],
      ['empty name', { name: '' }, 'webhook.name'],
      ['name of 201 characters', { name: 'n'.repeat(201) }, 'webhook.name'],
      ['name null', { name: null }, 'webhook.name'],
      ['http:// target', { targetUrl: 'http://example.com/hook' }, 'webhook.targetUrl'],
      ['ftp: target', { targetUrl: 'ftp://example.com/hook' }, 'webhook.targetUrl'],
      ['target that is not a URL', { targetUrl: 'not a url' }, 'webhook.targetUrl'],
      ['target with credentials', { targetUrl: 'https://u:p@example.com/' }, 'webhook.targetUrl'],
      ['target over 2048 characters', { targetUrl: `https://example.com/${'a'.repeat(2040)}` }, 'webhook.targetUrl'],
      ['target null', { targetUrl: null }, 'webhook.targetUrl'],
      ['unknown field', { nmae: 'typo' }, 'webhook.nmae'],
      ['a new signingSecret', { signingSecret: `whsec_${Buffer.alloc(32).toString('base64')}` }, 'webhook.signingSecret'],
      ['a valid change beside an invalid one', { name: 'would change', events: [] }, 'webhook.events'],
    ];

    it.each(invalidUpdates)('refuses %s with 400 and changes nothing', async (_what, webhook, path) => {
      const response = await server.request('PUT', `/webhooks/${original.id}`, { body: { webhook } });
      expectValidationFailed(response, path);
      expect((await server.request('GET', `/webhooks/${original.id}`)).body.webhook).toEqual(original);
    });

    it('refuses an unknown top-level field and a body without the wrapper', async () => {
      for (const body of [{ webhook: { name: 'x' }, extra: true }, { name: 'x' }, {}]) {
        const response = await server.request('PUT', `/webhooks/${original.id}`, { body });
        expect(response.status, JSON.stringify(body)).toBe(400);
        expect(response.body.error.code).toBe('validation_failed');
      }
      expect((await server.request('GET', `/webhooks/${original.id}`)).body.webhook).toEqual(original);
    });
  });

  describe('private targets refused (HELPDESK_ALLOW_PRIVATE_TARGETS=false)', () => {
    let server: TestServer;
    let existing: WebhookBody;
    beforeAll(async () => {
      server = await startTestServer(dialect, { startWorker: false, env: { HELPDESK_ALLOW_PRIVATE_TARGETS: 'false' } });
      const { signingSecret: _secret, ...rest } = await create(server, { targetUrl: 'https://example.com/hook' });
      existing = rest;
    });
    afterAll(async () => {
      await server.close();
    });

    it.each(PRIVATE_TARGETS)('refuses %s at creation and creates nothing', async (targetUrl) => {
      const before = await listAll(server);
      const response = await server.request('POST', '/webhooks', { body: { webhook: validWebhook({ targetUrl }) } });
      expectValidationFailed(response, 'webhook.targetUrl');
      expect(await listAll(server)).toEqual(before);
    });

    it.each(PRIVATE_TARGETS)('refuses %s on update and changes nothing', async (targetUrl) => {
      const response = await server.request('PUT', `/webhooks/${existing.id}`, { body: { webhook: { targetUrl } } });
      expectValidationFailed(response, 'webhook.targetUrl');
      expect((await server.request('GET', `/webhooks/${existing.id}`)).body.webhook).toEqual(existing);
    });

    it.each(['https://localhost/hook', 'https://example.com/hook', 'https://8.8.8.8/hook', 'https://[2606:4700::1111]/hook', 'https://[::ffff:8.8.8.8]/hook', 'https://[64:ff9b::808:808]/hook'])(
      'accepts %s (a host name is checked when connecting, a public literal is fine)',
      async (targetUrl) => {
        expect((await create(server, { targetUrl })).targetUrl).toBe(targetUrl);
      },
    );

    it('lets a webhook move from a public host to a host name and back by PUT', async () => {
      const created = await create(server);
      const moved = await server.request('PUT', `/webhooks/${created.id}`, { body: { webhook: { targetUrl: 'https://localhost:8443/hook' } } });
      expect(moved.status).toBe(200);
      expect(moved.body.webhook.targetUrl).toBe('https://localhost:8443/hook');
    });

    it('lifts the address rule for a switch that is on (true, 1, yes, on), and only then', async () => {
      for (const [value, lifted] of [['TRUE', true], ['1', true], ['yes', true], ['off', false], ['0', false]] as const) {
        const other = await startTestServer(dialect, { startWorker: false, env: { HELPDESK_ALLOW_PRIVATE_TARGETS: value } });
        try {
          const response = await other.request('POST', '/webhooks', { body: { webhook: validWebhook({ targetUrl: 'https://127.0.0.1/hook' }) } });
          expect(response.status, `HELPDESK_ALLOW_PRIVATE_TARGETS=${value}`).toBe(lifted ? 201 : 400);
          expect(await listAll(other), `HELPDESK_ALLOW_PRIVATE_TARGETS=${value}`).toHaveLength(lifted ? 1 : 0);
          if (lifted) expect((await other.request('DELETE', `/webhooks/${response.body.webhook.id}`)).status).toBe(204);
        } finally {
          await other.close();
        }
      }
    });
  });

  describe('updatedAt, with a clock the test controls', () => {
    let server: TestServer;
    let now = Date.parse('2025-01-15T10:30:00.000Z');
    beforeAll(async () => {
      server = await startTestServer(dialect, { startWorker: false, runtime: { clock: { now: () => now } } });
    });
    afterAll(async () => {
      await server.close();
    });

    it('stamps createdAt and updatedAt with the time of the request', async () => {
      const created = await create(server);
      expect(created.createdAt).toBe('2025-01-15T10:30:00.000Z');
      expect(created.updatedAt).toBe('2025-01-15T10:30:00.000Z');
    });

    it('moves updatedAt to the time of a change, keeps createdAt, and keeps it on a no-op', async () => {
      now = Date.parse('2025-01-15T10:30:00.000Z');
      const created = await create(server);
      now += 5_000;
      const changed = await server.request('PUT', `/webhooks/${created.id}`, { body: { webhook: { name: 'changed' } } });
      expect(changed.body.webhook.updatedAt).toBe('2025-01-15T10:30:05.000Z');
      expect(changed.body.webhook.createdAt).toBe(created.createdAt);
      now += 5_000;
      const same = await server.request('PUT', `/webhooks/${created.id}`, { body: { webhook: { name: 'changed', active: true } } });
      expect(same.body.webhook.updatedAt).toBe('2025-01-15T10:30:05.000Z');
      expect((await server.request('GET', `/webhooks/${created.id}`)).body.webhook.updatedAt).toBe('2025-01-15T10:30:05.000Z');
    });

    it('moves updatedAt forward even when the change lands in the same millisecond', async () => {
      now = Date.parse('2025-02-01T00:00:00.000Z');
      const created = await create(server);
      const first = await server.request('PUT', `/webhooks/${created.id}`, { body: { webhook: { name: 'first' } } });
      expect(Date.parse(first.body.webhook.updatedAt)).toBeGreaterThan(Date.parse(created.updatedAt));
      const second = await server.request('PUT', `/webhooks/${created.id}`, { body: { webhook: { name: 'second' } } });
      expect(Date.parse(second.body.webhook.updatedAt)).toBeGreaterThan(Date.parse(first.body.webhook.updatedAt));
      expect(second.body.webhook.createdAt).toBe(created.createdAt);
    });
  });
}

describeEachDialect('webhooks API', suite);
