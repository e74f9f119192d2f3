/**
 * Wires the parts together from a Config: database, services, HTTP app, delivery worker. The CLI
 * and the tests build the server the same way, through here.
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { AuthService } from './auth/auth.service.js';
import type { Config } from './config.js';
import { openDatabase, type DatabaseHandle } from './db/connection.js';
import { migrateToLatest } from './db/migrate.js';
import { DeliveryLogService } from './delivery/delivery-log.service.js';
import { DeliveryWakeup } from './delivery/wakeup.js';
import { DeliveryWorker, type DeliveryWorkerOptions } from './delivery/worker.js';
import { buildApp } from './http/app.js';
import { OutboundHttp, type OutboundHttpOptions } from './outbound/http-client.js';
import { systemClock, type Clock } from './shared/time.js';
import { TicketsService } from './tickets/tickets.service.js';
import { WebhooksService } from './webhooks/webhooks.service.js';

export interface RuntimeOptions {
  logger: Logger;
  clock?: Clock;
  /** Test seams: extra CA certificates for HTTPS receivers, shorter timeouts. */
  outbound?: Partial<OutboundHttpOptions>;
  worker?: Partial<Pick<DeliveryWorkerOptions, 'globalConcurrency' | 'perHostConcurrency' | 'leaseMs' | 'pollIntervalMs' | 'random'>>;
}

export interface Runtime {
  readonly database: DatabaseHandle;
  readonly app: FastifyInstance;
  readonly worker: DeliveryWorker;
  readonly auth: AuthService;
  /** Stops the worker (bounded wait), closes HTTP, the outbound pool and the database. */
  close(graceMs?: number): Promise<void>;
}

export async function openMigratedDatabase(config: Config, logger?: Logger): Promise<DatabaseHandle> {
  const database = openDatabase(config.database, (error) => logger?.warn({ err: error }, 'idle database connection lost'));
  try {
    await migrateToLatest(database.db, database.capabilities);
  } catch (error) {
    await database.close();
    throw error;
  }
  return database;
}

export async function createRuntime(config: Config, options: RuntimeOptions): Promise<Runtime> {
  const clock = options.clock ?? systemClock;
  const database = await openMigratedDatabase(config, options.logger);
  const wakeup = new DeliveryWakeup();
  const auth = new AuthService(database.db, clock, config.adminToken);
  const services = {
    auth,
    tickets: new TicketsService(database.db, database.capabilities, clock, wakeup),
    webhooks: new WebhooksService(database.db, database.capabilities, clock, config.allowPrivateTargets),
    deliveries: new DeliveryLogService(database.db, clock, wakeup),
  };
  const http = new OutboundHttp({ allowPrivateTargets: config.allowPrivateTargets, ...options.outbound });
  const worker = new DeliveryWorker({
    db: database.db,
    capabilities: database.capabilities,
    http,
    wakeup,
    logger: options.logger.child({ component: 'delivery' }),
    clock,
    retrySchedule: config.retrySchedule,
    userAgent: `Helpdesk-Webhooks/${config.version}`,
    leaseMs: config.deliveryLeaseSeconds * 1000,
    ...options.worker,
  });
  const app = await buildApp(services, options.logger);
  return {
    database,
    app,
    worker,
    auth,
    async close(graceMs = 10_000) {
      await app.close();
      await worker.stop(graceMs);
      await http.close();
      await database.close();
    },
  };
}
