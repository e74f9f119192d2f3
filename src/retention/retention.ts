/**
 * Keeps the delivery log to its retention period (HELPDESK_RETENTION_DAYS, 30 by default):
 * finished deliveries, their attempts and payloads are deleted in the background, in small
 * batches, once at start and then every HELPDESK_RETENTION_INTERVAL_SECONDS. Pending deliveries
 * are never pruned. Idempotency keys past their 24 hours go in the same pass.
 *
 * Every process runs a pruner, but one prunes at a time: the holder of the retention lease
 * (job-leases.repository.ts). At each interval a process takes the lease or renews its own; the
 * others find it held and try again an interval later. A pass renews the lease before every
 * batch and stops when it has lost it. The lease lasts two intervals, so that its holder keeps
 * it from one pass to the next, and a holder that died is replaced within three.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Db } from '../db/connection.js';
import { type Clock, toIso } from '../shared/time.js';
import { pruneExpiredKeys } from '../idempotency/idempotency.repository.js';
import { pruneFinished } from '../delivery/deliveries.repository.js';
import { releaseJobLease, takeJobLease } from './job-leases.repository.js';

/** The job_leases row of retention. */
export const RETENTION_LEASE = 'retention';

/** What a pruner tells the metrics (src/metrics/metrics.ts). */
export interface RetentionObserver {
  /** After each try to take or renew the lease: whether this process holds it now. */
  retentionLeaseHeld(held: boolean): void;
  /** Rows a pass removed. */
  retentionPruned(rows: number): void;
}

export interface RetentionOptions {
  db: Db;
  clock: Clock;
  logger: Logger;
  retentionDays: number;
  /** Default 10 minutes (HELPDESK_RETENTION_INTERVAL_SECONDS). */
  intervalMs?: number;
  batchSize?: number;
  observer?: RetentionObserver;
}

export class RetentionPruner {
  /** Who this process is in the lease: the host and pid an operator can look for, and a random part. */
  readonly holder = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<number> | null = null;
  #started = false;
  #stopRequested = false;

  constructor(private readonly options: RetentionOptions) {}

  get #intervalMs(): number {
    return this.options.intervalMs ?? 10 * 60 * 1000;
  }

  get leaseMs(): number {
    return 2 * this.#intervalMs;
  }

  start(): void {
    this.#started = true;
    this.#tick();
  }

  /** Waits for a pass under way, then gives the lease back so that another process prunes next. */
  async stop(): Promise<void> {
    this.#stopRequested = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#running;
    if (!this.#started) return;
    await releaseJobLease(this.options.db, RETENTION_LEASE, this.holder, toIso(this.options.clock.now())).catch((error: unknown) =>
      this.options.logger.warn({ err: error }, 'could not give the retention lease back; it runs out on its own'),
    );
  }

  /** Takes or renews the retention lease; its expiry while this process holds it, null when another does. */
  async #holdLease(): Promise<number | null> {
    const now = this.options.clock.now();
    const until = now + this.leaseMs;
    const held = await takeJobLease(this.options.db, RETENTION_LEASE, this.holder, toIso(now), toIso(until));
    this.options.observer?.retentionLeaseHeld(held);
    return held ? until : null;
  }

  /**
   * One full pass if this process holds the lease (null when another does): batches until less
   * than a batch is left, the lease renewed before each. Returns how many rows went.
   */
  async pruneOnce(): Promise<number | null> {
    const { db, clock, logger, retentionDays, batchSize = 1000 } = this.options;
    const takenAt = clock.now();
    let leaseUntil = await this.#holdLease();
    if (leaseUntil === null) return null;
    const startedAt = clock.now();
    const before = toIso(startedAt - retentionDays * 24 * 60 * 60 * 1000);
    let total = await pruneExpiredKeys(db, toIso(startedAt));
    for (;;) {
      const removed = await pruneFinished(db, before, batchSize);
      total += removed;
      if (removed < batchSize || this.#stopRequested) break;
      // Let requests and deliveries run between batches (better-sqlite3 blocks while it works).
      await new Promise((resolve) => setImmediate(resolve));
      const renewed = await this.#holdLease();
      if (renewed === null) break;
      leaseUntil = renewed;
    }
    this.options.observer?.retentionPruned(total);
    // The record of who pruned when, under which lease, that shows that passes never overlap and
    // that a holder starts only once the previous one's lease ran out (test/e2e/retention-lease.test.ts).
    logger.debug(
      { holder: this.holder, leaseTakenAt: toIso(takenAt), leaseUntil: toIso(leaseUntil), startedAt: toIso(startedAt), finishedAt: toIso(clock.now()), removed: total },
      'retention pass',
    );
    return total;
  }

  #tick(): void {
    if (!this.#started || this.#stopRequested) return;
    this.#running = this.pruneOnce()
      .then((removed) => {
        if (removed) this.options.logger.info({ removed }, 'retention: pruned old deliveries and events');
        return removed ?? 0;
      })
      .catch((error: unknown) => {
        this.options.logger.error({ err: error }, 'retention pass failed; trying again later');
        return 0;
      })
      .finally(() => {
        this.#running = null;
        if (!this.#stopRequested) this.#timer = setTimeout(() => this.#tick(), this.#intervalMs);
      });
  }
}
