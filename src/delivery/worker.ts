/**
 * The delivery worker: claims due deliveries in batches, sends them, records the attempts and
 * schedules the next. Its parts, each in a file of its own:
 * - the loop (here): claims while there is room, puts each claim in its host's lane, starts
 *   what the lanes allow, and sleeps until the next delivery falls due, a wake-up or the poll
 *   interval; stop() hands back what was not sent;
 * - claiming (delivery-claimer.ts): the claim with saturated hosts' webhooks left out, and the
 *   targets of what it took;
 * - the lanes (host-lanes.ts): per target host and per webhook within it, claims waiting for a
 *   slot and attempts on the wire, bounded in all, per host, and per webhook to its fair share
 *   of its host, so a webhook that hangs holds only its own share;
 * - sending one attempt (attempt-sender.ts): headers, signature, POST, outcome;
 * - recording outcomes (attempt-recorder.ts): results group-committed with their webhooks'
 *   health; then the webhook's breaker counts the attempt and the observer and the log hear of
 *   it (attempt-report.ts);
 * - the heartbeat (worker-liveness.ts): this worker's liveness row, the release of dead workers'
 *   leases, and whether what it holds may still be sent.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Capabilities } from '../db/capabilities.js';
import type { Db } from '../db/connection.js';
import { TEST_EVENT_TYPE } from '../events/event-types.js';
import type { OutboundClient } from '../outbound/http-client.js';
import { type Clock, toIso } from '../shared/time.js';
import { TRACING_OFF, type Tracing } from '../tracing/tracing.js';
import { AttemptRecorder } from './attempt-recorder.js';
import { reportAttempt } from './attempt-report.js';
import { AttemptSender } from './attempt-sender.js';
import { CircuitBreakers, type BreakerPolicy } from './circuit-breaker.js';
import { deferDeliveries, failDeliveries, nextDueAt, releaseLeases, type ClaimedDelivery } from './deliveries.repository.js';
import { DeliveryClaimer } from './delivery-claimer.js';
import { DEFAULT_PER_HOST_CONCURRENCY, HostLanes, type Claim } from './host-lanes.js';
import { NO_OBSERVER, type DeliveryObserver } from './observer.js';
import { RatePacer, type PacedClaims } from './rate-pacer.js';
import type { DeactivationReason, DeliveryTarget, WebhookDirectory } from './webhook-directory.js';
import type { DeliveryWakeup } from './wakeup.js';
import { DEFAULT_LIVENESS, WorkerLiveness, type LivenessObserver, type LivenessTimings } from './worker-liveness.js';

export interface DeliveryWorkerOptions {
  db: Db;
  capabilities: Capabilities;
  http: OutboundClient;
  /** Targets and secrets of the claimed deliveries' webhooks, and what results do to them. */
  webhooks: WebhookDirectory;
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
  /** A span per attempt (docs/deployment.md, "Tracing"); off when absent. */
  tracing?: Tracing;
  /** The Helpdesk version, shown in this worker's liveness row. */
  version?: string;
  /** Test seam: the heartbeat's timings. */
  liveness?: LivenessTimings;
  livenessObserver?: LivenessObserver | null;
}

/** An attempt started and not yet recorded. */
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
 * How long a claim may wait in its lane before it goes back to the queue, to be read afresh.
 * It also keeps wait + attempt (15 s) inside the shortest lease (20 s).
 */
const MAX_LANE_WAIT_MS = 1_000;

export class DeliveryWorker {
  readonly id = `wrk_${randomBytes(6).toString('hex')}`;
  readonly #options: Required<Omit<DeliveryWorkerOptions, 'breakerPolicy'>>;
  readonly #liveness: WorkerLiveness;
  /** One per webhook: a webhook whose attempts mostly fail is paused, and no other with it. */
  readonly breakers: CircuitBreakers;
  readonly #claimer: DeliveryClaimer;
  readonly #lanes: HostLanes;
  readonly #sender: AttemptSender;
  readonly #recorder: AttemptRecorder;
  readonly #pacer: RatePacer;
  /** Claims of rate-limited webhooks waiting in this worker for their send slot, by delivery id. */
  readonly #slotWaits = new Map<string, NodeJS.Timeout>();
  /** Attempts started and not yet recorded, by delivery id. */
  readonly #inFlight = new Map<string, InFlight>();
  /**
   * Deliveries this worker holds a lease on (waiting in a lane, on the wire or being recorded),
   * with the liveness epoch the lease was taken in.
   */
  readonly #leased = new Map<string, number>();
  /**
   * Deliveries that this worker's records released and leased to it (the next of a ticket),
   * gathered for one admission: a record batch hands over many at once.
   */
  readonly #handedOver: { delivery: ClaimedDelivery; leasedAt: number; epoch: number }[] = [];
  /** Admissions of handed-over deliveries under way, so that stop() can wait for them. */
  readonly #handOverAdmissions = new Set<Promise<void>>();
  /** Lease releases under way, so that stop() can wait for them. */
  readonly #leaseReleases = new Set<Promise<void>>();
  /** The one pending wake-up of the claim loop. */
  #wakeTimer: NodeJS.Timeout | null = null;
  /** The claim loop while it runs, so that stop() can wait for it. */
  #claimLoop: Promise<void> | null = null;
  /** Woken while the claim loop ran: it claims once more before it sleeps. */
  #wokenWhileClaiming = false;
  #running = false;
  /**
   * When this worker last took a delivery (a claim or a hand-over), or started: its health turns
   * bad when this is older than a lease while a delivery has been due that long (worker-health.ts).
   */
  #lastClaimAt = 0;
  #unsubscribe: (() => void) | null = null;

  constructor(options: DeliveryWorkerOptions) {
    this.#options = {
      globalConcurrency: 256,
      perHostConcurrency: DEFAULT_PER_HOST_CONCURRENCY,
      leaseMs: 60_000,
      pollIntervalMs: 1_000,
      random: Math.random,
      observer: NO_OBSERVER,
      tracing: TRACING_OFF,
      version: '',
      liveness: DEFAULT_LIVENESS,
      livenessObserver: null,
      ...options,
    };
    const { db, capabilities, webhooks, logger, clock, http, userAgent, retrySchedule, random, globalConcurrency, perHostConcurrency, leaseMs, pollIntervalMs, tracing } = this.#options;
    this.breakers = new CircuitBreakers(() => clock.now(), options.breakerPolicy);
    this.#claimer = new DeliveryClaimer({ db, capabilities, webhooks, workerId: this.id, leaseMs, pollIntervalMs });
    this.#lanes = new HostLanes({ perHost: perHostConcurrency, global: globalConcurrency, maxWaitMs: MAX_LANE_WAIT_MS }, this.breakers, clock);
    this.#sender = new AttemptSender({ http, clock, userAgent, retrySchedule, random, tracing });
    this.#recorder = new AttemptRecorder(db, capabilities, webhooks, logger, leaseMs, { observer: this.#options.observer, wakeup: this.#options.wakeup });
    this.#pacer = new RatePacer(db, capabilities, () => clock.now());
    const { version, liveness, livenessObserver } = this.#options;
    this.#liveness = new WorkerLiveness({ db, clock, logger, workerId: this.id, version, timings: liveness, observer: livenessObserver, onClaimable: () => this.#runClaimLoop() });
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#lastClaimAt = this.#options.clock.now();
    this.#unsubscribe = this.#options.wakeup.subscribe(() => {
      this.#claimer.woken();
      this.#runClaimLoop();
    });
    // The first claim follows the first heartbeat (onClaimable): what it takes may then be sent.
    void this.#liveness.start();
  }

  /**
   * Stops claiming and gives back the claims not yet sent; waits up to `graceMs` for in-flight
   * attempts to be recorded, then gives the leases of the rest back so that they are retried at
   * once by the next worker.
   */
  async stop(graceMs = 10_000): Promise<void> {
    this.#running = false;
    this.#unsubscribe?.();
    if (this.#wakeTimer) clearTimeout(this.#wakeTimer);
    // A claim or hand-over under way finishes first: what it took is then in the lanes, to be released.
    await this.#claimLoop;
    await Promise.allSettled([...this.#handOverAdmissions]);
    this.#release(this.#lanes.drain());
    for (const timer of this.#slotWaits.values()) clearTimeout(timer);
    this.#release([...this.#slotWaits.keys()]);
    this.#slotWaits.clear();
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
    // Records still committing hand their next deliveries back (the worker is stopped), and
    // those releases must be written before the database closes.
    await this.#recorder.settled();
    this.#release(this.#handedOver.splice(0).map((h) => h.delivery.id));
    await Promise.allSettled([...this.#leaseReleases]);
    await this.#liveness.stop();
  }

  /** Whether this worker is running (started and not stopped). */
  get running(): boolean {
    return this.#running;
  }

  get lastClaimAt(): number {
    return this.#lastClaimAt;
  }

  get leaseMs(): number {
    return this.#options.leaseMs;
  }

  get inFlightCount(): number {
    return this.#inFlight.size;
  }

  /** Claims and dispatches until no room or nothing due is left; never runs twice at once. */
  #runClaimLoop(): void {
    if (!this.#running) return;
    if (this.#claimLoop) {
      this.#wokenWhileClaiming = true;
      return;
    }
    this.#claimLoop = this.#claimUntilFull()
      .catch((error: unknown) => {
        // The database may be briefly unavailable: try again later rather than stall.
        this.#options.logger.error({ err: error }, 'delivery claim failed; retrying after the poll interval');
        this.#wakeAfter(this.#options.pollIntervalMs);
      })
      .finally(() => {
        this.#claimLoop = null;
        if (this.#wokenWhileClaiming) {
          this.#wokenWhileClaiming = false;
          this.#runClaimLoop();
        }
      });
  }

  async #claimUntilFull(): Promise<void> {
    const { clock, globalConcurrency } = this.#options;
    for (;;) {
      this.#wokenWhileClaiming = false;
      if (!this.#running) return;
      // What it would claim could not be sent: looked at again after a poll interval (or
      // at once when a heartbeat commits again).
      if (!this.#liveness.current) return this.#wakeAfter(this.#options.pollIntervalMs);
      // Up to one global round of claims waits in the lanes beside the one on the wire.
      const limit = Math.min(CLAIM_BATCH, 2 * globalConcurrency - this.#leased.size);
      if (limit <= 0) return; // a finishing attempt claims again
      const now = clock.now();
      const epoch = this.#liveness.epoch;
      const claim = await this.#claimer.claim(limit, now, (webhookId, host) => this.#lanes.isSaturated(webhookId, host) || this.#pacer.isFull(webhookId, now));
      if (claim.kind === 'nothing-new') {
        this.#wakeAfter(claim.retryAt - now);
        return;
      }
      if (claim.deliveries.length > 0) this.#lastClaimAt = now;
      await this.#admit(claim.deliveries, now, epoch);
      if (claim.deliveries.length < limit) break;
    }
    // Woken while claiming (an event committed): claim again rather than spend a query on when
    // to wake. On SQLite every query waits its turn on the one connection behind the API's
    // transactions, so that query cost claims under API load.
    if (this.#wokenWhileClaiming) return;
    await this.#sleepUntilNextDue();
  }

  /** Puts claimed deliveries in their hosts' lanes and starts what the lanes have room for. */
  async #admit(claimed: readonly ClaimedDelivery[], claimedAt: number, epoch: number): Promise<void> {
    if (claimed.length === 0) return;
    const now = toIso(claimedAt);
    let targets: Map<string, DeliveryTarget>;
    try {
      targets = await this.#claimer.targets(claimed, now);
    } catch (error) {
      // Claimed but unreadable: back to the queue now rather than when the leases run out.
      this.#release(claimed.map((d) => d.id).filter((id) => !this.#leased.has(id)));
      throw error;
    }
    const inactive: string[] = [];
    const admitted: Claim[] = [];
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
      if (this.#leased.has(delivery.id)) continue;
      const target = targets.get(delivery.webhookId);
      if (!target) continue; // the webhook was deleted and its deliveries with it
      // Scheduled deliveries of an inactive webhook are not sent; a redelivery or a test event is.
      if (!target.active && delivery.status === 'pending' && delivery.eventType !== TEST_EVENT_TYPE) {
        inactive.push(delivery.id);
        continue;
      }
      admitted.push({ delivery, target, host: this.#claimer.hostOf(delivery.webhookId), claimedAt });
      this.#leased.set(delivery.id, epoch);
    }
    try {
      await this.#paceAndStart(admitted);
    } finally {
      try {
        await failDeliveries(this.#options.db, inactive, now);
      } finally {
        // One failed already (its webhook deactivated as its record handed it over) keeps a lease
        // that failDeliveries, which moves pending ones only, does not clear.
        this.#release(inactive);
      }
    }
  }

  /**
   * Starts admitted claims: at once, or, for a rate-limited webhook, at the send slot reserved
   * for it; the claims that got no slot go back to the queue, due at the webhook's next one.
   */
  async #paceAndStart(admitted: readonly Claim[]): Promise<void> {
    const { clock, observer } = this.#options;
    let pacing: PacedClaims;
    try {
      pacing = await this.#pacer.pace(admitted);
    } catch (error) {
      this.#release(admitted.map((claim) => claim.delivery.id));
      throw error;
    }
    const now = clock.now();
    const touched = new Set<string>();
    for (const { claim, at } of pacing.paced) {
      const startsAt = this.#pacer.startsAt(claim, at, now);
      if (startsAt === null) {
        this.#lanes.enqueue(claim);
        touched.add(claim.host);
      } else {
        this.#waitForSlot(claim, startsAt, now);
      }
    }
    for (const host of touched) this.#dispatch(host);
    for (const { webhookId, claims, until } of pacing.deferred) {
      observer.rateLimited(webhookId, claims.length);
      this.#giveBack(
        claims.map((claim) => claim.delivery.id),
        until,
      );
    }
  }

  /** Holds a claim until its send slot, then puts it in its lane; its lane wait counts from the slot. */
  #waitForSlot(claim: Claim, at: number, now: number): void {
    const id = claim.delivery.id;
    const timer = setTimeout(() => {
      this.#slotWaits.delete(id);
      if (!this.#running) return this.#release([id]);
      const firedAt = this.#options.clock.now();
      const later = this.#pacer.startsAt(claim, at, firedAt);
      if (later !== null) return this.#waitForSlot(claim, later, firedAt);
      this.#lanes.enqueue({ ...claim, claimedAt: firedAt });
      this.#dispatch(claim.host);
    }, at - now);
    this.#slotWaits.set(id, timer);
  }

  /** Takes a delivery its record released and leased to this worker; admitted with the others of its batch. */
  #handOver(delivery: ClaimedDelivery, leasedAt: number, epoch: number): void {
    if (!this.#running) return this.#release([delivery.id]);
    this.#handedOver.push({ delivery, leasedAt, epoch });
    if (this.#handedOver.length === 1) setImmediate(() => this.#admitHandedOver());
  }

  #admitHandedOver(): void {
    const all = this.#handedOver.splice(0);
    // Leased before this worker was found stale: released since, maybe sent by another.
    const epoch = this.#liveness.epoch;
    const handedOver = all.filter((h) => h.epoch === epoch);
    this.#release(all.filter((h) => h.epoch !== epoch).map((h) => h.delivery.id));
    if (handedOver.length === 0) return;
    if (!this.#running) return this.#release(handedOver.map((h) => h.delivery.id));
    // Their lane wait counts from when their leases began, as a claim's does.
    const leasedAt = Math.min(...handedOver.map((h) => h.leasedAt));
    this.#lastClaimAt = Math.max(this.#lastClaimAt, leasedAt);
    const admission: Promise<void> = this.#admit(
      handedOver.map((h) => h.delivery),
      leasedAt,
      epoch,
    )
      .catch((error: unknown) => this.#options.logger.error({ err: error }, 'deliveries handed over by their records could not be admitted; given back to the queue'))
      .finally(() => this.#handOverAdmissions.delete(admission));
    this.#handOverAdmissions.add(admission);
  }

  /** Starts what one host's lane may start now, and hands back what it may not. */
  #dispatch(host: string): void {
    if (!this.#running) return;
    const { start, giveBack } = this.#lanes.take(host);
    for (const claim of start) this.#start(claim);
    this.#release(giveBack);
  }

  #start(claim: Claim): void {
    const id = claim.delivery.id;
    const abandon = new AbortController();
    const flight: InFlight = { done: Promise.resolve(), abandon, onTheWire: true };
    const answered = () => {
      if (!flight.onTheWire) return;
      flight.onTheWire = false;
      const globalWasFull = this.#lanes.answered(claim.host, claim.delivery.webhookId);
      // The slot is free as soon as the receiver answered: the next attempt need not wait for
      // this one to be recorded.
      this.#dispatch(claim.host);
      if (globalWasFull) for (const waiting of this.#lanes.waitingHosts()) this.#dispatch(waiting);
    };
    flight.done = this.#deliver(claim, abandon.signal, answered).finally(() => {
      answered();
      this.#inFlight.delete(id);
      this.#leased.delete(id);
      this.#runClaimLoop();
    });
    this.#inFlight.set(id, flight);
  }

  /** Gives leases back so that the rows can be claimed again at once (by this worker or another). */
  #release(ids: readonly string[]): void {
    this.#giveBack(ids, null);
  }

  /**
   * Gives leases back: due at once, or, for claims of a rate-limited webhook that got no send
   * slot, due at `until` (without an attempt). The write is awaited by stop().
   */
  #giveBack(ids: readonly string[], until: number | null): void {
    if (ids.length === 0) return;
    for (const id of ids) this.#leased.delete(id);
    const { db, logger } = this.#options;
    const write = until === null ? releaseLeases(db, this.id, ids) : deferDeliveries(db, this.id, ids, toIso(until));
    const givingBack: Promise<void> = write
      .catch((error: unknown) => logger.warn({ err: error }, 'could not give delivery leases back; they expire on their own'))
      .finally(() => {
        this.#leaseReleases.delete(givingBack);
        // Released rows may be claimed again at once; deferred ones only when due.
        if (until === null) this.#runClaimLoop();
      });
    this.#leaseReleases.add(givingBack);
  }

  async #sleepUntilNextDue(): Promise<void> {
    if (!this.#running) return;
    const { db, clock, pollIntervalMs } = this.#options;
    const next = await nextDueAt(db);
    const now = clock.now();
    // Due already: rows this worker left for now (their hosts are saturated, or it holds all it
    // may); a finishing attempt claims again, and the poll is the fallback.
    const due = next === null ? Number.POSITIVE_INFINITY : Date.parse(next) <= now ? now + pollIntervalMs : Date.parse(next);
    // A paused target is looked at again when its pause ends.
    this.#wakeAfter(Math.max(0, Math.min(pollIntervalMs, Math.min(due, this.#lanes.nextPauseEnd()) - now)));
  }

  /** The one pending timer; it keeps a worker-only process alive while it runs. */
  #wakeAfter(delayMs: number): void {
    if (this.#wakeTimer) clearTimeout(this.#wakeTimer);
    if (!this.#running) return;
    this.#wakeTimer = setTimeout(() => this.#runClaimLoop(), delayMs);
  }

  /**
   * Sends one attempt, records it, then tells the breaker, the observer and the log;
   * `answered` is called as soon as the receiver answered.
   */
  async #deliver(claim: Claim, abandoned: AbortSignal, answered: () => void): Promise<void> {
    const { clock, logger, observer } = this.#options;
    const { delivery, host } = claim;
    if (!this.#liveness.maySend(this.#leased.get(delivery.id))) {
      // Its heartbeat is too old, or this worker was found stale since the lease was taken:
      // another worker may hold the delivery now. Given back rather than sent (a no-op if the
      // lease is no longer this worker's); nothing was attempted.
      this.#release([delivery.id]);
      return;
    }
    const claimedState = { status: delivery.status, dueAt: delivery.nextAttemptAt };
    const startedAt = clock.now();
    let breakerRecorded = false;
    /** This attempt's 410 stopped its webhook's lane until the deactivation is recorded. */
    let stopped = false;
    const resume = (disabled: DeactivationReason | null) => {
      if (!stopped) return;
      stopped = false;
      this.#release(this.#lanes.resume(delivery.webhookId, disabled !== null));
      this.#dispatch(host);
    };
    try {
      const sent = await this.#sender.send(claim, startedAt, abandoned);
      // A 410 Gone: nothing more starts for this webhook while its deactivation is recorded (a
      // freed slot would otherwise start the next claim before the commit).
      if (sent.verdict === 'gone') {
        this.#lanes.stop(delivery.webhookId);
        stopped = true;
      }
      answered();
      if (abandoned.aborted) {
        resume(null);
        return;
      }
      const { response, outcome, verdict } = sent;
      // Also when the lease of a delivery this record hands over begins.
      const recordedAt = clock.now();
      const epoch = this.#liveness.epoch;
      const { deactivated: disabled, next } = await this.#recorder.record({
        webhookId: delivery.webhookId,
        eventType: delivery.eventType,
        verdict,
        record: {
          workerId: this.id,
          deliveryId: delivery.id,
          attempt: {
            attempted_at: toIso(startedAt),
            status_code: response.statusCode,
            duration_ms: response.durationMs,
            error: response.error,
            error_message: response.errorMessage,
            response_headers: response.headers ? JSON.stringify(response.headers) : null,
            response_body: response.body,
          },
          outcome,
          now: toIso(recordedAt),
          claimed: claimedState,
        },
      });
      resume(disabled);
      if (next) this.#handOver(next, recordedAt, epoch);
      // After the record: the breaker counts only attempts the delivery log shows.
      this.breakers.record(delivery.webhookId, sent.response.error !== null, startedAt, delivery.expedited);
      breakerRecorded = true;
      reportAttempt({ observer, logger }, claim, sent, clock.now(), disabled);
    } catch (error) {
      answered();
      resume(null);
      if (abandoned.aborted) return;
      const log = logger.child({ deliveryId: delivery.id, webhookId: delivery.webhookId, event: delivery.eventType });
      // Not an expected network failure: a bug, or the database refusing the record. The
      // delivery still moves along its schedule, so that it can neither be lost nor retried
      // forever; if even that fails (the database is down), the lease runs out and another
      // claim picks it up.
      log.error({ err: error }, 'delivery attempt could not be completed');
      // Counted as a failure of the target, so that a half-open breaker's probe is never lost.
      if (!breakerRecorded) this.breakers.record(delivery.webhookId, true, startedAt);
      await this.#recorder
        .recordWithoutAttempt({
          webhookId: delivery.webhookId,
          eventType: delivery.eventType,
          verdict: null,
          record: {
            workerId: this.id,
            deliveryId: delivery.id,
            attempt: null,
            outcome: this.#sender.afterFailure(delivery, null),
            now: toIso(clock.now()),
            claimed: claimedState,
          },
        })
        .catch((recordError: unknown) => log.error({ err: recordError }, 'delivery could not be rescheduled; its lease will expire'));
    }
  }
}
