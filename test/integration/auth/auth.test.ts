/**
 * docs/api.md "Authentication and roles", identity and permission: who may call what, users, API keys (shown once, stored
 * hashed), and the bootstrap admin token.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Clock } from '../../../src/shared/time.js';
import { describeEachDialect } from '../../helpers/dialects.js';
import { ADMIN_TOKEN, startTestServer, type ApiResponse, type TestServer } from '../../helpers/server.js';

const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/**
 * Real time, but never the same millisecond twice: rows created one after the other get distinct
 * createdAt values, so "newest first" has a single right answer.
 */
function strictlyIncreasingClock(): Clock {
  let last = 0;
  return { now: () => (last = Math.max(Date.now(), last + 1)) };
}

function expectError(response: ApiResponse, status: number, code: string): void {
  expect(response.status, JSON.stringify(response.body)).toBe(status);
  expect(response.body.error.code).toBe(code);
  expect(response.body.error.requestId).toBe(response.headers['x-request-id']);
}

function expectValidation(response: ApiResponse, path: string): void {
  expectError(response, 400, 'validation_failed');
  expect(response.body.error.details.map((d: { path: string }) => d.path)).toContain(path);
}

/** Newest first: createdAt, then id, descending (docs/api.md, "Conventions"). */
function isNewestFirst(items: { createdAt: string; id: string }[]): boolean {
  return items.every((item, i) => {
    const next = items[i + 1];
    return next === undefined || item.createdAt > next.createdAt || (item.createdAt === next.createdAt && item.id > next.id);
  });
}

let emailCounter = 0;
function uniqueEmail(tag = 'user'): string {
  emailCounter += 1;
  return `${tag}-${emailCounter}-${Date.now()}@example.com`;
}

/** The routes that are admin only (docs/api.md, "Authentication and roles"), with a body where the method takes one. */
const ADMIN_ROUTES: { method: string; path: string; body?: unknown }[] = [
  { method: 'GET', path: '/webhooks' },
  { method: 'POST', path: '/webhooks', body: { webhook: { name: 'x', targetUrl: 'https://example.com/hook', events: ['ticket.created'] } } },
  { method: 'GET', path: '/webhooks/whk_000000000000000000000000' },
  { method: 'PUT', path: '/webhooks/whk_000000000000000000000000', body: { webhook: { name: 'y' } } },
  { method: 'DELETE', path: '/webhooks/whk_000000000000000000000000' },
  { method: 'GET', path: '/users' },
  { method: 'POST', path: '/users', body: { user: { name: 'Eve', email: 'eve@example.com', role: 'admin' } } },
  { method: 'GET', path: '/users/usr_000000000000000000000000' },
  { method: 'GET', path: '/api-keys' },
  { method: 'POST', path: '/api-keys', body: { apiKey: { name: 'sneaky', userId: 'usr_000000000000000000000000' } } },
  { method: 'DELETE', path: '/api-keys/key_000000000000000000000000' },
];

describeEachDialect('auth', (dialect) => {
  let server: TestServer;
  let agent: { key: string; userId: string };
  let admin: { key: string; userId: string };

  beforeAll(async () => {
    server = await startTestServer(dialect, { startWorker: false, runtime: { clock: strictlyIncreasingClock() } });
    agent = await server.keyFor('agent');
    admin = await server.keyFor('admin');
  });
  afterAll(async () => {
    await server?.close();
  });

  const db = () => server.runtime.database.db;

  async function createUser(fields: Record<string, unknown> = {}): Promise<ApiResponse> {
    return server.request('POST', '/users', { body: { user: { name: 'Ada Lovelace', email: uniqueEmail(), role: 'agent', ...fields } } });
  }

  async function countRows(table: 'users' | 'api_keys'): Promise<number> {
    const row = await db().selectFrom(table).select((eb) => eb.fn.countAll<number | string>().as('n')).executeTakeFirstOrThrow();
    return Number(row.n);
  }

  describe('authentication', () => {
    it('answers 401 unauthorized without an Authorization header', async () => {
      for (const path of ['/tickets', '/users', '/webhooks', '/api-keys']) {
        const response = await server.request('GET', path, { key: null });
        expectError(response, 401, 'unauthorized');
      }
    });

    it('answers 401 to an unknown key, including near misses of real ones', async () => {
      const unknown = [
        'hdk_thisKeyWasNeverIssuedByTheServerAtAll1234567',
        `${ADMIN_TOKEN}x`,
        ADMIN_TOKEN.slice(0, -1),
        ADMIN_TOKEN.toUpperCase(),
        `${agent.key}x`,
        agent.key.slice(0, -1),
      ];
      for (const key of unknown) {
        const response = await server.request('GET', '/tickets', { key });
        expectError(response, 401, 'unauthorized');
        expect(JSON.stringify(response.body)).not.toContain(key);
      }
    });

    it('answers 401 to a malformed Authorization header', async () => {
      const malformed = [
        ADMIN_TOKEN,
        `Basic ${Buffer.from(`admin:${ADMIN_TOKEN}`).toString('base64')}`,
        `Token ${ADMIN_TOKEN}`,
        'Bearer',
        'Bearer ',
        `Bearer ${ADMIN_TOKEN} ${ADMIN_TOKEN}`,
        `Bearer: ${ADMIN_TOKEN}`,
        `${ADMIN_TOKEN} Bearer`,
      ];
      for (const authorization of malformed) {
        const response = await server.request('GET', '/tickets', { key: null, headers: { authorization } });
        expectError(response, 401, 'unauthorized');
      }
    });

    it('checks the key before anything else: no body, path or id details leak to an anonymous caller', async () => {
      expectError(await server.request('POST', '/tickets', { key: null, rawBody: '{not json', headers: { 'content-type': 'application/json' } }), 401, 'unauthorized');
      expectError(await server.request('POST', '/tickets', { key: null, body: { ticket: { bogus: true } } }), 401, 'unauthorized');
      expectError(await server.request('GET', '/tickets/tkt_doesnotexist', { key: null }), 401, 'unauthorized');
      expectError(await server.request('POST', '/users', { key: 'nope-nope-nope', rawBody: 'x', headers: { 'content-type': 'text/plain' } }), 401, 'unauthorized');
    });

    it('accepts the bootstrap admin token as an admin key', async () => {
      expect((await server.request('GET', '/users', { key: ADMIN_TOKEN })).status).toBe(200);
      expect((await server.request('GET', '/webhooks', { key: ADMIN_TOKEN })).status).toBe(200);
      expect((await server.request('GET', '/api-keys', { key: ADMIN_TOKEN })).status).toBe(200);
      expect((await server.request('GET', '/tickets', { key: ADMIN_TOKEN })).status).toBe(200);
      const created = await server.request('POST', '/users', { key: ADMIN_TOKEN, body: { user: { name: 'By token', email: uniqueEmail('token'), role: 'agent' } } });
      expect(created.status).toBe(201);
    });

    it('does not store or list the bootstrap token as an API key', async () => {
      const tokenHash = createHash('sha256').update(ADMIN_TOKEN).digest('hex');
      const rows = await db().selectFrom('api_keys').selectAll().execute();
      expect(rows.length).toBeGreaterThan(0);
      for (const row of rows) {
        expect(row.key_hash).not.toBe(tokenHash);
        expect(JSON.stringify(row)).not.toContain(ADMIN_TOKEN);
      }
      const listed = await server.request('GET', '/api-keys?limit=100');
      expect(listed.status).toBe(200);
      expect(JSON.stringify(listed.body)).not.toContain(ADMIN_TOKEN);
      // Only the keys made through the API (two per keyFor) are listed.
      expect(listed.body.apiKeys).toHaveLength(rows.length);
    });

    it('answers 403 forbidden to an agent on every method of /webhooks, /users and /api-keys', async () => {
      const usersBefore = await countRows('users');
      const keysBefore = await countRows('api_keys');
      for (const route of ADMIN_ROUTES) {
        const response = await server.request(route.method, route.path, { key: agent.key, ...(route.body === undefined ? {} : { body: route.body }) });
        expect(response.status, `${route.method} ${route.path}`).toBe(403);
        expect(response.body.error.code).toBe('forbidden');
      }
      expect(await countRows('users')).toBe(usersBefore);
      expect(await countRows('api_keys')).toBe(keysBefore);
      expect(await db().selectFrom('webhooks').select('id').execute()).toEqual([]);
    });

    it('answers 403 to an agent before validating the body or looking up the id', async () => {
      const badJson = await server.request('POST', '/users', { key: agent.key, rawBody: '{', headers: { 'content-type': 'application/json' } });
      expectError(badJson, 403, 'forbidden');
      const badBody = await server.request('POST', '/api-keys', { key: agent.key, body: { nonsense: 1 } });
      expectError(badBody, 403, 'forbidden');
      const unknownUser = await server.request('GET', `/users/${agent.userId}`, { key: agent.key });
      expectError(unknownUser, 403, 'forbidden');
    });

    it('lets an admin key made through the API do admin things', async () => {
      expect((await server.request('GET', '/users', { key: admin.key })).status).toBe(200);
      expect((await server.request('GET', '/api-keys', { key: admin.key })).status).toBe(200);
      expect((await server.request('GET', '/webhooks', { key: admin.key })).status).toBe(200);
      expect((await createUser({ email: uniqueEmail('by-admin-key') })).status).toBe(201);
    });
  });

  describe('users', () => {
    it('creates a user: 201 with exactly {id, name, email, role, createdAt, updatedAt}', async () => {
      const email = uniqueEmail('grace');
      const response = await server.request('POST', '/users', { body: { user: { name: 'Grace Hopper', email, role: 'admin' } } });
      expect(response.status).toBe(201);
      expect(response.headers['content-type']).toBe('application/json; charset=utf-8');
      const user = response.body.user;
      expect(Object.keys(response.body)).toEqual(['user']);
      expect(user).toEqual({ id: expect.any(String), name: 'Grace Hopper', email, role: 'admin', createdAt: expect.any(String), updatedAt: expect.any(String) });
      // At least 80 random bits after the prefix: 20 hex digits or 14 base64url characters.
      expect(user.id).toMatch(/^usr_[A-Za-z0-9_-]{14,}$/);
      expect(user.createdAt).toMatch(ISO_MS);
      expect(user.updatedAt).toBe(user.createdAt);
      expect(Math.abs(Date.parse(user.createdAt) - Date.now())).toBeLessThan(60_000);

      const fetched = await server.request('GET', `/users/${user.id}`);
      expect(fetched.status).toBe(200);
      expect(fetched.body).toEqual({ user });
    });

    it('gives every user a distinct id', async () => {
      const ids = new Set<string>();
      for (let i = 0; i < 5; i += 1) ids.add((await createUser()).body.user.id);
      expect(ids.size).toBe(5);
    });

    it('refuses a duplicate email, compared case-insensitively, with 409 conflict', async () => {
      const email = uniqueEmail('Mixed.Case');
      expect((await createUser({ email })).status).toBe(201);
      const before = await countRows('users');
      for (const duplicate of [email, email.toLowerCase(), email.toUpperCase()]) {
        const response = await createUser({ email: duplicate, name: 'Someone else', role: 'admin' });
        expectError(response, 409, 'conflict');
      }
      expect(await countRows('users')).toBe(before);
      const stored = await db().selectFrom('users').select('email').where('email_normalized', '=', email.toLowerCase()).execute();
      expect(stored).toEqual([{ email }]);
    });

    it('rejects an invalid user with 400 validation_failed naming the field, and creates nothing', async () => {
      const before = await countRows('users');
      const cases: [Record<string, unknown>, string][] = [
        [{ name: 'A', email: uniqueEmail(), role: 'owner' }, 'user.role'],
        [{ name: 'A', email: uniqueEmail(), role: 'agent', admin: true }, 'user.admin'],
        [{ name: 42, email: uniqueEmail(), role: 'agent' }, 'user.name'],
        [{ name: 'A', email: ['a@example.com'], role: 'agent' }, 'user.email'],
        [{ name: 'A', email: uniqueEmail(), role: null }, 'user.role'],
        [{ name: '', email: uniqueEmail(), role: 'agent' }, 'user.name'],
        [{ name: 'A', email: 'not-an-email', role: 'agent' }, 'user.email'],
        [{ email: uniqueEmail(), role: 'agent' }, 'user.name'],
        [{ name: 'A', role: 'agent' }, 'user.email'],
        [{ name: 'A', email: uniqueEmail() }, 'user.role'],
      ];
      for (const [user, path] of cases) {
        expectValidation(await server.request('POST', '/users', { body: { user } }), path);
      }
      // Not wrapped in its name, or with a sibling field: also refused.
      expectValidation(await server.request('POST', '/users', { body: { name: 'A', email: uniqueEmail(), role: 'agent' } }), 'user');
      expectValidation(await server.request('POST', '/users', { body: { user: { name: 'A', email: uniqueEmail(), role: 'agent' }, extra: 1 } }), 'extra');
      expect(await countRows('users')).toBe(before);
    });

    it('lets exactly one of several concurrent creates with one email (in any case) succeed', async () => {
      const email = uniqueEmail('race');
      const variants = [email, email.toUpperCase(), email.toLowerCase(), `${email[0]!.toUpperCase()}${email.slice(1)}`];
      const responses = await Promise.all(variants.map((variant) => createUser({ email: variant })));
      expect(responses.map((r) => r.status).sort()).toEqual([201, 409, 409, 409]);
      for (const response of responses.filter((r) => r.status === 409)) expect(response.body.error.code).toBe('conflict');
      const stored = await db().selectFrom('users').select('id').where('email_normalized', '=', email.toLowerCase()).execute();
      expect(stored).toHaveLength(1);
    });

    it('answers 404 not_found for an unknown user id', async () => {
      expectError(await server.request('GET', '/users/usr_000000000000000000000000'), 404, 'not_found');
      expectError(await server.request('GET', '/users/nonsense'), 404, 'not_found');
    });

    it('lists users newest first, page by page with limit and cursor', async () => {
      const created: string[] = [];
      for (let i = 0; i < 5; i += 1) created.push((await createUser({ name: `Pager ${i}` })).body.user.id);

      const everyone = await server.request('GET', '/users?limit=100');
      expect(everyone.status).toBe(200);
      expect(Object.keys(everyone.body).sort()).toEqual(['nextCursor', 'users']);
      const all = everyone.body.users as { id: string; createdAt: string }[];
      expect(isNewestFirst(all)).toBe(true);
      // The five just made are the five newest, the last one first.
      expect(all.slice(0, 5).map((u) => u.id)).toEqual([...created].reverse());
      for (const user of all) expect(Object.keys(user).sort()).toEqual(['createdAt', 'email', 'id', 'name', 'role', 'updatedAt']);

      const walked: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const query: string = cursor === null ? '?limit=2' : `?limit=2&cursor=${encodeURIComponent(cursor)}`;
        const page = await server.request('GET', `/users${query}`);
        expect(page.status).toBe(200);
        expect(page.body.users.length).toBeLessThanOrEqual(2);
        walked.push(...page.body.users.map((u: { id: string }) => u.id));
        cursor = page.body.nextCursor;
        pages += 1;
        if (cursor !== null) expect(page.body.users).toHaveLength(2);
      } while (cursor !== null && pages < 100);
      expect(walked).toEqual(all.map((u) => u.id));
      expect(pages).toBe(Math.ceil(all.length / 2));
    });

    it('ends the list with nextCursor null and defaults to 50 per page', async () => {
      while ((await countRows('users')) <= 50) await createUser();
      const first = await server.request('GET', '/users');
      expect(first.status).toBe(200);
      expect(first.body.users).toHaveLength(50);
      expect(typeof first.body.nextCursor).toBe('string');
      const total = await countRows('users');
      const whole = await server.request('GET', `/users?limit=100`);
      expect(whole.body.users).toHaveLength(Math.min(total, 100));
      if (total <= 100) expect(whole.body.nextCursor).toBeNull();
      const rest = await server.request('GET', `/users?limit=100&cursor=${encodeURIComponent(first.body.nextCursor)}`);
      expect(rest.status).toBe(200);
      expect(rest.body.users.map((u: { id: string }) => u.id)).toEqual(whole.body.users.slice(50).map((u: { id: string }) => u.id));
    });

    it('rejects a limit outside 1..100, a bad cursor and an unknown query parameter with 400', async () => {
      for (const limit of ['0', '101', 'abc', '-1', '1.5', '', '1e1']) {
        expectError(await server.request('GET', `/users?limit=${limit}`), 400, 'validation_failed');
      }
      expect((await server.request('GET', '/users?limit=1')).status).toBe(200);
      expect((await server.request('GET', '/users?limit=100')).status).toBe(200);
      expectError(await server.request('GET', '/users?cursor=not-a-cursor'), 400, 'validation_failed');
      expectValidation(await server.request('GET', '/users?role=admin'), 'role');
      expectError(await server.request('GET', '/api-keys?limit=0'), 400, 'validation_failed');
      expectValidation(await server.request('GET', '/api-keys?userId=x'), 'userId');
    });
  });

  describe('API keys', () => {
    async function createKey(userId: string, name = 'ci'): Promise<ApiResponse> {
      return server.request('POST', '/api-keys', { body: { apiKey: { name, userId } } });
    }

    it('creates a key: 201 with {id, name, userId, key, createdAt}, the key shown this once', async () => {
      const user = (await createUser()).body.user;
      const response = await createKey(user.id, 'Zapier');
      expect(response.status).toBe(201);
      expect(Object.keys(response.body)).toEqual(['apiKey']);
      const apiKey = response.body.apiKey;
      expect(apiKey).toEqual({ id: expect.any(String), name: 'Zapier', userId: user.id, key: expect.any(String), createdAt: expect.any(String) });
      expect(apiKey.id).toMatch(/^key_[A-Za-z0-9_-]{14,}$/);
      expect(apiKey.createdAt).toMatch(ISO_MS);
      expect(apiKey.key.length).toBeGreaterThanOrEqual(20);
      expect(apiKey.key).not.toBe(apiKey.id);

      const listed = await server.request('GET', '/api-keys?limit=100');
      expect(listed.status).toBe(200);
      expect(Object.keys(listed.body).sort()).toEqual(['apiKeys', 'nextCursor']);
      const entry = listed.body.apiKeys.find((k: { id: string }) => k.id === apiKey.id);
      expect(entry).toEqual({ id: apiKey.id, name: 'Zapier', userId: user.id, createdAt: apiKey.createdAt });
      for (const listedKey of listed.body.apiKeys) expect(listedKey).not.toHaveProperty('key');
      expect(JSON.stringify(listed.body)).not.toContain(apiKey.key);
    });

    it('lists keys newest first with pagination', async () => {
      const user = (await createUser()).body.user;
      const ids: string[] = [];
      for (let i = 0; i < 3; i += 1) ids.push((await createKey(user.id, `k${i}`)).body.apiKey.id);
      const first = await server.request('GET', '/api-keys?limit=2');
      expect(first.body.apiKeys.map((k: { id: string }) => k.id)).toEqual([ids[2], ids[1]]);
      expect(typeof first.body.nextCursor).toBe('string');
      const second = await server.request('GET', `/api-keys?limit=2&cursor=${encodeURIComponent(first.body.nextCursor)}`);
      expect(second.body.apiKeys[0].id).toBe(ids[0]);
      const all = (await server.request('GET', '/api-keys?limit=100')).body.apiKeys;
      expect(isNewestFirst(all)).toBe(true);
    });

    it('authenticates a new key with the role of its user', async () => {
      const agentUser = (await createUser({ role: 'agent' })).body.user;
      const adminUser = (await createUser({ role: 'admin' })).body.user;
      const agentKey = (await createKey(agentUser.id)).body.apiKey.key;
      const adminKey = (await createKey(adminUser.id)).body.apiKey.key;

      expect((await server.request('GET', '/tickets', { key: agentKey })).status).toBe(200);
      expectError(await server.request('GET', '/users', { key: agentKey }), 403, 'forbidden');
      expect((await server.request('GET', '/tickets', { key: adminKey })).status).toBe(200);
      expect((await server.request('GET', '/users', { key: adminKey })).status).toBe(200);

      // The key acts as its user: a ticket assigned through it names a real user.
      const ticket = await server.request('POST', '/tickets', { key: agentKey, body: { ticket: { subject: 'via agent key', assigneeId: agentUser.id } } });
      expect(ticket.status).toBe(201);
    });

    it('refuses a key for an unknown user with 400, and creates nothing', async () => {
      const before = await countRows('api_keys');
      expectValidation(await createKey('usr_000000000000000000000000'), 'apiKey.userId');
      expectValidation(await server.request('POST', '/api-keys', { body: { apiKey: { name: 'x' } } }), 'apiKey.userId');
      expectValidation(await server.request('POST', '/api-keys', { body: { apiKey: { userId: agent.userId } } }), 'apiKey.name');
      expectValidation(await server.request('POST', '/api-keys', { body: { apiKey: { name: 'x', userId: agent.userId, key: 'my-own-key' } } }), 'apiKey.key');
      expectValidation(await server.request('POST', '/api-keys', { body: { apiKey: { name: 7, userId: agent.userId } } }), 'apiKey.name');
      expect(await countRows('api_keys')).toBe(before);
    });

    it('deletes a key: 204, then the key is refused with 401 and no longer listed', async () => {
      const user = (await createUser()).body.user;
      const doomed = (await createKey(user.id, 'doomed')).body.apiKey;
      const survivor = (await createKey(user.id, 'survivor')).body.apiKey;
      expect((await server.request('GET', '/tickets', { key: doomed.key })).status).toBe(200);

      const deleted = await server.request('DELETE', `/api-keys/${doomed.id}`);
      expect(deleted.status).toBe(204);
      expect(deleted.body).toBeUndefined();

      expectError(await server.request('GET', '/tickets', { key: doomed.key }), 401, 'unauthorized');
      expect((await server.request('GET', '/tickets', { key: survivor.key })).status).toBe(200);
      const listed = (await server.request('GET', '/api-keys?limit=100')).body.apiKeys.map((k: { id: string }) => k.id);
      expect(listed).not.toContain(doomed.id);
      expect(listed).toContain(survivor.id);
      expect(await db().selectFrom('api_keys').select('id').where('id', '=', doomed.id).execute()).toEqual([]);

      expectError(await server.request('DELETE', `/api-keys/${doomed.id}`), 404, 'not_found');
    });

    it('stores keys hashed: the clear key is in no column of any row', async () => {
      const user = (await createUser()).body.user;
      const apiKey = (await createKey(user.id, 'hashed')).body.apiKey;
      const secretPart = apiKey.key.replace(/^[a-z]+_/, '');
      const row = await db().selectFrom('api_keys').selectAll().where('id', '=', apiKey.id).executeTakeFirstOrThrow();
      for (const value of Object.values(row)) {
        expect(String(value)).not.toContain(apiKey.key);
        expect(String(value)).not.toContain(secretPart);
      }
      expect(row.key_hash).not.toBe(apiKey.key);
      expect(row.key_hash.length).toBeGreaterThan(0);
      // Nowhere else either.
      for (const table of ['users', 'api_keys', 'settings', 'tickets'] as const) {
        const dump = JSON.stringify(await db().selectFrom(table).selectAll().execute());
        expect(dump, table).not.toContain(secretPart);
      }
    });
  });
});
