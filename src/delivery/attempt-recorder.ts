/**
 * Group commit for attempt results. Attempts finish one by one, many per millisecond under load;
 * writing each in its own transaction made the database the bottleneck (on SQLite every one of
 * them queues for the single writer). The recorder gathers the results that finish while a write
 * is under way and writes them all in the next transaction: the attempts, the deliveries' new
 * states and the webhooks' health, together. An attempt counts as done only once its transaction
 * committed, so a crash loses no acknowledged result: at worst a sent attempt is not recorded, its
 * lease runs out and it is sent again (at least once).
 *
 * The batching is GroupCommit's. On SQLite a write runs synchronously, so nothing finishes
 * "while it is under way": the first result of a batch waits GATHER_MS for the ones right
 * behind it instead; without that wait nearly every attempt took a transaction of its own
 * (docs/benchmarks.md).
 *
 * The operational events a batch makes (a webhook deactivated, a ticket event's delivery failed
 * for good: operational-events.ts) go through the outbox in the same transaction, so that such
 * an event exists if and only if what it reports committed.
 */
import type { Logger } from 'pino';
import type { Capabilities } from '../db/capabilities.js';
import type { Db } from '../db/connection.js';
import { GroupCommit } from '../db/group-commit.js';
import { toIso } from '../shared/time.js';
import { recordAttempts, type AttemptRecord } from './attempts.repository.js';
import type { ClaimedDelivery } from './deliveries.repository.js';
import { NO_OBSERVER, type DeliveryObserver } from './observer.js';
import { operationalEvents, type OperationalEvent } from './operational-events.js';
import { Outbox } from './outbox.js';
import type { DeliveryWakeup } from './wakeup.js';
import type { AttemptVerdict, DeactivationReason, WebhookDirectory } from './webhook-directory.js';

export interface RecordedResult {
  record: AttemptRecord;
  webhookId: string;
  /** The event type of the delivery. */
  eventType: string;
  /** What the attempt says about the webhook's health; null when no attempt was made. */
  verdict: AttemptVerdict | null;
}

/** What a committed record tells the worker. */
export interface RecordOutcome {
  /** Why the attempt's webhook was just deactivated, if it was. */
  deactivated: DeactivationReason | null;
  /**
   * The next delivery of the same ticket to the same webhook, released by this one's finish and
   * already leased to the recording worker (per-ticket order, docs/delivery.md): the worker sends
   * it without a claim, or gives its lease back.
   */
  next: ClaimedDelivery | null;
  /** The operational events this result made (committed with it). */
  operationalEvents: OperationalEvent[];
}

export interface AttemptRecorderOptions {
  /** Hears of the operational events once committed. */
  observer?: Pick<DeliveryObserver, 'operationalEvent'>;
  /** Told when operational events queued deliveries. */
  wakeup?: DeliveryWakeup;
}

const MAX_BATCH = 256;
const GATHER_MS = 5;

export class AttemptRecorder {
  readonly #group: GroupCommit<RecordedResult, RecordOutcome>;
  readonly #db: Db;
  readonly #write: (trx: Db, results: readonly RecordedResult[], handOver: boolean) => Promise<RecordOutcome[]>;
  readonly #logger: Logger;
  readonly #observer: Pick<DeliveryObserver, 'operationalEvent'>;
  readonly #wakeup: DeliveryWakeup | null;

  /** `leaseMs`: the lease of a delivery handed over to this worker, as a claim would take it. */
  constructor(db: Db, capabilities: Capabilities, webhooks: WebhookDirectory, logger: Logger, leaseMs: number, options: AttemptRecorderOptions = {}) {
    this.#db = db;
    this.#logger = logger;
    this.#observer = options.observer ?? NO_OBSERVER;
    this.#wakeup = options.wakeup ?? null;
    // Operational events pass no filter (Outbox.record), so nothing is filtered out to report.
    const outbox = new Outbox(capabilities, webhooks);
    this.#write = async (trx, results, handOver) => {
      const first = results[0]!.record;
      const lease = handOver ? { workerId: first.workerId, leaseExpiresAt: toIso(Date.parse(first.now) + leaseMs) } : null;
      const { next, failed } = await recordAttempts(
        trx,
        capabilities,
        results.map((r) => r.record),
        lease,
      );
      const verdicts = results.flatMap((r) => (r.verdict ? [{ webhookId: r.webhookId, verdict: r.verdict, at: r.record.now, eventType: r.eventType }] : []));
      const disabled = await webhooks.applyVerdicts(trx, verdicts);
      const events = operationalEvents(failed, disabled);
      // Key-share locks: this transaction has updated webhooks already (SubscriptionLock).
      if (events.length > 0) await outbox.record(trx, events, 'key-share');
      // Each event is told with the result that made it: the failed delivery's, or the last of the deactivated webhook's.
      const madeBy = new Map<RecordedResult, OperationalEvent[]>();
      for (const event of events) {
        const result = event.deliveryId !== null ? results.find((r) => r.record.deliveryId === event.deliveryId) : results.findLast((r) => r.webhookId === event.webhookId);
        if (result) madeBy.set(result, [...(madeBy.get(result) ?? []), event]);
      }
      return results.map((r) => ({ deactivated: disabled.get(r.webhookId)?.reason ?? null, next: next.get(r.record.deliveryId) ?? null, operationalEvents: madeBy.get(r) ?? [] }));
    };
    this.#group = new GroupCommit({ name: 'attempt', db, logger, maxBatch: MAX_BATCH, gatherMs: GATHER_MS, write: (trx, results) => this.#write(trx, results, true) });
  }

  /** Resolves once the result is committed. Every record of a batch is one worker's. */
  async record(result: RecordedResult): Promise<RecordOutcome> {
    const outcome = await this.#group.submit(result);
    this.#committed(outcome.operationalEvents);
    return outcome;
  }

  #committed(events: readonly OperationalEvent[]): void {
    if (events.length === 0) return;
    for (const event of events) {
      this.#observer.operationalEvent(event.type);
      this.#logger.info({ event: event.type, webhookId: event.webhookId, ...(event.deliveryId ? { deliveryId: event.deliveryId } : {}) }, 'operational event');
    }
    this.#wakeup?.notify();
  }

  /**
   * The fallback after an attempt whose record failed: the delivery only moves along its
   * schedule. Written in a transaction of its own, never in a batch: whatever refused the
   * attempt record (a broken table, say) would refuse a batch holding other attempts too, and
   * the fallback with it, so that the delivery would wait for its lease to run out instead.
   */
  async recordWithoutAttempt(result: RecordedResult & { record: { attempt: null } }): Promise<void> {
    // What it releases is left to any worker's claim: this path is the worker's error handling.
    const [outcome] = await this.#db.transaction().execute((trx) => this.#write(trx, [result], false));
    this.#committed(outcome!.operationalEvents);
  }

  /** Writes what is gathered now and waits for the writes under way (shutdown). */
  settled(): Promise<void> {
    return this.#group.settled();
  }
}
