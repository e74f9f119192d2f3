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
import { recordAttempts, type AttemptRecord } from './attempts.repository.js';
import type { AttemptVerdict, DeactivationReason, WebhookDirectory } from './webhook-directory.js';

export interface RecordedResult {
  record: AttemptRecord;
  webhookId: string;
  /** What the attempt says about the webhook's health; null when no attempt was made. */
  verdict: AttemptVerdict | null;
}

const MAX_BATCH = 256;
const GATHER_MS = 5;

export class AttemptRecorder {
  readonly #group: GroupCommit<RecordedResult, DeactivationReason | null>;
  readonly #db: Db;
  readonly #write: (trx: Db, results: readonly RecordedResult[]) => Promise<(DeactivationReason | null)[]>;

  constructor(db: Db, capabilities: Capabilities, webhooks: WebhookDirectory, logger: Logger) {
    this.#db = db;
    this.#write = async (trx, results) => {
      await recordAttempts(
        trx,
        capabilities,
        results.map((r) => r.record),
      );
      const verdicts = results.flatMap((r) => (r.verdict ? [{ webhookId: r.webhookId, verdict: r.verdict, at: r.record.now }] : []));
      const disabled = await webhooks.applyVerdicts(trx, verdicts);
      return results.map((r) => disabled.get(r.webhookId) ?? null);
    };
    this.#group = new GroupCommit({ name: 'attempt', db, logger, maxBatch: MAX_BATCH, gatherMs: GATHER_MS, write: this.#write });
  }

  /** Resolves once the result is committed, with the reason its webhook was just deactivated, if it was. */
  record(result: RecordedResult): Promise<DeactivationReason | null> {
    return this.#group.submit(result);
  }

  /**
   * The fallback after an attempt whose record failed: the delivery only moves along its
   * schedule. Written in a transaction of its own, never in a batch: whatever refused the
   * attempt record (a broken table, say) would refuse a batch holding other attempts too, and
   * the fallback with it, so that the delivery would wait for its lease to run out instead.
   */
  async recordWithoutAttempt(result: RecordedResult & { record: { attempt: null } }): Promise<void> {
    await this.#db.transaction().execute((trx) => this.#write(trx, [result]));
  }

  /** Writes what is gathered now and waits for the writes under way (shutdown). */
  settled(): Promise<void> {
    return this.#group.settled();
  }
}
