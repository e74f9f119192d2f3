/**
 * The first start (docs/api.md, "Authentication and roles"; docs/configuration.md,
 * `HELPDESK_ADMIN_TOKEN`): an empty database gets an admin and a key shown once; the bootstrap
 * token makes its own admin, is honoured only while it is set, and must be long enough.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config.js';
import type { DialectName } from '../../../src/db/capabilities.js';
import { AppError } from '../../../src/errors.js';
import { createLogger } from '../../../src/logger.js';
import { createRuntime, type Runtime } from '../../../src/runtime.js';
import { createTestDatabase, type TestDatabase } from '../../helpers/databases.js';
import { describeEachDialect } from '../../helpers/dialects.js';
import { trackOpen } from '../../helpers/leaks.js';
import { ADMIN_TOKEN, API, startTestServer, type ApiResponse } from '../../helpers/server.js';

/** A runtime on a given database, built as the CLI builds it, without the test server's token. */
async function startRuntime(database: TestDatabase, env: Record<string, string>): Promise<Runtime> {
  const config = loadConfig({ HELPDESK_DATABASE_URL: database.url, HELPDESK_LOG_LEVEL: 'silent', ...env });
  const runtime = await createRuntime(config, { logger: createLogger(config.logLevel) });
  const untrack = trackOpen(runtime, `Helpdesk runtime [${database.url.split(':')[0]}]`);
  await runtime.app.ready();
  const close = runtime.close.bind(runtime);
  return {
    ...runtime,
    async close(graceMs?: number) {
      await close(graceMs);
      untrack();
    },
  };
}

async function statusWith(runtime: Runtime, key: string, path = '/users'): Promise<number> {
  const response = await runtime.app.inject({ method: 'GET', url: `${API}${path}`, headers: { authorization: `Bearer ${key}` } });
  return response.statusCode;
}

describeEachDialect('auth bootstrap', (dialect: DialectName) => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase(dialect);
  });
  afterAll(async () => {
    await database?.drop();
  });

  it('without HELPDESK_ADMIN_TOKEN, a first start creates an admin and returns its key once', async () => {
    const runtime = await startRuntime(database, {});
    try {
      const first = await runtime.auth.bootstrap();
      expect(first.printedKey).toEqual(expect.any(String));
      const key = first.printedKey!;
      expect(await statusWith(runtime, key)).toBe(200);
      const users = await runtime.database.db.selectFrom('users').select(['role']).execute();
      expect(users).toEqual([{ role: 'admin' }]);
      const keys = await runtime.database.db.selectFrom('api_keys').selectAll().execute();
      expect(keys).toHaveLength(1);
      expect(JSON.stringify(keys)).not.toContain(key);
      // Not shown again, and no second admin.
      expect(await runtime.auth.bootstrap()).toEqual({ printedKey: null });
      expect(await runtime.database.db.selectFrom('users').select('id').execute()).toHaveLength(1);
    } finally {
      await runtime.close(1_000);
    }
  });

  it('with HELPDESK_ADMIN_TOKEN, creates its admin user on the first start only', async () => {
    const fresh = await createTestDatabase(dialect);
    try {
      const first = await startTestServer(dialect, { database: fresh, startWorker: false });
      let users: ApiResponse;
      try {
        users = await first.request('GET', '/users');
        expect(users.status).toBe(200);
        expect(users.body.users).toHaveLength(1);
        expect(users.body.users[0].role).toBe('admin');
        expect((await first.request('GET', '/api-keys')).body).toEqual({ apiKeys: [], nextCursor: null });
      } finally {
        await first.close();
      }
      const restarted = await startTestServer(dialect, { database: fresh, startWorker: false });
      try {
        const again = await restarted.request('GET', '/users');
        expect(again.body.users).toEqual(users.body.users);
      } finally {
        await restarted.close();
      }
    } finally {
      await fresh.drop();
    }
  });

  it('honours the bootstrap token only while it is set', async () => {
    const otherToken = 'another-admin-token-abcdefghijkl';
    const withToken = await startRuntime(database, { HELPDESK_ADMIN_TOKEN: ADMIN_TOKEN });
    try {
      expect(await withToken.auth.bootstrap()).toEqual({ printedKey: null });
      expect(await statusWith(withToken, ADMIN_TOKEN)).toBe(200);
      expect(await statusWith(withToken, otherToken)).toBe(401);
    } finally {
      await withToken.close(1_000);
    }

    const changed = await startRuntime(database, { HELPDESK_ADMIN_TOKEN: otherToken });
    try {
      await changed.auth.bootstrap();
      expect(await statusWith(changed, otherToken)).toBe(200);
      expect(await statusWith(changed, ADMIN_TOKEN)).toBe(401);
    } finally {
      await changed.close(1_000);
    }

    const unset = await startRuntime(database, {});
    try {
      expect(await unset.auth.bootstrap()).toEqual({ printedKey: null });
      expect(await statusWith(unset, ADMIN_TOKEN)).toBe(401);
      expect(await statusWith(unset, otherToken)).toBe(401);
    } finally {
      await unset.close(1_000);
    }
  });
});

describe('auth configuration', () => {
  it('refuses a HELPDESK_ADMIN_TOKEN shorter than 16 characters', () => {
    let thrown: unknown;
    try {
      loadConfig({ HELPDESK_ADMIN_TOKEN: 'fifteen-chars-x' });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(AppError);
    expect((thrown as AppError).code).toBe('config_invalid');
    expect((thrown as AppError).message).not.toContain('fifteen-chars-x');
    expect(loadConfig({ HELPDESK_ADMIN_TOKEN: 'sixteen-chars-xx' }).adminToken).toBe('sixteen-chars-xx');
  });
});
