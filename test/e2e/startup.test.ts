/**
 * What a start leaves for later (docs/deployment.md, "Start-up"): the console, Swagger UI and the
 * request schemas are loaded or compiled by their first request. The real program, started on
 * an existing database; every request below is the first of its kind in that process, so each
 * takes the path that loads. How long anything takes is the bench's business (bench/scenarios/
 * startup.mjs), not this file's.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/databases.js';
import { describeEachDialect } from '../helpers/dialects.js';
import { freePort, spawnHelpdesk, type HelpdeskProcess } from '../helpers/processes.js';
import { ADMIN_TOKEN, API, SECRET_KEY } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';

describeEachDialect('a cold start of serve', (dialect) => {
  let database: TestDatabase;
  let server: HelpdeskProcess;
  let base: string;

  beforeAll(async () => {
    database = await createTestDatabase(dialect);
    const env = { HELPDESK_DATABASE_URL: database.url, HELPDESK_ADMIN_TOKEN: ADMIN_TOKEN, HELPDESK_SECRET_KEY: SECRET_KEY, HELPDESK_LOG_LEVEL: 'warn' };
    // An existing database: migrated by an earlier run, as a restart finds it.
    const migrate = spawnHelpdesk('migrate', env);
    expect(await migrate.exited, migrate.output()).toEqual({ code: 0, signal: null });
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    server = spawnHelpdesk('serve', { ...env, HELPDESK_PORT: String(port) });
    await waitFor(`serve to answer /healthz (output: ${server.output()})`, async () => {
      if (server.child.exitCode !== null) throw new Error(`serve exited: ${server.output()}`);
      return fetch(`${base}/healthz`).then((r) => r.ok, () => false);
    });
  });

  afterAll(async () => {
    if (server?.child.exitCode === null) {
      server.child.kill('SIGTERM');
      expect(await server.exited).toEqual({ code: 0, signal: null });
    }
    await database?.drop();
  });

  it('serves the console page and its files on their first request, with their headers', async () => {
    const page = await fetch(`${base}/admin/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(page.headers.get('cache-control')).toBe('no-cache');
    expect(page.headers.get('x-request-id')).toMatch(/^req_/);
    const script = /<script[^>]+src="(\/admin\/assets\/[^"]+\.js)"/.exec(await page.text())?.[1];
    expect(script).toBeDefined();
    const asset = await fetch(`${base}${script}`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get('content-type')).toMatch(/javascript/);
    expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect((await asset.text()).length).toBeGreaterThan(1000);
    // The page at /admin too, and a HEAD says what a GET would send.
    expect((await fetch(`${base}/admin`)).status).toBe(200);
    const head = await fetch(`${base}/admin/`, { method: 'HEAD' });
    expect({ status: head.status, length: head.headers.get('content-length') }).toEqual({ status: 200, length: page.headers.get('content-length') });
  });

  it('answers a file the console does not have with the API 404, request id included', async () => {
    const missing = await fetch(`${base}/admin/assets/no-such-file.js`);
    const requestId = missing.headers.get('x-request-id');
    expect({ status: missing.status, body: await missing.json() }).toEqual({ status: 404, body: { error: { code: 'not_found', message: 'No such path.', requestId } } });
  });

  it('answers first requests to Swagger UI that arrive together, and shows this server’s document', async () => {
    const [page, initializer, shown, served] = await Promise.all([
      fetch(`${base}/docs/`),
      fetch(`${base}/docs/static/swagger-initializer.js`),
      fetch(`${base}/docs/json`),
      fetch(`${base}${API}/openapi.json`),
    ]);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('content-security-policy')).not.toContain('upgrade-insecure-requests');
    expect(initializer.status).toBe(200);
    expect(await initializer.text()).toContain('"validatorUrl":null');
    expect(shown.status).toBe(200);
    expect(await shown.json()).toEqual(await served.json());
    const missing = await fetch(`${base}/docs/no-such-page`);
    expect({ status: missing.status, code: ((await missing.json()) as { error: { code: string } }).error.code }).toEqual({ status: 404, code: 'not_found' });
  });

  it('validates the first request of a route against its schema, compiled then', async () => {
    const headers = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' };
    const invalid = await fetch(`${base}${API}/tickets`, { method: 'POST', headers, body: JSON.stringify({ ticket: { subject: 1, colour: 'red' } }) });
    expect({ status: invalid.status, body: await invalid.json() }).toEqual({
      status: 400,
      body: {
        error: {
          code: 'validation_failed',
          message: 'The request is not valid.',
          details: expect.arrayContaining([
            { path: 'ticket.colour', message: 'is not an allowed field' },
            { path: 'ticket.subject', message: 'must be string' },
          ]),
          requestId: invalid.headers.get('x-request-id'),
        },
      },
    });
    const query = await fetch(`${base}${API}/tickets?expand=secret`, { headers });
    expect(query.status).toBe(400);
    const valid = await fetch(`${base}${API}/tickets`, { method: 'POST', headers, body: JSON.stringify({ ticket: { subject: 'Cold start' } }) });
    expect(valid.status).toBe(201);
  });
});
