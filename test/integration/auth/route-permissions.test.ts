/**
 * Walks the router table, so that a route added later is covered without anyone remembering to:
 * every route of the API needs an API key (401 without one, or with an unknown or revoked one),
 * an agent key reaches only the routes open to agents (403 elsewhere), and none of those
 * refusals changes a row. Only `/healthz`, `/metrics`, the OpenAPI document and the static pages
 * (Swagger UI, the admin console) answer without a key.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RouteEntry } from '../../../src/api/app.js';
import { describeEachDialect } from '../../helpers/dialects.js';
import { isStaticPage } from '../../helpers/openapi-check.js';
import { API, startTestServer, type TestServer } from '../../helpers/server.js';
import { ALL_TABLES } from '../../helpers/tables.js';


/** Swagger UI at /docs and the admin console at /admin: static files, open like any web page. */
const isStaticRoute = (route: RouteEntry) => isStaticPage(route.url);

/** A concrete path for a route: every `:param` an id that exists nowhere. */
function concretePath(route: RouteEntry): string {
  return route.url.replace(/:[^/]+/g, 'x_0123456789abcdef');
}

describeEachDialect('route permissions', (dialect) => {
  let server: TestServer;
  let agentKey: string;
  let revokedKey: string;
  let routes: readonly RouteEntry[];

  beforeAll(async () => {
    server = await startTestServer(dialect, { startWorker: false });
    agentKey = (await server.keyFor('agent')).key;
    const revoked = await server.keyFor('admin');
    revokedKey = revoked.key;
    const keys = await server.request('GET', '/api-keys?limit=100');
    const revokedId = (keys.body.apiKeys as { id: string; userId: string }[]).find((k) => k.userId === revoked.userId)!.id;
    expect((await server.request('DELETE', `/api-keys/${revokedId}`)).status).toBe(204);
    routes = server.runtime.app.routeTable;
  });
  afterAll(async () => {
    await server.close();
  });

  async function rowCounts(): Promise<Record<string, number>> {
    const db = server.runtime.database.db;
    const counts: Record<string, number> = {};
    for (const table of ALL_TABLES) {
      const row = await db.selectFrom(table).select((eb) => eb.fn.countAll<number | string>().as('n')).executeTakeFirstOrThrow();
      counts[table] = Number(row.n);
    }
    return counts;
  }

  /** Each route once, as a client would call it; a POST or PUT carries an empty JSON object. */
  async function call(route: RouteEntry, key: string | null) {
    const body = route.method === 'POST' || route.method === 'PUT' ? { body: {} } : {};
    return server.request(route.method, concretePath(route), { key, ...body });
  }

  it('has routes to walk, and only the index, health, metrics, the API description and the static pages need no key', () => {
    expect(routes.length).toBeGreaterThan(20);
    const open = routes.filter((r) => r.roles === null && !isStaticRoute(r)).map((r) => `${r.method} ${r.url}`);
    expect(open.sort()).toEqual([
      'GET /',
      'GET /healthz',
      `GET ${API}/openapi.json`,
      'GET /metrics',
      'HEAD /',
      'HEAD /healthz',
      `HEAD ${API}/openapi.json`,
      'HEAD /metrics',
    ]);
    // The pages hold no data: every call they make goes through the API, with a key.
    expect(routes.filter(isStaticRoute).length).toBeGreaterThan(0);
    expect(routes.filter(isStaticRoute).every((r) => r.roles === null && (r.method === 'GET' || r.method === 'HEAD'))).toBe(true);
  });

  it('answers 401 on every API route without a key, with an unknown key and with a revoked key, and changes nothing', async () => {
    const before = await rowCounts();
    for (const route of routes.filter((r) => r.roles !== null)) {
      for (const key of [null, 'hdk_not-a-key-at-all', revokedKey]) {
        const response = await call(route, key);
        expect({ route: `${route.method} ${route.url}`, status: response.status, code: response.body?.error?.code }).toEqual({
          route: `${route.method} ${route.url}`,
          status: 401,
          code: route.method === 'HEAD' ? undefined : 'unauthorized',
        });
      }
    }
    expect(await rowCounts()).toEqual(before);
  });

  it('answers 403 to an agent on every admin route, lets it through on the agent routes, and changes nothing', async () => {
    const before = await rowCounts();
    const agentRoutes: string[] = [];
    for (const route of routes.filter((r) => r.roles !== null)) {
      const response = await call(route, agentKey);
      const name = `${route.method} ${route.url}`;
      if (route.roles!.includes('agent')) {
        agentRoutes.push(name);
        expect({ name, refused: response.status === 401 || response.status === 403 }).toEqual({ name, refused: false });
      } else {
        expect({ name, status: response.status, code: response.body?.error?.code }).toEqual({ name, status: 403, code: route.method === 'HEAD' ? undefined : 'forbidden' });
      }
    }
    // Tickets are the agents' (docs/api.md, "Authentication and roles"); everything else is the admins'.
    expect(agentRoutes.length).toBeGreaterThan(0);
    expect(agentRoutes.every((name) => name.includes('/tickets'))).toBe(true);
    expect(await rowCounts()).toEqual(before);
  });
});
