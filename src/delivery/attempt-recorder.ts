/**
 * Group commit for attempt results. Attempts finish one by one, many per millisecond under load;
 * writing each in its own transaction made the database the bottleneck (on SQLite every one of
 * them queues for the single writer). The recorder gathers the results that finish while a write
 * is under way and writes them all in the next transaction: the attempts, the deliveries' new
 * states and the webhooks' health, together. An attempt counts as done only once its transaction
 * committed, so a crash loses no acknowledged result: at worst a sent attempt is not recorded, its
 * lease runs out and it is sent again (at least once).
 *
 * On SQLite a write runs synchronously, so nothing finishes "while it is under way": the first
 * result of a batch waits GATHER_MS for the ones right behind it instead (measured: 5,000
 * deliveries took 5,192 transactions without it).
 */
import type { Logger } from 'pino';
import type { Capabilities } from '../db/capabilities.js';
import type { Db } from '../db/connection.js';
import { applyAttemptsToWebhooks, type AttemptVerdict } from '../webhooks/webhook-health.js';
import type { DisabledReason } from '../webhooks/webhook.js';
import { recordAttempts, type AttemptRecord } from './deliveries.repository.js';

export interface RecordedResult {
  record: AttemptRecord;
  webhookId: string;
  /** What the attempt says about the webhook's health; null when no attempt was made. */
  verdict: AttemptVerdict | null;
}

interface Waiting {
  result: RecordedResult;
  resolve: (disabled: DisabledReason | null) => void;
  reject: (error: unknown) => void;
}

/** PostgreSQL's deadlock and serialization failures: the transaction is safe to run again. */
const RETRYABLE_CODES = new Set(['40P01', '40001']);
const MAX_BATCH = 256;
const GATHER_MS = 5;

export class AttemptRecorder {
  readonly #db: Db;
  readonly #capabilities: Capabilities;
  readonly #logger: Logger;
  #waiting: Waiting[] = [];
  #writing: Promise<void> | null = null;
  #gathering: NodeJS.Timeout | null = null;

  constructor(db: Db, capabilities: Capabilities, logger: Logger) {
    this.#db = db;
    this.#capabilities = capabilities;
    this.#logger = logger;
  }

  /** Resolves once the result is committed, with the reason its webhook was just deactivated, if it was. */
  record(result: RecordedResult): Promise<DisabledReason | null> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ result, resolve, reject });
      if (this.#writing || this.#gathering) return;
      this.#gathering = setTimeout(() => {
        this.#gathering = null;
        this.#writing ??= this.#writeAll();
      }, GATHER_MS);
    });
  }

  async #writeAll(): Promise<void> {
    try {
      while (this.#waiting.length > 0) {
        const batch = this.#waiting.splice(0, MAX_BATCH);
        try {
          const disabled = await this.#write(batch.map((w) => w.result));
          for (const waiting of batch) waiting.resolve(disabled.get(waiting.result.webhookId) ?? null);
        } catch (error) {
          if (batch.length === 1) {
            batch[0]!.reject(error);
            continue;
          }
          // One bad result must not sink the others: written one by one, each fails alone.
          this.#logger.warn({ err: error, batch: batch.length }, 'attempt batch refused; writing its results one by one');
          for (const waiting of batch) {
            try {
              const disabled = await this.#write([waiting.result]);
              waiting.resolve(disabled.get(waiting.result.webhookId) ?? null);
            } catch (single) {
              waiting.reject(single);
            }
          }
        }
      }
    } finally {
      // Cleared in the same step that found nothing waiting: a result added by a rejected
      // caller's handler (it runs later) then starts a new write instead of being stranded.
      this.#writing = null;
    }
  }

  async #write(results: readonly RecordedResult[], retries = 2): Promise<Map<string, DisabledReason>> {
    try {
      return await this.#db.transaction().execute(async (trx) => {
        await recordAttempts(
          trx,
          this.#capabilities,
          results.map((r) => r.record),
        );
        const verdicts = results.flatMap((r) => (r.verdict ? [{ webhookId: r.webhookId, verdict: r.verdict, at: r.record.now }] : []));
        return applyAttemptsToWebhooks(trx, verdicts);
      });
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (retries === 0 || code === undefined || !RETRYABLE_CODES.has(code)) throw error;
      this.#logger.warn({ code, batch: results.length }, 'attempt batch conflicted with another transaction; writing it again');
      return this.#write(results, retries - 1);
    }
  }

  /** Writes what is gathered now and waits for the writes under way (shutdown). */
  async settled(): Promise<void> {
    if (this.#gathering) {
      clearTimeout(this.#gathering);
      this.#gathering = null;
      this.#writing ??= this.#writeAll();
    }
    while (this.#writing) await this.#writing;
  }
}
