/**
 * docs/api.md "Conventions", the conventions every endpoint shares: request ids, the error body, content types,
 * body size, unknown paths and methods, query parameters and pagination input. The HTTP layer is
 * the same whatever the database, so SQLite is enough here.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, API, startTestServer, type ApiResponse, type TestServer } from '../../helpers/server.js';

const BODY_LIMIT = 1024 * 1024;
const ERROR_KEYS = new Set(['code', 'message', 'details', 'requestId']);
const STACK_FRAME = /\bat [^\n]*(\(|\s)[^\s()]*:\d+:\d+\)?/;

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer('sqlite', { startWorker: false });
});
afterAll(async () => {
  await server.close();
});

/** Checks the documented error body and its request id; returns the error object. */
function expectError(response: ApiResponse, status: number, code: string) {
  expect(response.status, JSON.stringify(response.body)).toBe(status);
  expect(response.headers['content-type']).toBe('application/json; charset=utf-8');
  expect(Object.keys(response.body)).toEqual(['error']);
  const error = response.body.error;
  for (const key of Object.keys(error)) expect(ERROR_KEYS.has(key), `unexpected error field ${key}`).toBe(true);
  expect(error.code).toBe(code);
  expect(typeof error.message).toBe('string');
  expect(error.message.length).toBeGreaterThan(0);
  expect(error.requestId).toMatch(/^req_[A-Za-z0-9_-]+$/);
  expect(error.requestId).toBe(response.headers['x-request-id']);
  if ('details' in error) {
    expect(Array.isArray(error.details)).toBe(true);
    expect(error.details.length).toBeGreaterThan(0);
    for (const detail of error.details) {
      expect(Object.keys(detail).sort()).toEqual(['message', 'path']);
      expect(typeof detail.path).toBe('string');
      expect(typeof detail.message).toBe('string');
    }
  }
  const text = JSON.stringify(response.body);
  expect(text).not.toMatch(STACK_FRAME);
  expect(text).not.toContain('node_modules');
  expect(text).not.toContain(ADMIN_TOKEN);
  return error as { code: string; message: string; details?: { path: string; message: string }[]; requestId: string };
}

/** POST/PUT with a raw body and exactly the headers given (no content-type unless given). */
function raw(method: string, path: string, rawBody: string, headers: Record<string, string> = {}) {
  return server.request(method, path, { rawBody, headers });
}

const TICKET = JSON.stringify({ ticket: { subject: 'hello' } });

describe('request ids', () => {
  it('puts an x-request-id (req_) on every response, success or error', async () => {
    const created = await server.request('POST', '/webhooks', { body: { webhook: { name: 'n', targetUrl: 'https://example.com/h', events: ['ticket.created'] } } });
    expect(created.status).toBe(201);
    const responses = [
      await server.request('GET', '/healthz', { key: null }),
      await server.request('GET', '/tickets'),
      created,
      await server.request('DELETE', `/webhooks/${created.body.webhook.id}`),
      await server.request('GET', '/tickets', { key: null }),
      await server.request('GET', '/nope'),
      await server.request('PATCH', '/tickets'),
      await raw('POST', '/tickets', TICKET, { 'content-type': 'text/plain' }),
      await raw('POST', '/tickets', '{', { 'content-type': 'application/json' }),
    ];
    expect(responses.map((r) => r.status)).toEqual([200, 200, 201, 204, 401, 404, 405, 415, 400]);
    const ids = responses.map((r) => r.headers['x-request-id']);
    for (const id of ids) expect(id).toMatch(/^req_[A-Za-z0-9_-]{10,}$/);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('puts the same id in the header and in error.requestId', async () => {
    const response = await server.request('GET', '/webhooks/whk_missing');
    expectError(response, 404, 'not_found');
    expect(response.body.error.requestId).toBe(response.headers['x-request-id']);
  });
});

describe('the error body', () => {
  it('has exactly {error: {code, message, details?, requestId}} for every kind of error', async () => {
    const { key: agentKey } = await server.keyFor('agent');
    expectError(await server.request('GET', '/webhooks', { key: null }), 401, 'unauthorized');
    expectError(await server.request('GET', '/webhooks', { key: agentKey }), 403, 'forbidden');
    expectError(await server.request('GET', '/tickets/tkt_missing'), 404, 'not_found');
    expectError(await server.request('PATCH', '/webhooks'), 405, 'method_not_allowed');
    expectError(await raw('POST', '/tickets', '{', { 'content-type': 'application/json' }), 400, 'invalid_json');
    expectError(await raw('POST', '/tickets', TICKET, { 'content-type': 'text/plain' }), 415, 'unsupported_media_type');
    expectError(await raw('POST', '/tickets', `${TICKET}${' '.repeat(BODY_LIMIT)}`, { 'content-type': 'application/json' }), 413, 'payload_too_large');
    const validation = expectError(await server.request('POST', '/tickets', { body: { ticket: {} } }), 400, 'validation_failed');
    expect(validation.details).toEqual([{ path: 'ticket.subject', message: expect.any(String) }]);
  });

  it('leaves details out when there are none', async () => {
    const error = expectError(await server.request('GET', '/webhooks/whk_missing'), 404, 'not_found');
    expect('details' in error).toBe(false);
  });

  it('never echoes the API key that was sent', async () => {
    const key = 'sk_live_do-not-echo-me-0123456789abcdef';
    for (const response of [
      await server.request('GET', '/webhooks', { key }),
      await server.request('POST', '/tickets', { key, body: { ticket: { subject: 'x' } } }),
      await server.request('GET', '/tickets', { key: null, headers: { authorization: `Basic ${key}` } }),
      await server.request('GET', '/tickets', { key: null, headers: { authorization: key } }),
    ]) {
      expectError(response, 401, 'unauthorized');
      expect(JSON.stringify(response.body)).not.toContain(key);
      expect(JSON.stringify(response.headers)).not.toContain(key);
    }
  });

  it('never echoes a valid key either, nor leaks a stack trace, on errors made with it', async () => {
    const { key } = await server.keyFor('admin');
    for (const response of [
      await server.request('GET', '/webhooks/whk_missing', { key }),
      await server.request('POST', '/webhooks', { key, body: { webhook: { name: key } } }),
      await server.request('GET', '/webhooks?cursor=%%%', { key }),
      await server.request('POST', '/tickets', { key, rawBody: '{"ticket": {"subject": tru', headers: { 'content-type': 'application/json' } }),
    ]) {
      expect(response.status).toBeGreaterThanOrEqual(400);
      const text = JSON.stringify(response.body);
      expect(text).not.toContain(key);
      expect(text).not.toMatch(STACK_FRAME);
      expect(text).not.toContain('.ts:');
      expect(text).not.toContain('.js:');
    }
  });
});

describe('content types', () => {
  it('answers 415 to a text/plain POST or PUT, before parsing, even if the body is not JSON', async () => {
    for (const body of [TICKET, '{not json at all', '']) {
      const response = await raw('POST', '/tickets', body, { 'content-type': 'text/plain' });
      expectError(response, 415, 'unsupported_media_type');
    }
    const ticket = await server.request('POST', '/tickets', { body: { ticket: { subject: 'to update' } } });
    const put = await raw('PUT', `/tickets/${ticket.body.ticket.id}`, '{"ticket": {"subject": "changed"}}', { 'content-type': 'text/plain' });
    expectError(put, 415, 'unsupported_media_type');
    expect((await server.request('GET', `/tickets/${ticket.body.ticket.id}`)).body.ticket.subject).toBe('to update');
  });

  it.each(['application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/jsonx', 'application/merge-patch+json', 'text/json', 'json'])(
    'answers 415 to content-type %s',
    async (contentType) => {
      const before = (await server.request('GET', '/tickets?limit=100')).body.tickets.length;
      expectError(await raw('POST', '/tickets', TICKET, { 'content-type': contentType }), 415, 'unsupported_media_type');
      expect((await server.request('GET', '/tickets?limit=100')).body.tickets.length).toBe(before);
    },
  );

  it('answers 415 to a POST with no content-type, with or without a body', async () => {
    expectError(await raw('POST', '/tickets', TICKET), 415, 'unsupported_media_type');
    expectError(await server.request('POST', '/tickets'), 415, 'unsupported_media_type');
    expectError(await raw('POST', '/webhooks', '{"webhook": {}}'), 415, 'unsupported_media_type');
  });

  it.each(['application/json', 'application/json; charset=utf-8', 'application/json;charset=UTF-8', 'Application/JSON', 'application/json ; charset=utf-8'])(
    'accepts content-type %s',
    async (contentType) => {
      const response = await raw('POST', '/tickets', TICKET, { 'content-type': contentType });
      expect(response.status, JSON.stringify(response.body)).toBe(201);
      expect(response.body.ticket.subject).toBe('hello');
    },
  );

  it('answers JSON as application/json; charset=utf-8', async () => {
    const response = await server.request('GET', '/tickets');
    expect(response.headers['content-type']).toBe('application/json; charset=utf-8');
  });
});

describe('bodies', () => {
  it.each(['', ' ', '\n\t '])('answers 400 invalid_json to an empty body %j sent as JSON', async (body) => {
    expectError(await raw('POST', '/tickets', body, { 'content-type': 'application/json' }), 400, 'invalid_json');
    expectError(await raw('POST', '/webhooks', body, { 'content-type': 'application/json' }), 400, 'invalid_json');
  });

  it.each(['{', '{"ticket": {"subject": "x"}', "{'ticket': {}}", '{"ticket": {"subject": "x"}} trailing', 'undefined', '{"ticket": {"subject": "x",}}', 'NaN'])(
    'answers 400 invalid_json to malformed JSON %j',
    async (body) => {
      expectError(await raw('POST', '/tickets', body, { 'content-type': 'application/json' }), 400, 'invalid_json');
    },
  );

  it('answers 400 invalid_json to malformed JSON on PUT', async () => {
    const ticket = await server.request('POST', '/tickets', { body: { ticket: { subject: 'x' } } });
    expectError(await raw('PUT', `/tickets/${ticket.body.ticket.id}`, '{"ticket":', { 'content-type': 'application/json' }), 400, 'invalid_json');
  });

  it.each(['null', '[]', '"ticket"', '42', 'true'])('answers 400 (not 500) to the valid JSON %s that is not an object', async (body) => {
    const response = await raw('POST', '/tickets', body, { 'content-type': 'application/json' });
    expect(response.status).toBe(400);
    expect(['validation_failed', 'invalid_json']).toContain(response.body.error.code);
    expectError(response, 400, response.body.error.code);
  });

  it('accepts a body of exactly 1 MiB and refuses one byte more with 413', async () => {
    const exact = TICKET + ' '.repeat(BODY_LIMIT - Buffer.byteLength(TICKET));
    expect(Buffer.byteLength(exact)).toBe(BODY_LIMIT);
    const accepted = await raw('POST', '/tickets', exact, { 'content-type': 'application/json' });
    expect(accepted.status).toBe(201);
    const over = `${exact} `;
    expectError(await raw('POST', '/tickets', over, { 'content-type': 'application/json' }), 413, 'payload_too_large');
  });

  it('answers 413 to a large body on PUT and changes nothing', async () => {
    const ticket = await server.request('POST', '/tickets', { body: { ticket: { subject: 'unchanged' } } });
    const body = JSON.stringify({ ticket: { subject: 'changed' } }) + ' '.repeat(2 * BODY_LIMIT);
    expectError(await raw('PUT', `/tickets/${ticket.body.ticket.id}`, body, { 'content-type': 'application/json' }), 413, 'payload_too_large');
    expect((await server.request('GET', `/tickets/${ticket.body.ticket.id}`)).body.ticket.subject).toBe('unchanged');
  });

  it.each([
    '{"__proto__": {"polluted": true}, "ticket": {"subject": "proto"}}',
    '{"ticket": {"subject": "proto", "__proto__": {"polluted": true}}}',
    '{"ticket": {"subject": "proto", "customFields": {"__proto__": {"polluted": true}}}}',
    '{"constructor": {"prototype": {"polluted": true}}, "ticket": {"subject": "proto"}}',
    '{"ticket": {"subject": "proto", "customFields": {"constructor": {"prototype": {"polluted": true}}}}}',
  ])('survives %s: a 400, no pollution, the server still answers', async (body) => {
    const response = await raw('POST', '/tickets', body, { 'content-type': 'application/json' });
    expect(response.status).toBe(400);
    expectError(response, 400, response.body.error.code);
    expect(['invalid_json', 'validation_failed']).toContain(response.body.error.code);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
    expect((await server.request('GET', '/healthz', { key: null })).status).toBe(200);
  });
});

describe('paths and methods', () => {
  it.each([`${API}/nope`, `${API}/ticketsx`, `${API}/webhooks/whk_x/nothing/here`, `${API}`, '/helpdesk/api/v2/tickets', '/nope'])(
    'answers 404 not_found for the unknown path %s',
    async (path) => {
      expectError(await server.request('GET', path), 404, 'not_found');
    },
  );

  it('answers 404 not_found to POST on an unknown path under the base', async () => {
    expectError(await server.request('POST', `${API}/nope`, { body: {} }), 404, 'not_found');
  });

  it('answers 404 or 405, not 415, to a POST or PUT without a JSON content type on a path or method that does not exist', async () => {
    expectError(await raw('POST', `${API}/nope`, ''), 404, 'not_found');
    expectError(await raw('POST', `${API}/nope`, 'x', { 'content-type': 'text/plain' }), 404, 'not_found');
    expectError(await raw('PUT', '/tickets', 'x', { 'content-type': 'text/plain' }), 405, 'method_not_allowed');
    expectError(await raw('POST', '/webhooks/whk_123', ''), 405, 'method_not_allowed');
  });

  it.each<[string, string]>([
    ['PATCH', '/tickets'],
    ['PUT', '/tickets'],
    ['DELETE', '/tickets'],
    ['PATCH', '/tickets/tkt_123'],
    ['POST', '/tickets/tkt_123'],
    ['PATCH', '/webhooks'],
    ['DELETE', '/webhooks'],
    ['PATCH', '/webhooks/whk_123'],
    ['POST', '/webhooks/whk_123'],
  ])('answers 405 method_not_allowed to %s %s', async (method, path) => {
    const options = method === 'GET' || method === 'DELETE' ? {} : { body: {} };
    expectError(await server.request(method, path, options), 405, 'method_not_allowed');
  });

  it('answers GET /healthz 200 without an API key', async () => {
    const response = await server.request('GET', '/healthz', { key: null });
    expect(response.status).toBe(200);
    expect(response.headers['x-request-id']).toMatch(/^req_/);
  });

  it('sends a browser at / to the console, and tells anything else where things are', async () => {
    const browser = await server.runtime.app.inject({ method: 'GET', url: '/', headers: { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' } });
    expect(browser.statusCode).toBe(302);
    expect(browser.headers.location).toBe('/admin/');
    const client = await server.runtime.app.inject({ method: 'GET', url: '/' });
    expect(client.statusCode).toBe(200);
    expect(client.json()).toEqual({ name: 'helpdesk', version: expect.any(String), console: '/admin/', api: '/helpdesk/api/v1', openapi: '/helpdesk/api/v1/openapi.json', docs: '/docs', health: '/healthz' });
    expect((await server.runtime.app.inject({ method: 'GET', url: client.json().openapi })).statusCode).toBe(200);
    expect((await server.runtime.app.inject({ method: 'GET', url: client.json().health })).statusCode).toBe(200);
  });

  it('keeps the API behind the key (only /healthz is open)', async () => {
    for (const path of ['/tickets', '/webhooks', '/users', '/api-keys']) {
      expectError(await server.request('GET', path, { key: null }), 401, 'unauthorized');
    }
  });
});

describe('query parameters', () => {
  it.each(['/tickets?foo=1', '/webhooks?foo=bar', '/users?sort=name', '/api-keys?x=', '/tickets?limit=10&Limit=10', '/webhooks?page=2'])(
    'refuses the unknown query parameter in %s with 400',
    async (path) => {
      expectError(await server.request('GET', path), 400, 'validation_failed');
    },
  );

  it('refuses an unknown query parameter on single-resource endpoints too', async () => {
    const ticket = await server.request('POST', '/tickets', { body: { ticket: { subject: 'q' } } });
    const webhook = await server.request('POST', '/webhooks', { body: { webhook: { name: 'q', targetUrl: 'https://example.com/q', events: ['ticket.created'] } } });
    expectError(await server.request('GET', `/webhooks/${webhook.body.webhook.id}?expand=secret`), 400, 'validation_failed');
    expectError(await server.request('GET', `/tickets/${ticket.body.ticket.id}?expand=all`), 400, 'validation_failed');
    expectError(await server.request('DELETE', `/webhooks/${webhook.body.webhook.id}?force=true`), 400, 'validation_failed');
    expect((await server.request('GET', `/webhooks/${webhook.body.webhook.id}`)).status).toBe(200);
  });

  it.each(['0', '101', 'abc', '1.5', '-1', '', '1e1', '0x10', ' 5', '1000000000000000000000'])(
    'refuses limit=%j with 400 (never clamped)',
    async (limit) => {
      for (const list of ['/tickets', '/webhooks']) {
        const error = expectError(await server.request('GET', `${list}?limit=${encodeURIComponent(limit)}`), 400, 'validation_failed');
        expect(error.details?.map((d) => d.path)).toEqual(['limit']);
      }
    },
  );

  it('refuses a repeated limit', async () => {
    expectError(await server.request('GET', '/tickets?limit=5&limit=6'), 400, 'validation_failed');
  });

  it.each(['1', '50', '100'])('accepts limit=%s', async (limit) => {
    const response = await server.request('GET', `/tickets?limit=${limit}`);
    expect(response.status).toBe(200);
    expect(response.body.tickets.length).toBeLessThanOrEqual(Number(limit));
  });

  it.each([
    'bogus',
    '',
    '%%%',
    Buffer.from('{"a":1}').toString('base64url'),
    Buffer.from('[1,2]').toString('base64url'),
    Buffer.from('["only one"]').toString('base64url'),
    Buffer.from('not json').toString('base64url'),
  ])('refuses the cursor %j with 400', async (cursor) => {
    for (const list of ['/tickets', '/webhooks']) {
      const error = expectError(await server.request('GET', `${list}?cursor=${encodeURIComponent(cursor)}`), 400, 'validation_failed');
      expect(error.details?.map((d) => d.path)).toEqual(['cursor']);
    }
  });
});
