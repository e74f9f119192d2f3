/**
 * `helpdesk reseal`: moves every sealed value to the first key of HELPDESK_SECRET_KEY, so that
 * the older keys can be dropped (docs/configuration.md, "Rotating the secret key").
 *
 * Safe while servers run, and to run again after a crash: it works in batches, each a short
 * transaction whose updates only land where the sealed text is still the one read
 * (compare-and-set), so a value changed meanwhile is read again, and a value already under the
 * first key is never touched twice. It ends by recording the first key as the only one in use,
 * only if none is left under another (secrets/sealing-keys.ts, which also explains why a server
 * still sealing under the old key cannot slip a value past it).
 */
import type { Capabilities } from '../db/capabilities.js';
import type { Db } from '../db/connection.js';
import { inTransaction } from '../db/transaction.js';
import * as idempotencyKeys from '../idempotency/idempotency.repository.js';
import { confirmSealingKey, retireOtherKeys } from '../secrets/sealing-keys.js';
import { SecretBox } from '../secrets/secret-box.js';
import { openHeaders, sealHeaders, type HeaderSet } from '../webhooks/webhook-headers.js';
import * as webhooks from '../webhooks/webhooks.repository.js';

/** What a reseal counts, one number each: the sealed values it moved to the first key. */
export const SEALED_KINDS = ['signing secrets', 'previous signing secrets', 'header values', 'idempotency keys'] as const;
export type SealedKind = (typeof SEALED_KINDS)[number];
export type KindCounts = Record<SealedKind, number>;

export const DEFAULT_RESEAL_BATCH_SIZE = 200;

export interface ResealProgress {
  /** Rows moved so far. */
  readonly done: number;
  /** Rows that held a value under another key when the reseal started, plus any found since. */
  readonly total: number;
  readonly resealed: Readonly<KindCounts>;
}

export interface ResealOptions {
  readonly batchSize: number;
  /** After the count at the start, and after every batch. */
  readonly onProgress: (progress: ResealProgress) => void;
}

interface BatchResult {
  /** Rows read: none means this source is done. */
  readonly read: number;
  /** Rows whose compare-and-set landed. */
  readonly moved: number;
  readonly values: Partial<KindCounts>;
}

/** One table's sealed values, moved a batch at a time, inside the caller's transaction. */
interface SealedSource {
  count(db: Db, sealingPrefix: string): Promise<number>;
  moveBatch(trx: Db, box: SecretBox, limit: number): Promise<BatchResult>;
}

/** Writes a batch's values sealed again, each only where the row still holds what was read. */
async function moveRows<Row, After>(
  trx: Db,
  rows: readonly Row[],
  reseal: (row: Row) => { after: After; values: Partial<KindCounts> },
  replace: (trx: Db, row: Row, after: After) => Promise<boolean>,
): Promise<BatchResult> {
  let moved = 0;
  const values: Partial<KindCounts> = {};
  for (const row of rows) {
    const { after, values: counts } = reseal(row);
    if (!(await replace(trx, row, after))) continue;
    moved += 1;
    for (const [kind, n] of Object.entries(counts) as [SealedKind, number][]) values[kind] = (values[kind] ?? 0) + n;
  }
  return { read: rows.length, moved, values };
}

const SOURCES: readonly SealedSource[] = [
  {
    count: webhooks.countWebhooksSealedOtherwise,
    async moveBatch(trx, box, limit) {
      const rows = await webhooks.findWebhooksSealedOtherwise(trx, box.sealingPrefix, limit);
      return moveRows(
        trx,
        rows,
        (row) => {
          const sealed = JSON.parse(row.headers) as HeaderSet;
          const stale = Object.fromEntries(Object.entries(sealed).filter(([, value]) => !box.isSealedWithSealingKey(value)));
          const headers = { ...sealed, ...sealHeaders(box, row.id, openHeaders(box, row.id, stale)) };
          const secretMoves = box.isSealedWithSealingKey(row.signing_secret) ? 0 : 1;
          return {
            after: { signing_secret: secretMoves ? box.reseal(row.signing_secret, row.id) : row.signing_secret, headers: JSON.stringify(headers) },
            values: { 'signing secrets': secretMoves, 'header values': Object.keys(stale).length },
          };
        },
        webhooks.replaceSealedWebhookValues,
      );
    },
  },
  {
    count: webhooks.countPreviousSecretsSealedOtherwise,
    async moveBatch(trx, box, limit) {
      const rows = await webhooks.findPreviousSecretsSealedOtherwise(trx, box.sealingPrefix, limit);
      return moveRows(
        trx,
        rows,
        (row) => ({ after: box.reseal(row.secret, row.webhook_id), values: { 'previous signing secrets': 1 } }),
        webhooks.replacePreviousSecret,
      );
    },
  },
  {
    count: idempotencyKeys.countKeysSealedOtherwise,
    async moveBatch(trx, box, limit) {
      const rows = await idempotencyKeys.findKeysSealedOtherwise(trx, box.sealingPrefix, limit);
      return moveRows(
        trx,
        rows,
        (row) => {
          const context = `${row.scope}:${row.key}`;
          // A fingerprint from before they were sealed is a digest, left to expire (docs/security.md).
          const fingerprint = SecretBox.isSealed(row.fingerprint) && !box.isSealedWithSealingKey(row.fingerprint) ? box.reseal(row.fingerprint, `idempotency fingerprint:${context}`) : row.fingerprint;
          const responseBody = row.response_body === null || box.isSealedWithSealingKey(row.response_body) ? row.response_body : box.reseal(row.response_body, `idempotency:${context}`);
          return { after: { fingerprint, response_body: responseBody }, values: { 'idempotency keys': 1 } };
        },
        idempotencyKeys.replaceSealedKeyValues,
      );
    },
  },
];

async function countLeft(db: Db, box: SecretBox): Promise<number> {
  let left = 0;
  for (const source of SOURCES) left += await source.count(db, box.sealingPrefix);
  return left;
}

/**
 * Moves every sealed value to `box`'s sealing key; returns how many of each kind it moved.
 *
 * The bulk moves in short transactions, each confirming first that the sealing key is still the
 * database's (sealing-keys.ts). What a server with another key sealed meanwhile is swept up last,
 * in the transaction that retires the other keys: it holds the keys' lock exclusively, so no
 * sealing transaction can commit until it has, and the sweep cannot be outrun however busy such
 * a server is. Only what was written during the pass waits for that lock.
 */
export async function resealDatabase(db: Db, capabilities: Capabilities, box: SecretBox, options: ResealOptions): Promise<KindCounts> {
  const resealed = Object.fromEntries(SEALED_KINDS.map((kind) => [kind, 0])) as KindCounts;
  let total = await countLeft(db, box);
  let done = 0;
  options.onProgress({ done, total, resealed: { ...resealed } });
  const tally = (batch: BatchResult) => {
    done += batch.moved;
    total = Math.max(total, done);
    for (const [kind, n] of Object.entries(batch.values) as [SealedKind, number][]) resealed[kind] += n;
    options.onProgress({ done, total, resealed: { ...resealed } });
  };
  for (const source of SOURCES) {
    for (;;) {
      const batch = await inTransaction(db, async (trx) => {
        await confirmSealingKey(trx, capabilities, box);
        return source.moveBatch(trx, box, options.batchSize);
      });
      if (batch.read === 0) break;
      tally(batch);
    }
  }
  await retireOtherKeys(db, capabilities, box, async (trx) => {
    for (const source of SOURCES) {
      for (;;) {
        const batch = await source.moveBatch(trx, box, options.batchSize);
        if (batch.read === 0) break;
        // Nothing else writes a sealed value while the lock is held: a row that will not move is not one we can move.
        if (batch.moved === 0) throw new Error(`${batch.read} sealed values could not be moved to key ${box.keyId}, though nothing else can change them now`);
        tally(batch);
      }
    }
    return countLeft(trx, box);
  });
  return resealed;
}

function describeCounts(counts: Readonly<KindCounts>): string {
  return SEALED_KINDS.map((kind) => `${kind} ${counts[kind]}`).join(', ');
}

const BAR_WIDTH = 30;

/** Prints a reseal's progress, then its last line. */
export interface ProgressPrinter {
  update(progress: ResealProgress): void;
  finish(line: string): void;
}

/**
 * Progress as a person or a log reads it: on a terminal, one bar redrawn in place; elsewhere, a
 * plain line per batch.
 */
export function progressPrinter(out: NodeJS.WritableStream, isTerminal: boolean, keyId: string): ProgressPrinter {
  let started = false;
  let barDrawn = false;
  return {
    update({ done, total, resealed }) {
      if (!started) {
        started = true;
        out.write(`Resealing under key ${keyId}: ${total} row${total === 1 ? '' : 's'} hold values under another key.\n`);
        return;
      }
      const fraction = total === 0 ? 1 : Math.min(1, done / total);
      if (isTerminal) {
        const filled = Math.round(fraction * BAR_WIDTH);
        out.write(`\r\x1b[2K[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${Math.floor(fraction * 100)}% ${done}/${total}  ${describeCounts(resealed)}`);
        barDrawn = true;
      } else {
        out.write(`Resealed ${done} of ${total} rows: ${describeCounts(resealed)}\n`);
      }
    },
    finish(line) {
      // The bar's line is ended before the last one, which it must not overwrite.
      out.write(`${barDrawn ? '\n' : ''}${line}\n`);
    },
  };
}

/** The last line: what moved, and what the operator may now do. */
export function describeResealed(counts: Readonly<KindCounts>, keyId: string): string {
  return `Done: every sealed value is under key ${keyId} (resealed: ${describeCounts(counts)}). Keys other than the first can now be dropped from HELPDESK_SECRET_KEY.`;
}
