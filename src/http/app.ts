/**
 * Assembles the HTTP API: a thin layer that authenticates, checks the role, validates against
 * the route's schema, calls a service and presents the result. No SQL here.
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { AuthService, Principal, Role } from '../auth/auth.service.js';
import { registerDeliveryLogRoutes } from '../delivery/delivery-log.routes.js';
import type { Metrics } from '../metrics/metrics.js';
import type { DeliveryLogService } from '../delivery/delivery-log.service.js';
import { registerAuthRoutes } from '../auth/auth.routes.js';
import { AppError } from '../errors.js';
import { newId } from '../shared/ids.js';
import { registerTicketRoutes } from '../tickets/tickets.routes.js';
import type { TicketsService } from '../tickets/tickets.service.js';
import { registerWebhookRoutes } from '../webhooks/webhooks.routes.js';
import type { WebhooksService } from '../webhooks/webhooks.service.js';
import { sendError, toAppError } from './errors.js';
import type { RateLimiter } from './rate-limit.js';

export const API_BASE = '/helpdesk/api/v1';
export const BODY_LIMIT_BYTES = 1024 * 1024;

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Roles allowed on the route; absent means no API key is needed. */
    roles?: readonly Role[];
    /** Action endpoints whose fields are all optional accept a POST with no body. */
    bodyOptional?: boolean;
  }
  interface FastifyRequest {
    principal: Principal | null;
  }
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
  /** Absent when HELPDESK_METRICS=false. */
  metrics: Metrics | null;
  /** Absent when HELPDESK_RATE_LIMIT=off. */
  rateLimiter: RateLimiter | null;
}

function hasBody(request: FastifyRequest): boolean {
  const length = request.headers['content-length'];
  return request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

function mediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase();
}

/** `/webhooks/:id` → a regular expression matching concrete paths, for telling 405 from 404. */
function patternOf(url: string): RegExp {
  const escaped = url
    .split('/')
    .map((segment) => (segment.startsWith(':') ? '[^/]+' : segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/');
  return new RegExp(`^${escaped}/?$`);
}

export async function buildApp(services: Services, logger: Logger): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    genReqId: () => newId('req'),
    bodyLimit: BODY_LIMIT_BYTES,
    // The API must reject wrong types and unknown fields, never coerce or drop them.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: true, allowUnionTypes: true } },
    routerOptions: { ignoreTrailingSlash: true },
  });

  app.decorateRequest('principal', null);

  const routeTable: (RouteEntry & { pattern: RegExp })[] = [];
  app.decorate('routeTable', routeTable);
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) routeTable.push({ method, url: route.url, roles: route.config?.roles ?? null, pattern: patternOf(route.url) });
    // SPEC §1: unknown query parameters are a 400 on every endpoint. A route that declares no
    // querystring schema takes none, instead of silently ignoring `?expand=secret`.
    if (route.url.startsWith(API_BASE) && route.schema?.querystring === undefined) {
      route.schema = { ...route.schema, querystring: { type: 'object', additionalProperties: false, properties: {} } };
    }
  });

  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
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

  // Checked before the body is parsed (SPEC §1).
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

  const defaultJsonParser = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: BODY_LIMIT_BYTES }, (request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') {
      if (request.routeOptions.config.bodyOptional) return done(null, undefined);
      return done(new AppError('invalid_json', 'The body is empty; send a JSON object.'), undefined);
    }
    defaultJsonParser(request, text, (error, parsed) => {
      if (error) return done(new AppError('invalid_json', 'The body is not valid JSON.', undefined, { cause: error }), undefined);
      return done(null, parsed);
    });
  });

  app.setErrorHandler((error, request, reply) => {
    const appError = toAppError(error as Error);
    if (appError.code === 'internal') request.log.error({ err: error }, 'request failed');
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

  app.get('/healthz', async () => ({ status: 'ok' }));

  const metrics = services.metrics;
  if (metrics) {
    // No API key: scrapers are configured by address; turn it off with HELPDESK_METRICS=false.
    app.get('/metrics', async (_request, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()));
  }

  await app.register(
    async (api) => {
      registerAuthRoutes(api, services.auth);
      registerTicketRoutes(api, services.tickets);
      registerWebhookRoutes(api, services.webhooks);
      registerDeliveryLogRoutes(api, services.deliveries);
    },
    { prefix: API_BASE },
  );

  return app;
}
