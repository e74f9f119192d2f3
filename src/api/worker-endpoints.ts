/**
 * What `helpdesk worker` serves on HELPDESK_WORKER_PORT: `GET /healthz` and `GET /metrics`,
 * answered like `serve`'s (operations-routes.ts), and nothing else. The API and the console are
 * `serve`'s alone; a probe every few seconds is not logged.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { WorkerHealth } from '../delivery/worker-health.js';
import { AppError } from '../errors.js';
import { sendError } from '../http/errors.js';
import type { Metrics } from '../metrics/metrics.js';
import { newId } from '../shared/ids.js';
import { registerHealthRoute, registerMetricsRoute } from './operations-routes.js';

/** `metrics`: null when HELPDESK_METRICS=false, and /metrics is then not found, as on `serve`. */
export async function buildWorkerEndpoints(health: WorkerHealth, metrics: Metrics | null, logger: Logger): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    genReqId: () => newId('req'),
    logController: new LogController({ disableRequestLogging: true }),
    // A scraper that stalls must not hold a connection for long: nothing here waits on a client.
    requestTimeout: 10_000,
  });
  registerHealthRoute(app, health);
  if (metrics) registerMetricsRoute(app, metrics);
  app.setNotFoundHandler((request, reply) => sendError(request, reply, new AppError('not_found', 'No such path: a worker serves /healthz and /metrics only.')));
  await app.ready();
  return app;
}
