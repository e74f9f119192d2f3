/**
 * Keeps the delivery log to its retention period (HELPDESK_RETENTION_DAYS, 30 by default):
 * finished deliveries, their attempts and payloads are deleted in the background, in small
 * batches, once at start and then every few minutes. Pending deliveries are never pruned.
 * Idempotency keys past their 24 hours go in the same pass.
 */
import type { Logger } from 'pino';
import type { Db } from '../db/connection.js';
import { type Clock, toIso } from '../shared/time.js';
import { pruneExpiredKeys } from '../idempotency/idempotency.repository.js';
import { pruneFinished } from '../delivery/deliveries.repository.js';

export interface RetentionOptions {
  db: Db;
  clock: Clock;
  logger: Logger;
  retentionDays: number;
  intervalMs?: number;
  batchSize?: number;
}

export class RetentionPruner {
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<number> | null = null;
  #started = false;
  #stopRequested = false;

  constructor(private readonly options: RetentionOptions) {}

  start(): void {
    this.#started = true;
    this.#tick();
  }

  async stop(): Promise<void> {
    this.#stopRequested = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#running;
  }

  /** One full pass: batches until less than a batch is left. Returns how many rows went. */
  async pruneOnce(): Promise<number> {
    const { db, clock, retentionDays, batchSize = 1000 } = this.options;
    const before = toIso(clock.now() - retentionDays * 24 * 60 * 60 * 1000);
    let total = await pruneExpiredKeys(db, toIso(clock.now()));
    for (;;) {
      const removed = await pruneFinished(db, before, batchSize);
      total += removed;
      if (removed < batchSize || this.#stopRequested) return total;
      // Let requests and deliveries run between batches (better-sqlite3 blocks while it works).
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  #tick(): void {
    if (!this.#started || this.#stopRequested) return;
    this.#running = this.pruneOnce()
      .then((removed) => {
        if (removed > 0) this.options.logger.info({ removed }, 'retention: pruned old deliveries and events');
        return removed;
      })
      .catch((error: unknown) => {
        this.options.logger.error({ err: error }, 'retention pass failed; trying again later');
        return 0;
      })
      .finally(() => {
        this.#running = null;
        if (!this.#stopRequested) this.#timer = setTimeout(() => this.#tick(), this.options.intervalMs ?? 10 * 60 * 1000);
      });
  }
}
