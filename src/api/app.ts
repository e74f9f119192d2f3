/**
 * Assembles the HTTP API: a thin layer that authenticates, checks the role, validates against
 * the route's schema, calls a service and presents the result. No SQL here.
 */
import { registerRequestTracing } from '../http/request-tracing.js';
import { TRACING_OFF, type Tracing } from '../tracing/tracing.js';
import type { Duplex } from 'node:stream';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { AuthService } from '../auth/auth.service.js';
import type { Role } from '../shared/principal.js';
import { attemptSchema, deliveryDetailSchema, deliverySchema, registerDeliveryLogRoutes } from '../webhooks/delivery-log.routes.js';
import type { IdempotencyService } from '../idempotency/idempotency.service.js';
import type { Metrics } from '../metrics/metrics.js';
import type { WorkerHealth } from '../delivery/worker-health.js';
import type { DeliveryLogService } from '../webhooks/delivery-log.service.js';
import { apiKeyResourceSchema, newApiKeySchema, registerAuthRoutes, userResourceSchema } from '../auth/auth.routes.js';
import { AppError, ERROR_CATALOGUE } from '../errors.js';
import { API_BASE } from '../shared/api-base.js';
import { newId } from '../shared/ids.js';
import { registerTicketRoutes, ticketSchema } from '../tickets/tickets.routes.js';
import type { TicketsService } from '../tickets/tickets.service.js';
import { registerWebhookRoutes, webhookSchema, webhookWithSecretSchema } from '../webhooks/webhooks.routes.js';
import { registerWebhookActivityRoutes } from '../webhooks/webhook-activity.routes.js';
import type { WebhookActivityService } from '../webhooks/webhook-activity.service.js';
import type { WebhooksService } from '../webhooks/webhooks.service.js';
import { sendError, toAppError } from '../http/errors.js';
import { registerIdempotency } from '../idempotency/idempotency.hook.js';
import { CONSOLE_PREFIX, registerAdminConsole } from './admin-console.js';
import { compileOnFirstUse } from './lazy-validation.js';
import { registerOpenApi } from './openapi.js';
import { registerHealthRoute, registerMetricsRoute } from './operations-routes.js';
import type { RateLimiter } from '../http/rate-limit.js';
import type { EventFeedService } from '../events/event-feed.service.js';
import type { EventStreamHub } from '../events/event-stream.js';
import { feedEventSchema, registerEventRoutes } from '../events/events.routes.js';

export { API_BASE };
export const BODY_LIMIT_BYTES = 1024 * 1024;

declare module 'fastify' {
  interface FastifyInstance {
    /** Every route as registered: the router table, for the tests that walk it. */
    readonly routeTable: readonly RouteEntry[];
  }
}

export interface RouteEntry {
  readonly method: string;
  /** With its prefix and `:param` placeholders, as registered. */
  readonly url: string;
  /** Who may call it; null for the routes that need no API key (`/healthz`, `/metrics`). */
  readonly roles: readonly Role[] | null;
}

export interface Services {
  auth: AuthService;
  tickets: TicketsService;
  webhooks: WebhooksService;
  deliveries: DeliveryLogService;
  activity: WebhookActivityService;
  events: EventFeedService;
  eventStreams: EventStreamHub;
  /** Absent when HELPDESK_METRICS=false. */
  metrics: Metrics | null;
  /** The health of this process's delivery worker; null when it runs none (API only). */
  health: WorkerHealth | null;
  /** Absent when HELPDESK_RATE_LIMIT=off. */
  rateLimiter: RateLimiter | null;
  idempotency: IdempotencyService;
}

function hasBody(request: FastifyRequest): boolean {
  const length = request.headers['content-length'];
  return request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

function mediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase();
}

/** NUL, which PostgreSQL text cannot hold, and UTF-16 halves that encode no character. */
// eslint-disable-next-line no-control-regex -- NUL is exactly what this looks for
const NOT_TEXT = /\u0000|\p{Cs}/u;

/**
 * The dotted path of a string (value or key) in a parsed body that is not storable text, or
 * null. Such a string would be refused by PostgreSQL (a 500) and stored differently by SQLite,
 * so it is refused up front, the same on both databases. Walked with a stack of its own, not by
 * recursion: a body nested as deep as JSON.parse allows must not overflow the call stack.
 */
function firstInvalidText(body: unknown): string | null {
  const pending: { value: unknown; path: string }[] = [{ value: body, path: '' }];
  while (pending.length > 0) {
    const { value, path } = pending.pop()!;
    if (typeof value === 'string') {
      if (NOT_TEXT.test(value)) return path || 'body';
    } else if (value !== null && typeof value === 'object') {
      for (const [key, inner] of Object.entries(value).reverse()) {
        const innerPath = path ? `${path}.${key}` : key;
        if (NOT_TEXT.test(key)) return innerPath;
        pending.push({ value: inner, path: innerPath });
      }
    }
  }
  return null;
}

/** `/webhooks/:id` → a regular expression matching concrete paths, for telling 405 from 404. */
export function patternOf(url: string): RegExp {
  const escaped = url
    .split('/')
    .map((segment) => (segment.startsWith(':') ? '[^/]+' : segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/');
  return new RegExp(`^${escaped}/?$`);
}

export interface AppOptions {
  /** Headers and body must have arrived within this (slowloris), or the answer is 408. */
  requestTimeoutMs: number;
  /** The server's version, for the OpenAPI document. */
  version: string;
  /** Request spans (docs/deployment.md, "Tracing"); off when absent. */
  tracing?: Tracing;
}

/** The resources the API answers with, referred to by `$id` from the routes' response schemas. */
const RESOURCE_SCHEMAS = [
  ticketSchema,
  webhookSchema,
  webhookWithSecretSchema,
  userResourceSchema,
  apiKeyResourceSchema,
  newApiKeySchema,
  deliverySchema,
  attemptSchema,
  deliveryDetailSchema,
  feedEventSchema,
];

/**
 * What Node's HTTP parser refuses before Fastify sees a request: a request that did not arrive
 * whole in time, or bytes that are not HTTP. Answered in the documented error shape (there is
 * no request id yet), then the connection is closed.
 */
function answerClientError(error: Error & { code?: string }, socket: Duplex): void {
  // A client that hung up has nobody to answer.
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const timedOut = error.code === 'ERR_HTTP_REQUEST_TIMEOUT' || error.code === 'ERR_HTTP_HEADERS_TIMEOUT';
  const code = timedOut ? 'request_timeout' : 'bad_request';
  const message = timedOut ? 'The request did not arrive whole in time.' : 'The request is not valid HTTP.';
  const body = JSON.stringify({ error: { code, message } });
  if (socket.writable) {
    const status = `${ERROR_CATALOGUE[code].status} ${timedOut ? 'Request Timeout' : 'Bad Request'}`;
    socket.write(`HTTP/1.1 ${status}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  }
  socket.destroy(error);
}

export async function buildApp(services: Services, logger: Logger, options: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    genReqId: () => newId('req'),
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT_BYTES,
    // The API must reject wrong types and unknown fields, never coerce or drop them.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: true, allowUnionTypes: true }, onCreate: compileOnFirstUse },
    routerOptions: { ignoreTrailingSlash: true },
    // Slowloris: the whole request, headers included, within the timeout; Node looks for
    // requests over it every connectionsCheckingInterval (30 s by default, too coarse for a
    // timeout of a few seconds).
    requestTimeout: options.requestTimeoutMs,
    http: { headersTimeout: options.requestTimeoutMs, connectionsCheckingInterval: Math.min(1_000, options.requestTimeoutMs / 2) },
    clientErrorHandler: answerClientError,
  });

  app.decorateRequest('principal', null);
  // First, so that the request span covers the other hooks (authentication, rate limit).
  registerRequestTracing(app, options.tracing ?? TRACING_OFF);

  // Response schemas describe (the OpenAPI document, and the tests check every answer against
  // them); answers are serialised as they are, never trimmed to a schema (src/http/schemas.ts).
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  for (const schema of RESOURCE_SCHEMAS) app.addSchema(schema);

  const routeTable: (RouteEntry & { pattern: RegExp })[] = [];
  app.decorate('routeTable', routeTable);
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) routeTable.push({ method, url: route.url, roles: route.config?.roles ?? null, pattern: patternOf(route.url) });
    // Unknown query parameters are a 400 on every endpoint (docs/api.md, "Conventions"). A route that declares no
    // querystring schema takes none, instead of silently ignoring `?expand=secret`.
    if (route.url.startsWith(API_BASE) && route.schema?.querystring === undefined) {
      route.schema = { ...route.schema, querystring: { type: 'object', additionalProperties: false, properties: {} } };
    }
  });

  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });

  // One line per request, when it is answered (Fastify's own logging writes two), and the
  // request metrics by route template, so that ids in paths do not make a series each.
  const metrics = services.metrics;
  // The level is fixed at start: below info, the line is not even put together.
  const logRequests = logger.isLevelEnabled('info');
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const seconds = reply.elapsedTime / 1000;
    metrics?.requestAnswered(request.method, route, reply.statusCode, seconds);
    if (!logRequests) return;
    request.log.info(
      { request: { method: request.method, url: request.url, route, statusCode: reply.statusCode, durationMs: Math.round(reply.elapsedTime * 10) / 10 } },
      `${request.method} ${request.url} ${reply.statusCode} ${reply.elapsedTime.toFixed(1)} ms`,
    );
  });

  // Authentication, rate limit and role first: a caller without rights learns nothing about
  // validation. Every authenticated request takes from its key's bucket, a forbidden one too.
  app.addHook('onRequest', async (request, reply) => {
    const roles = request.routeOptions.config.roles;
    if (!roles) return;
    const header = request.headers.authorization;
    const match = header === undefined ? null : /^Bearer (\S+)$/i.exec(header);
    const principal = match ? await services.auth.authenticate(match[1]!) : null;
    if (!principal) throw new AppError('unauthorized', 'Send a valid API key as "Authorization: Bearer <key>".');
    if (services.rateLimiter) {
      const verdict = services.rateLimiter.take(principal.keyId);
      reply.header('ratelimit-limit', verdict.limit).header('ratelimit-remaining', verdict.remaining).header('ratelimit-reset', verdict.resetSeconds);
      if (!verdict.allowed) {
        reply.header('retry-after', verdict.retryAfterSeconds);
        throw new AppError('rate_limited', `Too many requests with this API key; try again in ${verdict.retryAfterSeconds} s.`);
      }
    }
    if (!roles.includes(principal.role)) throw new AppError('forbidden', `This needs the ${roles.join(' or ')} role.`);
    request.principal = principal;
  });

  // Checked before the body is parsed (docs/api.md, "Conventions").
  app.addHook('onRequest', async (request) => {
    if (request.method !== 'POST' && request.method !== 'PUT') return;
    // An unknown path or method answers 404 or 405 whatever its content type.
    if (request.routeOptions.url === undefined) return;
    if (request.routeOptions.config.bodyOptional && !hasBody(request)) return;
    if (mediaType(request.headers['content-type']) !== 'application/json') {
      throw new AppError('unsupported_media_type', 'Send the body as application/json.');
    }
  });

  // A bodiless action POST is the same as an empty object, so its schema can still reject
  // unknown fields when a body is sent.
  app.addHook('preValidation', async (request) => {
    if (request.routeOptions.config.bodyOptional && !hasBody(request)) request.body = {};
  });

  registerIdempotency(app, services.idempotency);

  const defaultJsonParser = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: BODY_LIMIT_BYTES }, (request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') {
      if (request.routeOptions.config.bodyOptional) return done(null, undefined);
      return done(new AppError('invalid_json', 'The body is empty; send a JSON object.'), undefined);
    }
    defaultJsonParser(request, text, (error, parsed) => {
      if (error) return done(new AppError('invalid_json', 'The body is not valid JSON.', undefined, { cause: error }), undefined);
      const invalid = firstInvalidText(parsed);
      if (invalid !== null) {
        return done(AppError.validation([{ path: invalid, message: 'must be text without NUL characters or unpaired surrogates' }]), undefined);
      }
      return done(null, parsed);
    });
  });

  app.setErrorHandler((error, request, reply) => {
    const appError = toAppError(error as Error);
    if (appError.code === 'internal') request.log.error({ err: error }, 'request failed');
    if (appError.code === 'unavailable') request.log.warn({ err: error }, 'request refused: the database is unavailable');
    return sendError(request, reply, appError);
  });

  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0]!;
    const otherMethod = routeTable.some((r) => r.pattern.test(path) && r.method !== request.method && r.method !== 'HEAD');
    const error = otherMethod
      ? new AppError('method_not_allowed', `${request.method} is not allowed on this path.`)
      : new AppError('not_found', 'No such path.');
    return sendError(request, reply, error);
  });

  // Open streams would hold the close until their clients leave: they end first, and their
  // clients resume after the restart (or on another process) from the last event they read.
  app.addHook('preClose', async () => services.eventStreams.close());

  await registerOpenApi(app, { apiBase: API_BASE, version: options.version });
  registerAdminConsole(app);

  registerHealthRoute(app, services.health);

  // The address a newcomer types first: a browser goes to the console, anything else learns where
  // things are.
  const indexLink = { type: 'string' };
  const indexSchema = {
    summary: 'Where things are: a browser is sent to the console (302 to /admin/), anything else gets their addresses',
    tags: ['operations'],
    response: {
      200: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'version', 'console', 'api', 'openapi', 'docs', 'health'],
        properties: { name: { type: 'string', enum: ['helpdesk'] }, version: indexLink, console: indexLink, api: indexLink, openapi: indexLink, docs: indexLink, health: indexLink },
      },
      302: { type: 'null', description: 'To the console, for a request that accepts text/html.' },
    },
  };
  app.get('/', { schema: indexSchema }, async (request, reply) => {
    if ((request.headers.accept ?? '').includes('text/html')) return reply.redirect(CONSOLE_PREFIX, 302);
    return { name: 'helpdesk', version: options.version, console: CONSOLE_PREFIX, api: API_BASE, openapi: `${API_BASE}/openapi.json`, docs: '/docs', health: '/healthz' };
  });

  if (metrics) registerMetricsRoute(app, metrics);

  await app.register(
    async (api) => {
      registerAuthRoutes(api, services.auth);
      registerTicketRoutes(api, services.tickets);
      registerWebhookRoutes(api, services.webhooks);
      registerDeliveryLogRoutes(api, services.deliveries);
      registerWebhookActivityRoutes(api, services.activity);
      registerEventRoutes(api, services.events, services.eventStreams);
    },
    { prefix: API_BASE },
  );

  return app;
}
