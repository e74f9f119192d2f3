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
 */
import type { Logger } from 'pino';
import type { Capabilities } from '../db/capabilities.js';
import type { Db } from '../db/connection.js';
import { GroupCommit } from '../db/group-commit.js';
import { toIso } from '../shared/time.js';
import { recordAttempts, type AttemptRecord } from './attempts.repository.js';
import type { ClaimedDelivery } from './deliveries.repository.js';
import type { AttemptVerdict, DeactivationReason, WebhookDirectory } from './webhook-directory.js';

export interface RecordedResult {
  record: AttemptRecord;
  webhookId: string;
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
}

const MAX_BATCH = 256;
const GATHER_MS = 5;

export class AttemptRecorder {
  readonly #group: GroupCommit<RecordedResult, RecordOutcome>;
  readonly #db: Db;
  readonly #write: (trx: Db, results: readonly RecordedResult[], handOver: boolean) => Promise<RecordOutcome[]>;

  /** `leaseMs`: the lease of a delivery handed over to this worker, as a claim would take it. */
  constructor(db: Db, capabilities: Capabilities, webhooks: WebhookDirectory, logger: Logger, leaseMs: number) {
    this.#db = db;
    this.#write = async (trx, results, handOver) => {
      const first = results[0]!.record;
      const lease = handOver ? { workerId: first.workerId, leaseExpiresAt: toIso(Date.parse(first.now) + leaseMs) } : null;
      const next = await recordAttempts(
        trx,
        capabilities,
        results.map((r) => r.record),
        lease,
      );
      const verdicts = results.flatMap((r) => (r.verdict ? [{ webhookId: r.webhookId, verdict: r.verdict, at: r.record.now }] : []));
      const disabled = await webhooks.applyVerdicts(trx, verdicts);
      return results.map((r) => ({ deactivated: disabled.get(r.webhookId) ?? null, next: next.get(r.record.deliveryId) ?? null }));
    };
    this.#group = new GroupCommit({ name: 'attempt', db, logger, maxBatch: MAX_BATCH, gatherMs: GATHER_MS, write: (trx, results) => this.#write(trx, results, true) });
  }

  /** Resolves once the result is committed. Every record of a batch is one worker's. */
  record(result: RecordedResult): Promise<RecordOutcome> {
    return this.#group.submit(result);
  }

  /**
   * The fallback after an attempt whose record failed: the delivery only moves along its
   * schedule. Written in a transaction of its own, never in a batch: whatever refused the
   * attempt record (a broken table, say) would refuse a batch holding other attempts too, and
   * the fallback with it, so that the delivery would wait for its lease to run out instead.
   */
  async recordWithoutAttempt(result: RecordedResult & { record: { attempt: null } }): Promise<void> {
    // What it releases is left to any worker's claim: this path is the worker's error handling.
    await this.#db.transaction().execute((trx) => this.#write(trx, [result], false));
  }

  /** Writes what is gathered now and waits for the writes under way (shutdown). */
  settled(): Promise<void> {
    return this.#group.settled();
  }
}
