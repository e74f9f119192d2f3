/**
 * A delivery worker's heartbeat (docs/delivery.md, "Leases"). The worker has a row in
 * worker_heartbeats, renewed every `heartbeatMs`; on each heartbeat it also looks for workers
 * whose rows are older than `staleMs` and releases their leases, so that a killed worker's
 * deliveries go out again within seconds instead of after the whole lease. The lease stays as the
 * fallback for a worker that is alive but stuck with its heartbeat still beating.
 *
 * A worker declared dead may be alive after all: stalled (a GC pause, its event loop blocked, the
 * database slow or briefly gone) for longer than `staleMs`. It must then not send what it held,
 * which another worker may have sent already, and the next delivery of the ticket after it. Two
 * rules keep that out:
 * - a delivery is sent only while this worker's last renewal is younger than `staleMs` minus a
 *   guard (`maySend`), measured on the monotonic clock from when that renewal began: until then,
 *   no other worker can have found the row stale;
 * - leases are tagged with the epoch they were taken in; a worker that finds its row gone starts
 *   a new epoch, re-registers and sends nothing of the old one. Its attempts already on the wire
 *   are recorded, and move their deliveries only if the lease is still theirs (attempts.repository.ts).
 */
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { Db } from '../db/connection.js';
import { type Clock, toIso } from '../shared/time.js';
import { reclaimStaleWorkers, registerWorker, removeWorker, renewHeartbeat } from './worker-liveness.repository.js';

export interface LivenessTimings {
  /** How often the row is renewed and stale rows looked for. */
  heartbeatMs: number;
  /** A row older than this is a dead worker's: its leases are released. */
  staleMs: number;
}

export const DEFAULT_LIVENESS: LivenessTimings = { heartbeatMs: 1_000, staleMs: 5_000 };

/**
 * Part of `staleMs` kept between this worker's last renewal and the moment another worker may
 * find its row stale: a send must begin inside the rest, so that its request is out before the
 * leases can be released (two missed heartbeats at the defaults).
 */
const SEND_GUARD_FRACTION = 0.4;

export interface LivenessObserver {
  /** Dead workers were found and the leases they held released. */
  leasesReclaimed(workers: number, deliveries: number): void;
}

export interface WorkerLivenessOptions {
  db: Db;
  clock: Clock;
  logger: Logger;
  workerId: string;
  version: string;
  timings: LivenessTimings;
  observer: LivenessObserver | null;
  /** Called when the worker may claim again: its row was (re)written, or dead workers' deliveries became claimable. */
  onClaimable: () => void;
}

export class WorkerLiveness {
  readonly #options: WorkerLivenessOptions;
  #epoch = 0;
  /** performance.now() when the last renewal that committed began; never, until the first. */
  #confirmedAt = Number.NEGATIVE_INFINITY;
  /** The row was written and, as far as this worker knows, is still there. */
  #registered = false;
  #startedAt = '';
  #running = false;
  #timer: NodeJS.Timeout | null = null;
  #beat: Promise<void> | null = null;
  /** A failure is logged once, when the heartbeat starts failing, not every second. */
  #failing = false;

  constructor(options: WorkerLivenessOptions) {
    this.#options = options;
  }

  /** The epoch leases taken now belong to; it changes when this worker finds itself declared dead. */
  get epoch(): number {
    return this.#epoch;
  }

  /** Whether no other worker can have found this worker's row stale yet. */
  get current(): boolean {
    const { staleMs } = this.#options.timings;
    return performance.now() - this.#confirmedAt < staleMs * (1 - SEND_GUARD_FRACTION);
  }

  /** Whether a delivery leased in `epoch` may be sent now. */
  maySend(epoch: number | undefined): boolean {
    return epoch === this.#epoch && this.current;
  }

  /** Writes the row (the first heartbeat) and keeps renewing it; resolves after the first try. */
  start(): Promise<void> {
    if (this.#running) return this.#beat ?? Promise.resolve();
    this.#running = true;
    this.#startedAt = toIso(this.#options.clock.now());
    return this.#runBeat();
  }

  /** Stops the heartbeat and deletes the row: call once the leases have been given back. */
  async stop(): Promise<void> {
    this.#running = false;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#beat;
    // Started again, it claims after its first heartbeat, as at the first start.
    this.#confirmedAt = Number.NEGATIVE_INFINITY;
    if (!this.#registered) return;
    this.#registered = false;
    await removeWorker(this.#options.db, this.#options.workerId).catch((error: unknown) =>
      this.#options.logger.warn({ err: error }, 'could not delete this worker’s heartbeat row; other workers will find it stale and remove it'),
    );
  }

  #runBeat(): Promise<void> {
    const beat = this.#heartbeat()
      .catch((error: unknown) => this.#options.logger.error({ err: error }, 'worker heartbeat failed'))
      .finally(() => {
        this.#beat = null;
        if (!this.#running) return;
        this.#timer = setTimeout(() => void this.#runBeat(), this.#options.timings.heartbeatMs);
        this.#timer.unref();
      });
    this.#beat = beat;
    return beat;
  }

  async #heartbeat(): Promise<void> {
    const { db, clock, logger, workerId, version, timings, observer, onClaimable } = this.#options;
    const wasCurrent = this.current;
    const began = performance.now();
    const now = clock.now();
    const at = toIso(now);
    try {
      if (this.#registered && !(await renewHeartbeat(db, workerId, at))) {
        // Found stale while it was stalled: its leases were released, and another worker may be
        // sending what it held. Nothing leased before now is sent (a new epoch).
        this.#epoch += 1;
        this.#registered = false;
        logger.warn({ workerId, epoch: this.#epoch }, 'this worker was found stale by another (its heartbeat stalled) and its leases were released; it drops what it held and registers again');
      }
      if (!this.#registered) {
        await registerWorker(db, { worker_id: workerId, host: hostname(), pid: process.pid, version, started_at: this.#startedAt, heartbeat_at: at });
        this.#registered = true;
      }
    } catch (error) {
      if (!this.#failing) logger.warn({ err: error }, 'could not renew this worker’s heartbeat; it sends nothing once the heartbeat is too old, and retries every heartbeat');
      this.#failing = true;
      return;
    }
    this.#confirmedAt = began;
    if (this.#failing) logger.info('worker heartbeat renewed again');
    this.#failing = false;
    // It may send again: it claims at once rather than at its next poll.
    if (!wasCurrent) onClaimable();
    // Only once this worker's own row is fresh: it never finds itself stale.
    const reclaimed = await reclaimStaleWorkers(db, toIso(now - timings.staleMs));
    if (reclaimed.workers.length > 0) {
      logger.warn({ deadWorkers: reclaimed.workers, deliveries: reclaimed.deliveries }, 'released the delivery leases of workers whose heartbeat stopped');
      observer?.leasesReclaimed(reclaimed.workers.length, reclaimed.deliveries);
      if (reclaimed.deliveries > 0) onClaimable();
    }
  }
}
