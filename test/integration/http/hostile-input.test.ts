/**
 * Hostile input, property-based (fast-check), on both databases: every POST and PUT of the
 * router table gets random JSON of the wrong shape, its own resource with fields of random types,
 * prototype-pollution keys, unicode edge cases (unpaired surrogates, NUL), huge strings, deep
 * nesting and numbers out of range, and every GET random query parameters. Whatever comes, the
 * answer is never a 5xx; an error is in the documented shape with a code from the catalogue; and
 * a refused request leaves the database exactly as it was. Requests that happen to be valid may
 * succeed: the property is about what is refused.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ERROR_CATALOGUE } from '../../../src/errors.js';
import { SUBSCRIBABLE_EVENT_TYPES } from '../../../src/events/event-types.js';
import type { RouteEntry } from '../../../src/api/app.js';
import { describeEachDialect } from '../../helpers/dialects.js';
import { type ApiResponse, startTestServer, type TestServer } from '../../helpers/server.js';
import { ALL_TABLES } from '../../helpers/tables.js';

/** Per resource wrapper, the fields its schemas know: random values under real names go deepest. */
const FIELDS: Record<string, readonly string[]> = {
  ticket: ['subject', 'description', 'status', 'priority', 'assigneeId', 'requesterEmail', 'tags', 'customFields'],
  webhook: ['name', 'targetUrl', 'events', 'active', 'description'],
  user: ['name', 'email', 'role'],
  apiKey: ['name', 'userId'],
};
const HOSTILE_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', ''];

const edgyString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('\u0000', '\ud800', '\udfff', 'a\u0000b', '\u202e\u0301', '😀'.repeat(50), 'x'.repeat(70_000), '%00', '../../etc/passwd'),
);
const edgyNumber = fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constantFrom(1e308, -1e308, 2 ** 53 + 1, -0, 0.1, 1e-320));
const deep = (depth: number): unknown => Array.from({ length: depth }).reduce<unknown>((inner) => ({ a: [inner] }), 'bottom');
const edgyValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 2, arbitrary: edgyString },
  { weight: 2, arbitrary: edgyNumber },
  { weight: 1, arbitrary: fc.constantFrom(deep(2_000), [deep(50)], { __proto__: { admin: true } }) },
);
const fieldsOf = (names: readonly string[]) =>
  fc.dictionary(fc.oneof(fc.constantFrom(...names, ...HOSTILE_KEYS), fc.string({ maxLength: 12 })), edgyValue, { maxKeys: 6 });

/**
 * Bodies that pass validation, or nearly, so that hostile values reach the services and the
 * database: text with NUL and unpaired surrogates, addresses a webhook must never reach.
 */
const customValue = fc.oneof(edgyString, edgyNumber, fc.boolean(), fc.constant(null));
const NEAR_VALID: Record<string, fc.Arbitrary<Record<string, unknown>>> = {
  ticket: fc.record(
    {
      subject: edgyString,
      description: edgyString,
      status: fc.constantFrom('open', 'pending', 'on_hold', 'resolved', 'closed', 'deleted'),
      tags: fc.array(edgyString, { maxLength: 3 }),
      customFields: fc.dictionary(fc.oneof(fc.string({ maxLength: 10 }), fc.constantFrom(...HOSTILE_KEYS)), customValue, { maxKeys: 3 }),
      requesterEmail: fc.oneof(fc.emailAddress(), edgyString, fc.constant(null)),
    },
    { requiredKeys: ['subject'] },
  ),
  webhook: fc.record(
    {
      name: edgyString,
      targetUrl: fc.oneof(
        fc.webUrl({ validSchemes: ['https'] }),
        fc.constantFrom('https://2130706433/', 'https://0x7f.1/', 'https://017700000001/', 'https://[::1]/', 'https://[::ffff:127.0.0.1]/', 'https://169.254.169.254/latest', 'http://example.com/hook', 'https://localhost/hook', 'https://user:pass@example.com/'),
      ),
      events: fc.subarray([...SUBSCRIBABLE_EVENT_TYPES, 'ticket.exploded', '*']),
      active: fc.oneof(fc.boolean(), edgyValue),
    },
    { requiredKeys: ['name', 'targetUrl', 'events'] },
  ),
  user: fc.record({ name: edgyString, email: fc.oneof(fc.emailAddress(), edgyString), role: fc.constantFrom('admin', 'agent', 'root', 'Admin') }),
};

/** The resource a route's path is about: `/webhooks/:id/recover` → `webhook`. */
function resourceOf(route: RouteEntry): string {
  const segment = route.url.split('/')[4] ?? '';
  return segment === 'api-keys' ? 'apiKey' : segment.replace(/s$/, '');
}

/** A body for a route: anything at all, or its resource with random fields, or a raw text. */
function bodies(route: RouteEntry): fc.Arbitrary<{ json: unknown } | { raw: string }> {
  const resource = resourceOf(route);
  return fc.oneof(
    { weight: 2, arbitrary: edgyValue.map((json) => ({ json })) },
    { weight: 5, arbitrary: fieldsOf(FIELDS[resource] ?? []).map((fields) => ({ json: { [resource]: fields } })) },
    ...(NEAR_VALID[resource] ? [{ weight: 4, arbitrary: NEAR_VALID[resource].map((fields) => ({ json: { [resource]: fields } })) }] : []),
    { weight: 1, arbitrary: fc.tuple(fieldsOf(FIELDS[resource] ?? []), fc.constantFrom(...HOSTILE_KEYS)).map(([fields, key]) => ({ raw: `{"${key}": {"admin": true}, "${resource}": ${JSON.stringify(fields)}}` })) },
    { weight: 1, arbitrary: fc.oneof(fc.string({ maxLength: 30 }), fc.constantFrom('[', '{"a":', '\u0000', `${'['.repeat(100_000)}${']'.repeat(100_000)}`, `{"${resource}": {"a": ${'['.repeat(8_000)}${']'.repeat(8_000)}}}`)).map((raw) => ({ raw })) },
  );
}

describeEachDialect('hostile input', (dialect) => {
  let server: TestServer;
  let routes: readonly RouteEntry[];
  let existing: { ticketId: string; webhookId: string; userId: string };

  beforeAll(async () => {
    server = await startTestServer(dialect, { startWorker: false });
    routes = server.runtime.app.routeTable.filter((r) => r.roles !== null && r.method !== 'HEAD');
    const ticket = await server.request('POST', '/tickets', { body: { ticket: { subject: 'target of hostile PUTs' } } });
    const webhook = await server.request('POST', '/webhooks', { body: { webhook: { name: 'target', targetUrl: 'https://receiver.example/hook', events: ['ticket.created'] } } });
    const users = await server.request('GET', '/users');
    existing = { ticketId: ticket.body.ticket.id, webhookId: webhook.body.webhook.id, userId: users.body.users[0].id };
  });
  afterAll(async () => {
    await server.close();
  });

  /** Row counts and last changes of every table, read in one statement. */
  async function fingerprint(): Promise<string> {
    const db = server.runtime.database.db;
    const row = await db
      .selectNoFrom((eb) => [
        ...ALL_TABLES.map((table) =>
          eb.selectFrom(table).select((inner) => inner.fn.countAll<number | string>().as('n')).as(`${table}_count`),
        ),
        ...(['users', 'tickets', 'webhooks', 'deliveries'] as const).map((table) => eb.selectFrom(table).select((inner) => inner.fn.max('updated_at').as('m')).as(`${table}_changed`)),
      ])
      .executeTakeFirstOrThrow();
    return JSON.stringify(row, (_key, value: unknown) => (typeof value === 'bigint' ? String(value) : value));
  }

  /** A path of the route with existing ids where the route has them, so that bodies reach validation. */
  function pathOf(route: RouteEntry): string {
    return route.url
      .replace(/\/tickets\/:[^/]+/, `/tickets/${existing.ticketId}`)
      .replace(/\/webhooks\/:[^/]+/, `/webhooks/${existing.webhookId}`)
      .replace(/\/users\/:[^/]+/, `/users/${existing.userId}`)
      .replace(/:[^/]+/g, 'x_0123456789abcdef');
  }

  function expectDocumentedAnswer(response: ApiResponse, what: string): void {
    expect({ what, status: response.status, serverError: response.status >= 500 }).toMatchObject({ what, serverError: false });
    if (response.status < 400) return;
    const error = response.body?.error;
    expect({ what, code: error?.code in ERROR_CATALOGUE, message: typeof error?.message, requestId: error?.requestId === response.headers['x-request-id'] }).toEqual({
      what,
      code: true,
      message: 'string',
      requestId: true,
    });
  }

  it('answers every hostile body with a documented 4xx (or a success), never a 5xx, and a refusal changes nothing', async () => {
    const writes = routes.filter((r) => r.method === 'POST' || r.method === 'PUT');
    expect(writes.length).toBeGreaterThan(8);
    let refused = 0;
    let accepted = 0;
    for (const route of writes) {
      await fc.assert(
        fc.asyncProperty(bodies(route), async (body) => {
          const before = await fingerprint();
          const response = 'json' in body
            ? await server.request(route.method, pathOf(route), { body: body.json ?? null })
            : await server.request(route.method, pathOf(route), { rawBody: body.raw, headers: { 'content-type': 'application/json' } });
          const what = `${route.method} ${route.url} ${JSON.stringify(body).slice(0, 200)}`;
          expectDocumentedAnswer(response, what);
          if (response.status < 400) accepted += 1;
          if (response.status >= 400) {
            refused += 1;
            expect({ what, database: await fingerprint() }).toEqual({ what, database: before });
          }
        }),
        { numRuns: 60, seed: 4242 },
      );
    }
    // Most bodies are refused, and enough get through to carry hostile values into the database.
    expect(refused).toBeGreaterThan(writes.length * 20);
    expect(accepted).toBeGreaterThan(20);
    // Nothing reached a prototype, whatever the bodies said.
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
  });

  it('refuses text that is not storable the same on both databases, naming where it is', async () => {
    const before = await fingerprint();
    const nul = await server.request('POST', '/tickets', { body: { ticket: { subject: 'a\u0000b' } } });
    expect(nul.status).toBe(400);
    expect(nul.body.error).toMatchObject({ code: 'validation_failed', details: [{ path: 'ticket.subject', message: 'must be text without NUL characters or unpaired surrogates' }] });
    const surrogateKey = await server.request('PUT', `/tickets/${existing.ticketId}`, { rawBody: '{"ticket": {"customFields": {"\\ud800": 1}}}', headers: { 'content-type': 'application/json' } });
    expect(surrogateKey.status).toBe(400);
    expect(surrogateKey.body.error.details).toEqual([{ path: 'ticket.customFields.\ud800', message: 'must be text without NUL characters or unpaired surrogates' }]);
    expect(await fingerprint()).toEqual(before);
    // A pair of surrogates is one character, and is kept.
    const emoji = await server.request('POST', '/tickets', { body: { ticket: { subject: 'fire 🔥' } } });
    expect(emoji.status).toBe(201);
    expect((await server.request('GET', `/tickets/${emoji.body.ticket.id}`)).body.ticket.subject).toBe('fire 🔥');
  });

  it('answers random query parameters on every GET with a documented 4xx or a success, never a 5xx, changing nothing', async () => {
    const reads = routes.filter((r) => r.method === 'GET');
    const query = fc.dictionary(fc.oneof(fc.constantFrom('limit', 'cursor', 'status', 'assigneeId', 'event', 'since', 'until', ...HOSTILE_KEYS), fc.string({ maxLength: 8 })), edgyString, { maxKeys: 3 });
    const before = await fingerprint();
    for (const route of reads) {
      await fc.assert(
        fc.asyncProperty(query, async (params) => {
          const search = new URLSearchParams(Object.entries(params).map(([key, value]): [string, string] => [key, String(value)])).toString();
          // A stream that starts stays open, which this request cannot wait out: it names an
          // event no server keeps, so that every answer ends (the stream itself is tested over
          // sockets in test/integration/events/event-stream.test.ts).
          const headers = route.url.endsWith('/events/stream') ? { 'last-event-id': 'evt_000000000000000000000000000000' } : undefined;
          const response = await server.request('GET', `${pathOf(route)}${search ? `?${search}` : ''}`, headers ? { headers } : {});
          expectDocumentedAnswer(response, `GET ${route.url}?${search.slice(0, 200)}`);
        }),
        { numRuns: 30, seed: 4242 },
      );
    }
    expect(await fingerprint()).toEqual(before);
  });
});
