/**
 * Group commit: many small writes that arrive close together go to the database in one
 * transaction. On this kind of machine the fixed cost of a transaction (BEGIN and COMMIT, a WAL
 * write, on PostgreSQL a round trip per statement, each a system call) outweighs the rows it
 * writes, so the writes that arrive while one transaction is under way are gathered and written
 * together in the next. Each caller is answered only once its transaction committed, so nothing
 * is acknowledged that a crash could lose.
 *
 * One item that the database refuses must not sink the others: a batch refused for a reason one
 * item can cause (a constraint, bad data, a bug tripped by one item's values) is written again
 * one item at a time, and each item then fails alone. A failure of the database as a whole (the
 * connection lost, the disk full, a timeout) fails the batch at once: written one by one, up to
 * a whole batch would wait on it in turn. PostgreSQL's deadlock and serialization failures are
 * retried, since the whole transaction is safe to run again.
 */
import type { Logger } from 'pino';
import { inTransactionSpans, UNTRACED, type Traceparent, type Tracing } from '../tracing/tracing.js';
import type { Db } from './connection.js';
import { inTransaction } from './transaction.js';

export interface GroupCommitOptions<TItem, TResult> {
  /** What the batch is, for the logs. */
  readonly name: string;
  readonly db: Db;
  readonly logger: Logger;
  /**
   * Writes the items inside `trx` and returns one result per item, in order. `traceparents[i]`
   * is the span of item i's transaction when it is traced (`traced`), undefined otherwise.
   */
  readonly write: (trx: Db, items: readonly TItem[], traceparents: readonly (Traceparent | null)[]) => Promise<TResult[]>;
  /**
   * Each item's trace gets a span of the transaction that writes it: one transaction, a span in
   * every trace it serves. `parentOf` is the span of the item's request.
   */
  readonly traced?: { readonly tracing: Tracing; readonly change: string; readonly parentOf: (item: TItem) => Traceparent | null };
  /** Most items in one transaction. */
  readonly maxBatch: number;
  /**
   * How long the first item of an idle group waits for the ones right behind it: 0 waits only
   * for the current turn of the event loop. On SQLite a write runs synchronously, so nothing
   * arrives "while it is under way"; a short wait is what lets a batch form there.
   */
  readonly gatherMs: number;
}

interface Waiting<TItem, TResult> {
  item: TItem;
  resolve: (result: TResult) => void;
  reject: (error: unknown) => void;
}


/** SQLite's result codes for a row it will not take (extended codes start with these). */
const SQLITE_ROW_REFUSALS = ['SQLITE_CONSTRAINT', 'SQLITE_MISMATCH', 'SQLITE_TOOBIG', 'SQLITE_RANGE'];

/**
 * Whether one item may be the cause: PostgreSQL's data exceptions (class 22) and integrity
 * violations (class 23), SQLite's constraint, type and size refusals, and errors of the code
 * itself (a TypeError or RangeError on one item's values). Anything else is the database's.
 */
export function mayBeCausedByOneItem(error: unknown): boolean {
  if (error instanceof TypeError || error instanceof RangeError) return true;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return false;
  if (/^2[23][0-9A-Z]{3}$/.test(code)) return true;
  return SQLITE_ROW_REFUSALS.some((prefix) => code.startsWith(prefix));
}

export class GroupCommit<TItem, TResult> {
  readonly #options: GroupCommitOptions<TItem, TResult>;
  #waiting: Waiting<TItem, TResult>[] = [];
  #writing: Promise<void> | null = null;
  #gathering: { cancel(): void } | null = null;

  constructor(options: GroupCommitOptions<TItem, TResult>) {
    this.#options = options;
  }

  /** Resolves with the item's result once its transaction committed. */
  submit(item: TItem): Promise<TResult> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ item, resolve, reject });
      if (this.#writing || this.#gathering) return;
      this.#gathering = this.#afterGathering(() => {
        this.#gathering = null;
        this.#writing ??= this.#writeAll();
      });
    });
  }

  #afterGathering(run: () => void): { cancel(): void } {
    if (this.#options.gatherMs > 0) {
      const timer = setTimeout(run, this.#options.gatherMs);
      return { cancel: () => clearTimeout(timer) };
    }
    const immediate = setImmediate(run);
    return { cancel: () => clearImmediate(immediate) };
  }

  async #writeAll(): Promise<void> {
    try {
      while (this.#waiting.length > 0) {
        const batch = this.#waiting.splice(0, this.#options.maxBatch);
        try {
          const results = await this.#write(batch.map((w) => w.item));
          batch.forEach((waiting, i) => waiting.resolve(results[i]!));
        } catch (error) {
          if (batch.length === 1 || !mayBeCausedByOneItem(error)) {
            for (const waiting of batch) waiting.reject(error);
            continue;
          }
          this.#options.logger.warn({ err: error, batch: batch.length }, `${this.#options.name} batch refused; writing it one by one`);
          for (const waiting of batch) {
            try {
              waiting.resolve((await this.#write([waiting.item]))[0]!);
            } catch (single) {
              waiting.reject(single);
            }
          }
        }
      }
    } finally {
      // Cleared in the same step that found nothing waiting: an item added by a rejected
      // caller's handler (it runs later) then starts a new write instead of being stranded.
      this.#writing = null;
    }
  }

  #write(items: readonly TItem[]): Promise<TResult[]> {
    const write = (traceparents: readonly (Traceparent | null)[]) =>
      inTransaction(
        this.#options.db,
        (trx) => this.#options.write(trx, items, traceparents),
        (error) => this.#options.logger.warn({ code: (error as { code?: string }).code, batch: items.length }, `${this.#options.name} batch conflicted with another transaction; writing it again`),
      );
    const { traced } = this.#options;
    if (!traced?.tracing.enabled) return write(UNTRACED);
    return inTransactionSpans(traced.tracing, traced.change, items.map(traced.parentOf), write);
  }

  /** Writes what is gathered now and waits for the writes under way (shutdown). */
  async settled(): Promise<void> {
    if (this.#gathering) {
      this.#gathering.cancel();
      this.#gathering = null;
      this.#writing ??= this.#writeAll();
    }
    while (this.#writing) await this.#writing;
  }
}
