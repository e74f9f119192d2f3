/**
 * The delivery worker: claims due deliveries, sends them, records each attempt and schedules
 * the next. Concurrency is bounded globally and per target host, so a target that hangs holds
 * only its own slots. A new event wakes the worker at once; otherwise it sleeps until the next
 * delivery becomes due (or a poll interval passes, for rows written by other processes).
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Capabilities } from '../db/capabilities.js';
import type { Db } from '../db/connection.js';
import type { OutboundHttp } from '../outbound/http-client.js';
import { type Clock, toIso } from '../shared/time.js';
import { applyAttemptToWebhook } from '../webhooks/webhook-health.js';
import { TEST_EVENT_TYPE } from '../webhooks/webhook.js';
import { findDeliveryTarget, type DeliveryTarget } from '../webhooks/webhooks.repository.js';
import { CircuitBreakers, type BreakerPolicy } from './circuit-breaker.js';
import {
  claimDueDeliveries,
  failDelivery,
  nextClaimableAt,
  recordAttempt,
  releaseLeases,
  type AttemptOutcome,
  type ClaimedDelivery,
} from './deliveries.repository.js';
import { NO_OBSERVER, type DeliveryObserver } from './observer.js';
import { nextRetryDelayMs, parseRetryAfter, RETRY_AFTER_STATUSES } from './retry-policy.js';
import { signatureHeader } from './signing.js';
import type { DeliveryWakeup } from './wakeup.js';

export interface DeliveryWorkerOptions {
  db: Db;
  capabilities: Capabilities;
  http: OutboundHttp;
  wakeup: DeliveryWakeup;
  logger: Logger;
  clock: Clock;
  retrySchedule: readonly number[];
  userAgent: string;
  globalConcurrency?: number;
  perHostConcurrency?: number;
  /** How long a claim holds; longer than the 15 s request timeout with room to record it. */
  leaseMs?: number;
  /** The longest sleep, so that rows queued by another process are seen. */
  pollIntervalMs?: number;
  random?: () => number;
  observer?: DeliveryObserver;
  breakerPolicy?: BreakerPolicy;
}

interface InFlight {
  host: string;
  done: Promise<void>;
  /** Aborted when shutdown gives up waiting: the attempt is then not recorded. */
  abandon: AbortController;
}

export class DeliveryWorker {
  readonly id = `wrk_${randomBytes(6).toString('hex')}`;
  readonly #options: Required<Omit<DeliveryWorkerOptions, 'breakerPolicy'>>;
  readonly breakers: CircuitBreakers;
  readonly #inFlight = new Map<string, InFlight>();
  readonly #hostLoad = new Map<string, number>();
  /** Hosts of the webhooks this worker has sent to, to skip those whose host is saturated. */
  readonly #webhookHost = new Map<string, string>();
  #timer: NodeJS.Timeout | null = null;
  /** The claim loop while it runs, so that stop() can wait for it. */
  #filling: Promise<void> | null = null;
  #pumpAgain = false;
  #running = false;
  #unsubscribe: (() => void) | null = null;

  constructor(options: DeliveryWorkerOptions) {
    this.#options = {
      globalConcurrency: 128,
      perHostConcurrency: 16,
      leaseMs: 60_000,
      pollIntervalMs: 1_000,
      random: Math.random,
      observer: NO_OBSERVER,
      ...options,
    };
    this.breakers = new CircuitBreakers(() => options.clock.now(), options.breakerPolicy);
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#unsubscribe = this.#options.wakeup.subscribe(() => this.#pump());
    this.#pump();
  }

  /**
   * Stops claiming, waits up to `graceMs` for in-flight attempts to be recorded, then gives the
   * leases of the rest back so that they are retried at once by the next worker.
   */
  async stop(graceMs = 10_000): Promise<void> {
    this.#running = false;
    this.#unsubscribe?.();
    if (this.#timer) clearTimeout(this.#timer);
    // A claim under way finishes first: what it took is then either dispatched or released.
    await this.#filling;
    const pending = [...this.#inFlight.values()].map((f) => f.done);
    let graceTimer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled(pending),
      new Promise((resolve) => {
        graceTimer = setTimeout(resolve, graceMs);
      }),
    ]);
    clearTimeout(graceTimer);
    const unfinished = [...this.#inFlight.keys()];
    if (unfinished.length > 0) {
      // Cut off, not failed: the attempt is not recorded and the next worker retries it at once.
      for (const flight of this.#inFlight.values()) flight.abandon.abort();
      await releaseLeases(this.#options.db, this.id, unfinished).catch((error: unknown) =>
        this.#options.logger.warn({ err: error }, 'could not release delivery leases; they expire on their own'),
      );
    }
  }

  get inFlightCount(): number {
    return this.#inFlight.size;
  }

  /** Claims and dispatches until no capacity or nothing due is left; never runs twice at once. */
  #pump(): void {
    if (!this.#running) return;
    if (this.#filling) {
      this.#pumpAgain = true;
      return;
    }
    this.#filling = this.#fill()
      .catch((error: unknown) => {
        // The database may be briefly unavailable: try again later rather than stall.
        this.#options.logger.error({ err: error }, 'delivery claim failed; retrying after the poll interval');
        this.#schedule(this.#options.pollIntervalMs);
      })
      .finally(() => {
        this.#filling = null;
        if (this.#pumpAgain) {
          this.#pumpAgain = false;
          this.#pump();
        }
      });
  }

  async #fill(): Promise<void> {
    const { db, capabilities, clock, globalConcurrency, leaseMs } = this.#options;
    for (;;) {
      this.#pumpAgain = false;
      if (!this.#running) return;
      const room = globalConcurrency - this.#inFlight.size;
      if (room <= 0) return; // a finishing attempt pumps again
      const now = clock.now();
      const claimed = await claimDueDeliveries(db, capabilities, {
        workerId: this.id,
        now: toIso(now),
        leaseExpiresAt: toIso(now + leaseMs),
        // Claiming more than one host can take only to hand most of it back churns the queue
        // (measured: half the SQLite throughput); a finer per-host claim is issue 4's work.
        limit: Math.min(room, 64, this.#options.perHostConcurrency),
        skipWebhookIds: this.#saturatedWebhooks(),
      });
      const refused: string[] = [];
      const fullHosts = new Set<string>();
      let dispatched = 0;
      try {
        for (const delivery of claimed) {
          if (!(await this.#dispatch(delivery, fullHosts))) refused.push(delivery.id);
          dispatched += 1;
        }
      } finally {
        // Claimed for a host that filled up within this batch, or not reached because the
        // database failed: back to the queue at once rather than after the lease.
        const undispatched = claimed.slice(dispatched).map((d) => d.id);
        await releaseLeases(db, this.id, [...refused, ...undispatched]);
      }
      if (claimed.length === 0 || refused.length > 0) break;
    }
    await this.#sleepUntilNextDue();
  }

  async #sleepUntilNextDue(): Promise<void> {
    if (!this.#running) return;
    const { db, clock, pollIntervalMs } = this.#options;
    const next = await nextClaimableAt(db, this.#saturatedWebhooks());
    const due = next === null ? Number.POSITIVE_INFINITY : Date.parse(next);
    // A paused target is looked at again when its pause ends.
    const pauses = [...new Set(this.#webhookHost.values())].map((host) => this.breakers.pausedUntil(host) ?? Number.POSITIVE_INFINITY);
    const wake = Math.min(due, ...pauses);
    this.#schedule(Math.max(0, Math.min(pollIntervalMs, wake - clock.now())));
  }

  /** The one pending timer; it keeps a worker-only process alive while it runs. */
  #schedule(delayMs: number): void {
    if (this.#timer) clearTimeout(this.#timer);
    if (!this.#running) return;
    this.#timer = setTimeout(() => this.#pump(), delayMs);
  }

  /** Webhooks whose host has no free slot or is paused by its breaker: not claimed for now. */
  #saturatedWebhooks(): string[] {
    const limit = this.#options.perHostConcurrency;
    const blocked = (host: string) => (this.#hostLoad.get(host) ?? 0) >= limit || this.breakers.pausedUntil(host) !== null;
    return [...this.#webhookHost].filter(([, host]) => blocked(host)).map(([id]) => id);
  }

  /**
   * Starts one attempt; false if it must go back to the queue (shutting down, the target host
   * has no free slot, or its breaker holds it). Once a host is refused in a batch, its later
   * deliveries are refused too, even if a slot frees meanwhile, so that none overtakes the one
   * sent back to the queue.
   */
  async #dispatch(delivery: ClaimedDelivery, fullHosts: Set<string>): Promise<boolean> {
    if (!this.#running) return false;
    // Claimed again while this worker's previous attempt is still finishing (it has recorded
    // its result and is updating the webhook's health): hand it back rather than hold a lease
    // that nothing would clear until it expired.
    if (this.#inFlight.has(delivery.id)) return false;
    const now = toIso(this.#options.clock.now());
    const target = await findDeliveryTarget(this.#options.db, delivery.webhookId, now);
    if (!target) return true; // the webhook was deleted and its deliveries with it
    // Scheduled deliveries of an inactive webhook are not sent; a redelivery or a test event is.
    if (!target.active && delivery.status === 'pending' && delivery.eventType !== TEST_EVENT_TYPE) {
      await failDelivery(this.#options.db, delivery.id, now);
      return true;
    }
    const host = new URL(target.targetUrl).host;
    this.#webhookHost.set(delivery.webhookId, host);
    const load = this.#hostLoad.get(host) ?? 0;
    if (fullHosts.has(host) || load >= this.#options.perHostConcurrency || !this.breakers.tryAcquire(host)) {
      fullHosts.add(host);
      return false;
    }
    this.#hostLoad.set(host, load + 1);
    const abandon = new AbortController();
    const done = this.#attempt(delivery, target, host, abandon.signal).finally(() => {
      this.#inFlight.delete(delivery.id);
      this.#hostLoad.set(host, (this.#hostLoad.get(host) ?? 1) - 1);
      this.#pump();
    });
    this.#inFlight.set(delivery.id, { host, done, abandon });
    return true;
  }

  /**
   * The outcome of a failed attempt: the next retry, or failed once the schedule is spent. A
   * redelivery of a finished delivery is outside any schedule: it fails without a retry.
   */
  #afterFailure(delivery: ClaimedDelivery, retryAfterSeconds: number | null): AttemptOutcome {
    const { clock, retrySchedule, random } = this.#options;
    if (delivery.status !== 'pending') return { kind: 'failed' };
    const delayMs = nextRetryDelayMs(retrySchedule, delivery.scheduleAttempts + 1, random, retryAfterSeconds);
    return delayMs === null ? { kind: 'failed' } : { kind: 'retry', nextAttemptAt: toIso(clock.now() + delayMs) };
  }

  async #attempt(delivery: ClaimedDelivery, target: DeliveryTarget, host: string, abandoned: AbortSignal): Promise<void> {
    const { http, clock, logger, userAgent, db, capabilities, observer } = this.#options;
    const log = logger.child({ deliveryId: delivery.id, webhookId: delivery.webhookId, event: delivery.eventType });
    const startedAt = clock.now();
    try {
      const timestamp = Math.floor(startedAt / 1000);
      const response = await http.post(
        target.targetUrl,
        {
          'content-type': 'application/json',
          'user-agent': userAgent,
          'webhook-id': delivery.id,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': signatureHeader(target.signingSecrets, delivery.id, timestamp, delivery.payload),
          'x-helpdesk-event': delivery.eventType,
          'x-helpdesk-webhook-id': delivery.webhookId,
        },
        delivery.payload,
        abandoned,
      );
      if (abandoned.aborted) return;
      const retryAfter =
        response.statusCode !== null && RETRY_AFTER_STATUSES.has(response.statusCode)
          ? parseRetryAfter(response.headers?.['retry-after'], clock.now())
          : null;
      const outcome: AttemptOutcome = response.error === null ? { kind: 'succeeded' } : this.#afterFailure(delivery, retryAfter);
      await recordAttempt(db, capabilities, {
        workerId: this.id,
        deliveryId: delivery.id,
        attempt: {
          attempted_at: toIso(startedAt),
          status_code: response.statusCode,
          duration_ms: response.durationMs,
          error: response.error,
          response_headers: response.headers ? JSON.stringify(response.headers) : null,
          response_body: response.body,
        },
        outcome,
        now: toIso(clock.now()),
        claimed: { status: delivery.status, dueAt: delivery.nextAttemptAt },
      });
      const failed = response.error !== null;
      this.breakers.record(host, failed, startedAt);
      const verdict = !failed ? 'succeeded' : response.statusCode === 410 ? 'gone' : 'failed';
      const disabled = await applyAttemptToWebhook(db, delivery.webhookId, verdict, toIso(clock.now()));
      const finishedAt = clock.now();
      observer.attempted({
        eventType: delivery.eventType,
        target: host,
        outcome: outcome.kind,
        error: response.error,
        durationMs: response.durationMs,
        // Its first success, however many attempts it took: the latency a receiver sees.
        eventToDeliveryMs: !failed && delivery.status !== 'succeeded' ? finishedAt - Date.parse(delivery.createdAt) : null,
        finalTransition: failed ? delivery.status === 'pending' && outcome.kind === 'failed' : delivery.status !== 'succeeded',
      });
      log.info(
        { statusCode: response.statusCode, error: response.error, durationMs: response.durationMs, outcome: outcome.kind, ...(disabled ? { webhookDisabled: disabled } : {}) },
        'delivery attempt',
      );
    } catch (error) {
      if (abandoned.aborted) return;
      // Not an expected network failure: a bug, or the database refusing the record. The
      // delivery still moves along its schedule, so that it can neither be lost nor retried
      // forever; if even that fails (the database is down), the lease runs out and another
      // claim picks it up.
      log.error({ err: error }, 'delivery attempt could not be completed');
      // Counted as a failure of the target, so that a half-open breaker's probe is never lost.
      this.breakers.record(host, true, startedAt);
      await recordAttempt(db, capabilities, {
        workerId: this.id,
        deliveryId: delivery.id,
        attempt: null,
        outcome: this.#afterFailure(delivery, null),
        now: toIso(clock.now()),
        claimed: { status: delivery.status, dueAt: delivery.nextAttemptAt },
      }).catch(
        (recordError: unknown) => log.error({ err: recordError }, 'delivery could not be rescheduled; its lease will expire'),
      );
    }
  }
}
