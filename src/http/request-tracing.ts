/**
 * The request span of every API request (docs/deployment.md, "Tracing"): it continues the
 * caller's `traceparent`, covers the whole request (authentication included) and ends with its
 * answer. Health checks, scrapes, the console's files and the docs make none: they would bury
 * the changes' traces under probes. Its traceparent is handed to the services on `request.traceparent`, so that the
 * change's transaction, and the delivery attempts of its events, join its trace. Nothing is
 * registered when tracing is off.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { API_BASE } from '../shared/api-base.js';
import type { RequestSpan, Traceparent, Tracing } from '../tracing/tracing.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The request span, when tracing is on; null otherwise. */
    traceparent: Traceparent | null;
  }
}

const spans = new WeakMap<FastifyRequest, RequestSpan>();

export function registerRequestTracing(app: FastifyInstance, tracing: Tracing): void {
  app.decorateRequest('traceparent', null);
  if (!tracing.enabled) return;
  app.addHook('onRequest', async (request) => {
    if (!request.url.startsWith(API_BASE)) return;
    const header = request.headers.traceparent;
    const span = tracing.startRequest({
      method: request.method,
      route: request.routeOptions.url,
      path: request.url.split('?', 1)[0]!,
      host: request.headers.host,
      clientAddress: request.ip,
      userAgent: request.headers['user-agent'],
      traceparent: Array.isArray(header) ? header[0] : header,
    });
    spans.set(request, span);
    request.traceparent = span.traceparent;
  });
  app.addHook('onResponse', async (request, reply) => {
    spans.get(request)?.end(reply.statusCode);
  });
  // The client left before its answer: the span ends there, without one.
  app.addHook('onRequestAbort', async (request) => {
    spans.get(request)?.end(null, 'aborted');
  });
}
