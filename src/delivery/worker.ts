/**
 * The delivery worker: claims due deliveries in batches, sends them, records the attempts and
 * schedules the next. Concurrency is bounded globally and per target host, so a target that
 * hangs holds only its own slots. Claimed deliveries wait in a short queue per host (a lane), so
 * that a finished attempt is followed by the next at once, without a trip to the database; the
 * results go to the database in batches (AttemptRecorder). A new event wakes the worker at once;
 * otherwise it sleeps until the next delivery becomes due (or a poll interval passes, for rows
 * written by other processes).
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Capabilities } from '../db/capabilities.js';
import type { Db } from '../db/connection.js';
import type { OutboundHttp } from '../outbound/http-client.js';
import { type Clock, toIso } from '../shared/time.js';
import { TEST_EVENT_TYPE } from '../webhooks/webhook.js';
import type { SecretBox } from '../webhooks/secret-box.js';
import { findDeliveryTargets, type DeliveryTarget } from '../webhooks/webhooks.repository.js';
import { AttemptRecorder } from './attempt-recorder.js';
import { CircuitBreakers, type BreakerPolicy } from './circuit-breaker.js';
import {
  claimDueDeliveries,
  failDeliveries,
  nextDueAt,
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
  /** Opens the webhooks' signing secrets, sealed at rest. */
  secrets: SecretBox;
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

/** A claimed delivery with what is needed to send it. */
interface Claim {
  delivery: ClaimedDelivery;
  target: DeliveryTarget;
  host: string;
  /** When this worker took the lease: a claim left waiting too long goes back unsent. */
  claimedAt: number;
}

/** One target host: the claims waiting for one of its slots, and its attempts on the wire. */
interface Lane {
  waiting: Claim[];
  sending: number;
}

interface InFlight {
  done: Promise<void>;
  /** Aborted when shutdown gives up waiting: the attempt is then not recorded. */
  abandon: AbortController;
  /** Still waiting for the receiver (false once the result is being recorded). */
  onTheWire: boolean;
}

/** Rows taken per claim: enough to keep the lanes full, few enough to keep the claim short. */
const CLAIM_BATCH = 64;
/**
 * How long a claim may wait in its lane. The target (URL, secrets, active) was read when it was
 * claimed; past this, the claim goes back to the queue and is read afresh when claimed again. It
 * also keeps wait + attempt (15 s) inside the shortest lease (20 s).
 */
const MAX_LANE_WAIT_MS = 1_000;

export class DeliveryWorker {
  readonly id = `wrk_${randomBytes(6).toString('hex')}`;
  readonly #options: Required<Omit<DeliveryWorkerOptions, 'breakerPolicy'>>;
  readonly breakers: CircuitBreakers;
  readonly #recorder: AttemptRecorder;
  /** Attempts started and not yet recorded. */
  readonly #inFlight = new Map<string, InFlight>();
  /** Deliveries this worker holds a lease on: waiting in a lane, on the wire or being recorded. */
  readonly #held = new Set<string>();
  readonly #lanes = new Map<string, Lane>();
  /** Requests on the wire across all hosts, for the global limit. */
  #onTheWire = 0;
  /** Hosts of the webhooks this worker has claimed for, to skip those whose lane is full. */
  readonly #webhookHost = new Map<string, string>();
  /**
   * A claim that skipped saturated webhooks and found nothing. The same claim is not repeated
   * before the next poll or wake-up: each one probes every other webhook's due rows.
   */
  #fruitless: { skipped: string; until: number } | null = null;
  readonly #releasing = new Set<Promise<void>>();
  #timer: NodeJS.Timeout | null = null;
  /** The claim loop while it runs, so that stop() can wait for it. */
  #filling: Promise<void> | null = null;
  #pumpAgain = false;
  #running = false;
  #unsubscribe: (() => void) | null = null;

  constructor(options: DeliveryWorkerOptions) {
    this.#options = {
      globalConcurrency: 256,
      perHostConcurrency: 64,
      leaseMs: 60_000,
      pollIntervalMs: 1_000,
      random: Math.random,
      observer: NO_OBSERVER,
      ...options,
    };
    this.breakers = new CircuitBreakers(() => options.clock.now(), options.breakerPolicy);
    this.#recorder = new AttemptRecorder(options.db, options.capabilities, options.logger);
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#unsubscribe = this.#options.wakeup.subscribe(() => {
      // New rows may be for webhooks a fruitless claim did not find: claim again at once.
      this.#fruitless = null;
      this.#pump();
    });
    this.#pump();
  }

  /**
   * Stops claiming and gives back the claims not yet sent; waits up to `graceMs` for in-flight
   * attempts to be recorded, then gives the leases of the rest back so that they are retried at
   * once by the next worker.
   */
  async stop(graceMs = 10_000): Promise<void> {
    this.#running = false;
    this.#unsubscribe?.();
    if (this.#timer) clearTimeout(this.#timer);
    // A claim under way finishes first: what it took is then either dispatched or released.
    await this.#filling;
    this.#release([...this.#lanes.values()].flatMap((lane) => lane.waiting.splice(0).map((claim) => claim.delivery.id)));
    const pending = [...this.#inFlight.values()].map((f) => f.done);
    let graceTimer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled(pending),
      new Promise((resolve) => {
        graceTimer = setTimeout(resolve, graceMs);
      }),
    ]);
    clearTimeout(graceTimer);
    // Cut off, not failed: the attempt is not recorded and the next worker retries it at once.
    // Results already being recorded are left to finish.
    const unfinished = [...this.#inFlight].filter(([, flight]) => flight.onTheWire);
    for (const [, flight] of unfinished) flight.abandon.abort();
    this.#release(unfinished.map(([id]) => id));
    await Promise.allSettled([...this.#releasing]);
    await this.#recorder.settled();
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
    const { db, capabilities, clock, globalConcurrency, leaseMs, pollIntervalMs } = this.#options;
    for (;;) {
      this.#pumpAgain = false;
      if (!this.#running) return;
      // Up to one global round of claims waits in the lanes beside the one on the wire.
      const limit = Math.min(CLAIM_BATCH, 2 * globalConcurrency - this.#held.size);
      if (limit <= 0) return; // a finishing attempt pumps again
      const skipWebhookIds = this.#saturatedWebhooks();
      const skipped = skipWebhookIds.join(',');
      const now = clock.now();
      if (skipWebhookIds.length > 0 && this.#fruitless?.skipped === skipped && now < this.#fruitless.until) {
        this.#schedule(this.#fruitless.until - now);
        return;
      }
      const claimed = await claimDueDeliveries(db, capabilities, {
        workerId: this.id,
        now: toIso(now),
        leaseExpiresAt: toIso(now + leaseMs),
        limit,
        skipWebhookIds,
      });
      this.#fruitless = claimed.length === 0 && skipWebhookIds.length > 0 ? { skipped, until: now + pollIntervalMs } : null;
      await this.#admit(claimed, now);
      if (claimed.length < limit) break;
    }
    // Woken while claiming (an event committed): claim again rather than spend a query on when
    // to wake. On SQLite, where every query waits its turn on the one connection behind the
    // API's transactions, that query halved the claims per second under API load.
    if (this.#pumpAgain) return;
    await this.#sleepUntilNextDue();
  }

  /** Puts claimed deliveries in their hosts' lanes and starts what the lanes have room for. */
  async #admit(claimed: readonly ClaimedDelivery[], claimedAt: number): Promise<void> {
    if (claimed.length === 0) return;
    const now = toIso(claimedAt);
    let targets: Map<string, DeliveryTarget>;
    try {
      targets = await findDeliveryTargets(this.#options.db, this.#options.capabilities, this.#options.secrets, [...new Set(claimed.map((d) => d.webhookId))], now);
    } catch (error) {
      // Claimed but unreadable: back to the queue now rather than when the leases run out.
      this.#release(claimed.map((d) => d.id).filter((id) => !this.#held.has(id)));
      throw error;
    }
    // Read with the target, so that a changed target URL moves the webhook to its new host.
    for (const [webhookId, target] of targets) this.#webhookHost.set(webhookId, new URL(target.targetUrl).host);
    const inactive: string[] = [];
    const touched = new Set<string>();
    for (const delivery of claimed) {
      const previous = this.#inFlight.get(delivery.id);
      if (previous) {
        // Claimed again while this worker's previous attempt of it is still finishing (its
        // result committed and cleared the lease a moment ago, or the lease ran out first).
        // Handed back once that attempt is done: its record then decides what is left to do.
        void previous.done.then(() => this.#release([delivery.id]));
        continue;
      }
      // Still waiting in its lane: the new lease is this worker's again.
      if (this.#held.has(delivery.id)) continue;
      const target = targets.get(delivery.webhookId);
      if (!target) continue; // the webhook was deleted and its deliveries with it
      // Scheduled deliveries of an inactive webhook are not sent; a redelivery or a test event is.
      if (!target.active && delivery.status === 'pending' && delivery.eventType !== TEST_EVENT_TYPE) {
        inactive.push(delivery.id);
        continue;
      }
      const host = this.#webhookHost.get(delivery.webhookId)!;
      this.#lane(host).waiting.push({ delivery, target, host, claimedAt });
      this.#held.add(delivery.id);
      touched.add(host);
    }
    for (const host of touched) this.#dispatch(host);
    try {
      await failDeliveries(this.#options.db, inactive, now);
    } catch (error) {
      this.#release(inactive);
      throw error;
    }
  }

  #lane(host: string): Lane {
    let lane = this.#lanes.get(host);
    if (!lane) {
      lane = { waiting: [], sending: 0 };
      this.#lanes.set(host, lane);
    }
    return lane;
  }

  /**
   * Starts the waiting attempts of one host that its slots, the global limit and its breaker
   * allow, in claim order. A paused host's waiting claims go back to the queue, and so does a
   * claim that waited longer than MAX_LANE_WAIT_MS.
   */
  #dispatch(host: string): void {
    const { clock, globalConcurrency, perHostConcurrency } = this.#options;
    const lane = this.#lane(host);
    const giveBack: string[] = [];
    while (this.#running && lane.waiting.length > 0 && lane.sending < perHostConcurrency && this.#onTheWire < globalConcurrency) {
      const claim = lane.waiting[0]!;
      if (clock.now() - claim.claimedAt > MAX_LANE_WAIT_MS) {
        giveBack.push(lane.waiting.shift()!.delivery.id);
        continue;
      }
      if (!this.breakers.tryAcquire(host)) {
        giveBack.push(...lane.waiting.splice(0).map((c) => c.delivery.id));
        break;
      }
      this.#start(lane.waiting.shift()!, lane);
    }
    this.#release(giveBack);
  }

  #start(claim: Claim, lane: Lane): void {
    const id = claim.delivery.id;
    lane.sending += 1;
    this.#onTheWire += 1;
    const abandon = new AbortController();
    const flight: InFlight = { done: Promise.resolve(), abandon, onTheWire: true };
    const responded = () => {
      if (!flight.onTheWire) return;
      flight.onTheWire = false;
      // Only a freed global slot can start another host's waiting claims; walking every lane on
      // every answer would cost a loop over all hosts per delivery.
      const globalWasFull = this.#onTheWire >= this.#options.globalConcurrency;
      lane.sending -= 1;
      this.#onTheWire -= 1;
      // The slot is free as soon as the receiver answered: the next attempt need not wait for
      // this one to be recorded.
      this.#dispatch(claim.host);
      if (globalWasFull) this.#dispatchAll();
    };
    flight.done = this.#attempt(claim, abandon.signal, responded).finally(() => {
      responded();
      this.#inFlight.delete(id);
      this.#held.delete(id);
      this.#pump();
    });
    this.#inFlight.set(id, flight);
  }

  /** A global slot freed: other hosts' lanes may have been waiting for it. */
  #dispatchAll(): void {
    for (const [host, lane] of this.#lanes) if (lane.waiting.length > 0) this.#dispatch(host);
  }

  /** Gives leases back so that the rows can be claimed again at once (by this worker or another). */
  #release(ids: readonly string[]): void {
    if (ids.length === 0) return;
    for (const id of ids) this.#held.delete(id);
    const releasing: Promise<void> = releaseLeases(this.#options.db, this.id, ids)
      .catch((error: unknown) => this.#options.logger.warn({ err: error }, 'could not release delivery leases; they expire on their own'))
      .finally(() => {
        this.#releasing.delete(releasing);
        this.#pump();
      });
    this.#releasing.add(releasing);
  }

  async #sleepUntilNextDue(): Promise<void> {
    if (!this.#running) return;
    const { db, clock, pollIntervalMs } = this.#options;
    const next = await nextDueAt(db);
    const now = clock.now();
    // Due already: rows this worker left for now (their hosts are saturated, or it holds all it
    // may); a finishing attempt pumps again, and the poll is the fallback.
    const due = next === null ? Number.POSITIVE_INFINITY : Date.parse(next) <= now ? now + pollIntervalMs : Date.parse(next);
    // A paused target is looked at again when its pause ends.
    const pauses = [...this.#lanes.keys()].map((host) => this.breakers.pausedUntil(host) ?? Number.POSITIVE_INFINITY);
    this.#schedule(Math.max(0, Math.min(pollIntervalMs, Math.min(due, ...pauses) - now)));
  }

  /** The one pending timer; it keeps a worker-only process alive while it runs. */
  #schedule(delayMs: number): void {
    if (this.#timer) clearTimeout(this.#timer);
    if (!this.#running) return;
    this.#timer = setTimeout(() => this.#pump(), delayMs);
  }

  /** Webhooks whose host has a full lane or is paused by its breaker: not claimed for now. */
  #saturatedWebhooks(): string[] {
    const full = 2 * this.#options.perHostConcurrency;
    const blocked = (host: string) => {
      const lane = this.#lanes.get(host);
      return (lane !== undefined && lane.sending + lane.waiting.length >= full) || this.breakers.pausedUntil(host) !== null;
    };
    return [...this.#webhookHost].filter(([, host]) => blocked(host)).map(([id]) => id);
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

  /** Sends one attempt and records it; `responded` is called as soon as the receiver answered. */
  async #attempt(claim: Claim, abandoned: AbortSignal, responded: () => void): Promise<void> {
    const { http, clock, logger, userAgent, observer } = this.#options;
    const { delivery, target, host } = claim;
    const claimed = { status: delivery.status, dueAt: delivery.nextAttemptAt };
    const startedAt = clock.now();
    let breakerRecorded = false;
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
      responded();
      if (abandoned.aborted) return;
      const failed = response.error !== null;
      const retryAfter =
        response.statusCode !== null && RETRY_AFTER_STATUSES.has(response.statusCode)
          ? parseRetryAfter(response.headers?.['retry-after'], clock.now())
          : null;
      const outcome: AttemptOutcome = failed ? this.#afterFailure(delivery, retryAfter) : { kind: 'succeeded' };
      const disabled = await this.#recorder.record({
        webhookId: delivery.webhookId,
        verdict: !failed ? 'succeeded' : response.statusCode === 410 ? 'gone' : 'failed',
        record: {
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
          claimed,
        },
      });
      // After the record: the breaker counts only attempts the delivery log shows.
      this.breakers.record(host, failed, startedAt);
      breakerRecorded = true;
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
      logger.info(
        {
          deliveryId: delivery.id,
          webhookId: delivery.webhookId,
          event: delivery.eventType,
          statusCode: response.statusCode,
          error: response.error,
          durationMs: response.durationMs,
          outcome: outcome.kind,
          ...(disabled ? { webhookDisabled: disabled } : {}),
        },
        'delivery attempt',
      );
    } catch (error) {
      responded();
      if (abandoned.aborted) return;
      const log = logger.child({ deliveryId: delivery.id, webhookId: delivery.webhookId, event: delivery.eventType });
      // Not an expected network failure: a bug, or the database refusing the record. The
      // delivery still moves along its schedule, so that it can neither be lost nor retried
      // forever; if even that fails (the database is down), the lease runs out and another
      // claim picks it up.
      log.error({ err: error }, 'delivery attempt could not be completed');
      // Counted as a failure of the target, so that a half-open breaker's probe is never lost.
      if (!breakerRecorded) this.breakers.record(host, true, startedAt);
      await this.#recorder
        .recordWithoutAttempt({
          webhookId: delivery.webhookId,
          verdict: null,
          record: { workerId: this.id, deliveryId: delivery.id, attempt: null, outcome: this.#afterFailure(delivery, null), now: toIso(clock.now()), claimed },
        })
        .catch((recordError: unknown) => log.error({ err: recordError }, 'delivery could not be rescheduled; its lease will expire'));
    }
  }
}
