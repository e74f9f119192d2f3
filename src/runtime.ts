/**
 * Wires the parts together from a Config: database, services, HTTP app, delivery worker. The CLI
 * and the tests build the server the same way, through here.
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { buildApp } from './api/app.js';
import { AuthService } from './auth/auth.service.js';
import type { Config } from './config.js';
import { openDatabase, type DatabaseHandle } from './db/connection.js';
import { latestMigrationName, migrateToLatest } from './db/migrate.js';
import { openNotificationChannel } from './db/notifications.js';
import type { BreakerState } from './delivery/circuit-breaker.js';
import { deliveryUserAgent } from './delivery/delivery-headers.js';
import { DEFAULT_PER_HOST_CONCURRENCY, maxAttemptsPerHost } from './delivery/host-lanes.js';
import { Outbox } from './delivery/outbox.js';
import { DeliveryWakeup } from './delivery/wakeup.js';
import { DeliveryWorker, type DeliveryWorkerOptions } from './delivery/worker.js';
import { DEFAULT_LIVENESS } from './delivery/worker-liveness.js';
import { WorkerHealth } from './delivery/worker-health.js';
import { buildWorkerEndpoints } from './api/worker-endpoints.js';
import { RateLimiter } from './http/rate-limit.js';
import { IdempotencyService } from './idempotency/idempotency.service.js';
import { Metrics } from './metrics/metrics.js';
import { TargetAddressPolicy } from './outbound/address-policy.js';
import { OutboundHttp, type OutboundClient, type OutboundHttpOptions } from './outbound/http-client.js';
import { SendingThread, sendingThreadAvailable } from './outbound/sending-thread.js';
import { RetentionPruner } from './retention/retention.js';
import { openSecretBox, type SecretBox } from './secrets/secret-box.js';
import { systemClock, type Clock } from './shared/time.js';
import { TicketsService } from './tickets/tickets.service.js';
import { startTracing } from './tracing/start-tracing.js';
import type { Tracing } from './tracing/tracing.js';
import { DeliveryLogService } from './webhooks/delivery-log.service.js';
import { WebhookActivityService } from './webhooks/webhook-activity.service.js';
import { EventFeedService } from './events/event-feed.service.js';
import { EventStreamHub, type EventStreamOptions } from './events/event-stream.js';
import { webhookDirectory } from './webhooks/webhook-directory.js';
import { WebhooksService } from './webhooks/webhooks.service.js';

export interface RuntimeOptions {
  logger: Logger;
  clock?: Clock;
  /** Test seams: extra CA certificates for HTTPS receivers, shorter timeouts. */
  outbound?: Partial<OutboundHttpOptions>;
  worker?: Partial<Pick<DeliveryWorkerOptions, 'globalConcurrency' | 'perHostConcurrency' | 'leaseMs' | 'pollIntervalMs' | 'random' | 'breakerPolicy' | 'liveness'>>;
  /** Test seams: a shorter heartbeat, poll or stall time for event streams. */
  eventStreams?: Partial<Pick<EventStreamOptions, 'heartbeatMs' | 'pollMs' | 'stallMs'>>;
}

export interface Runtime {
  readonly database: DatabaseHandle;
  readonly app: FastifyInstance;
  readonly worker: DeliveryWorker;
  /** Whether attempts are sent from a thread of their own (HELPDESK_SENDING_THREAD). */
  readonly sendingThread: boolean;
  /** Starts the worker, listening for other processes' new deliveries (PostgreSQL) first. */
  startWorker(): Promise<void>;
  readonly retention: RetentionPruner;
  /**
   * `helpdesk worker`'s /healthz and /metrics, listening on HELPDESK_WORKER_PORT (on
   * HELPDESK_HOST) until close; a port in use rejects. Resolves to the address it listens at.
   */
  listenWorkerEndpoints(port: number, host: string): Promise<string>;
  readonly auth: AuthService;
  /** TRACING_OFF unless the OTEL_* variables turn tracing on. */
  readonly tracing: Tracing;
  /** Stops the worker (bounded wait), closes HTTP, the outbound pool and the database; exports the last spans. */
  close(graceMs?: number): Promise<void>;
}

export async function openMigratedDatabase(config: Config, logger?: Logger): Promise<DatabaseHandle> {
  return (await openAndMigrate(config, logger)).database;
}

/** What `helpdesk migrate` did: the migrations it applied, and where the database now stands. */
export interface MigrationReport {
  readonly applied: readonly string[];
  /** The latest migration the database has, after this run. */
  readonly current: string;
}

export async function migrateDatabase(config: Config, logger?: Logger): Promise<MigrationReport> {
  const { database, applied } = await openAndMigrate(config, logger);
  await database.close();
  return { applied, current: latestMigrationName(database.capabilities) };
}

async function openAndMigrate(config: Config, logger?: Logger): Promise<{ database: DatabaseHandle; applied: string[] }> {
  const database = openDatabase(config.database, (error) => logger?.warn({ err: error }, 'database connection lost'));
  try {
    return { database, applied: await migrateToLatest(database.db, database.capabilities) };
  } catch (error) {
    await database.close();
    throw error;
  }
}

/** The longest a close waits for the last spans to reach the collector. */
const TRACE_FLUSH_MS = 5_000;

export async function createRuntime(config: Config, options: RuntimeOptions): Promise<Runtime> {
  const clock = options.clock ?? systemClock;
  const database = await openMigratedDatabase(config, options.logger);
  const tracing = await startTracing(config.tracing, config.database, options.logger.child({ component: 'tracing' }));
  let secrets: SecretBox;
  let webhooksService: WebhooksService;
  try {
    secrets = await openSecretBox(database.db, database.capabilities, config.secretKey, options.logger);
    webhooksService = new WebhooksService(database.db, database.capabilities, clock, new TargetAddressPolicy(config.allowPrivateTargets, config.allowedTargetCidrs), secrets);
    const sealed = await webhooksService.sealSecretsInClear();
    if (sealed > 0) options.logger.info({ sealed }, 'signing secrets stored in clear were sealed');
  } catch (error) {
    await database.close();
    throw error;
  }
  const notifications = openNotificationChannel(config.database, database, options.logger.child({ component: 'notifications' }));
  const wakeup = new DeliveryWakeup(notifications);
  const auth = new AuthService(database.db, clock, config.adminToken);
  const liveness = options.worker?.liveness ?? DEFAULT_LIVENESS;
  // The worker reports to the metrics; the metrics read the worker's breakers when scraped.
  const metrics: Metrics | null = config.metricsEnabled
    ? new Metrics(
        database.db,
        (): Map<string, BreakerState> => worker.breakers.states(),
        () => (worker.running ? worker.lastClaimAt : null),
        () => tracing.spanExports(),
        { now: () => clock.now(), staleMs: liveness.staleMs },
      )
    : null;
  const idempotency = new IdempotencyService(database.db, database.capabilities, clock, secrets);
  // The delivery engine sees webhooks through this port only.
  const webhooks = webhookDirectory(database.capabilities, secrets);
  const outbox = new Outbox(database.capabilities, webhooks, metrics ?? undefined);
  const eventStreams = new EventStreamHub({
    db: database.db,
    capabilities: database.capabilities,
    logger: options.logger.child({ component: 'event-stream' }),
    maxStreams: config.maxEventStreams,
    ...(metrics ? { observer: metrics } : {}),
    ...options.eventStreams,
  });
  // The lanes bound the attempts to a host; the connection pool must never bind before them, or a
  // webhook that hangs would hold the connections its host's other webhooks are owed.
  const connectionsPerOrigin = maxAttemptsPerHost(options.worker?.perHostConcurrency ?? DEFAULT_PER_HOST_CONCURRENCY);
  const outboundOptions: OutboundHttpOptions = { allowPrivateTargets: config.allowPrivateTargets, allowedTargetCidrs: config.allowedTargetCidrs, connectionsPerOrigin, ...options.outbound };
  // A test's own resolver is a function, which cannot cross to a thread: those tests send inline.
  const http: OutboundClient = config.sendingThread && !outboundOptions.lookup && sendingThreadAvailable() ? new SendingThread(outboundOptions) : new OutboundHttp(outboundOptions);
  // A process that delivers starts its sending thread now, to boot on the other core while this
  // one builds the app; an API-only serve never starts one (its worker is not started).
  const sendingReady = config.serveWorker && http instanceof SendingThread ? http.prepare() : null;
  const worker: DeliveryWorker = new DeliveryWorker({
    db: database.db,
    capabilities: database.capabilities,
    http,
    webhooks,
    wakeup,
    logger: options.logger.child({ component: 'delivery' }),
    clock,
    retrySchedule: config.retrySchedule,
    userAgent: deliveryUserAgent(config.version),
    leaseMs: config.deliveryLeaseSeconds * 1000,
    version: config.version,
    ...(metrics ? { observer: metrics, livenessObserver: metrics } : {}),
    tracing,
    ...options.worker,
  });
  const health = new WorkerHealth(database.db, worker, clock);
  const services = {
    auth,
    idempotency,
    tickets: new TicketsService(database.db, database.capabilities, clock, outbox, wakeup, idempotency, options.logger.child({ component: 'tickets' }), eventStreams, tracing),
    webhooks: webhooksService,
    // The breakers live in this process's worker, when it runs one (docs/api.md, the stats).
    deliveries: new DeliveryLogService(database.db, database.capabilities, clock, wakeup, (webhookId) => (worker.running ? worker.breakers.status(webhookId) : null), tracing),
    activity: new WebhookActivityService(database.db, database.capabilities, clock),
    events: new EventFeedService(database.db),
    eventStreams,
    metrics,
    // serve's /healthz checks the worker only where serve runs one (docs/deployment.md).
    health: config.serveWorker ? health : null,
    rateLimiter: config.rateLimit ? new RateLimiter(config.rateLimit, clock) : null,
  };
  const retention = new RetentionPruner({
    db: database.db,
    clock,
    logger: options.logger.child({ component: 'retention' }),
    retentionDays: config.retentionDays,
    intervalMs: config.retentionIntervalSeconds * 1000,
    ...(metrics ? { observer: metrics } : {}),
  });
  let workerEndpoints: FastifyInstance | null = null;
  const app = await buildApp(services, options.logger, { requestTimeoutMs: config.requestTimeoutSeconds * 1000, version: config.version, tracing });
  return {
    database,
    app,
    worker,
    sendingThread: http instanceof SendingThread,
    retention,
    auth,
    async listenWorkerEndpoints(port, host) {
      workerEndpoints = await buildWorkerEndpoints(health, metrics, options.logger.child({ component: 'worker-endpoints' }));
      return workerEndpoints.listen({ port, host });
    },
    tracing,
    async startWorker() {
      await notifications.listen(() => wakeup.wakeLocal());
      await (sendingReady ?? http.prepare());
      worker.start();
    },
    async close(graceMs = 10_000) {
      await app.close();
      await workerEndpoints?.close();
      // Creations of requests whose clients already left are not waited for by the close.
      await services.tickets.settled();
      await retention.stop();
      await notifications.close();
      await worker.stop(graceMs);
      await http.close();
      await database.close();
      // Last: the spans of the requests and attempts just finished go out too.
      await tracing.shutdown(TRACE_FLUSH_MS);
    },
  };
}
