/**
 * `GET /healthz` and `GET /metrics`, the same on `serve`'s port and on a worker's
 * HELPDESK_WORKER_PORT (docs/deployment.md, "Health and metrics"): no API key, since probes and
 * scrapers are configured by address.
 */
import type { FastifyInstance } from 'fastify';
import { HEALTH_PROBLEMS, type WorkerHealth } from '../delivery/worker-health.js';
import type { Metrics } from '../metrics/metrics.js';

const healthSchema = {
  summary: 'Health: 200 while the process does its job; 503, saying why, when its delivery worker cannot reach the database or does not claim due work',
  tags: ['operations'],
  response: {
    200: { type: 'object', additionalProperties: false, required: ['status'], properties: { status: { type: 'string', enum: ['ok'] } } },
    503: {
      description: 'A process that runs a delivery worker cannot reach its database within 2 s, or has claimed nothing for longer than its lease while a delivery has been due that long.',
      type: 'object',
      additionalProperties: false,
      required: ['status', 'reason', 'message'],
      properties: {
        status: { type: 'string', enum: ['unavailable'] },
        reason: { type: 'string', enum: [...HEALTH_PROBLEMS] },
        message: { type: 'string', description: 'What is wrong, for a person.' },
      },
    },
  },
};

/** `health`: null for a process that runs no worker (an API-only `serve`), which answers 200 once it accepts requests. */
export function registerHealthRoute(app: FastifyInstance, health: WorkerHealth | null): void {
  app.get('/healthz', { schema: healthSchema }, async (_request, reply) => {
    if (!health) return { status: 'ok' };
    const report = await health.check();
    return reply.code(report.status === 'ok' ? 200 : 503).send(report);
  });
}

export function registerMetricsRoute(app: FastifyInstance, metrics: Metrics): void {
  const metricsSchema = {
    summary: 'Prometheus metrics (turned off by HELPDESK_METRICS=false)',
    tags: ['operations'],
    produces: ['text/plain'],
    response: { 200: { type: 'string', description: 'Prometheus text format.' } },
  };
  app.get('/metrics', { schema: metricsSchema }, async (_request, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()));
}
