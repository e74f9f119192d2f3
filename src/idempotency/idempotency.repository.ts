import type { Db } from '../db/connection.js';
import type { IdempotencyKeysTable } from '../db/schema.js';
import { SEALED_PREFIX } from '../secrets/secret-box.js';

export async function findKey(db: Db, scope: string, key: string): Promise<IdempotencyKeysTable | undefined> {
  return db.selectFrom('idempotency_keys').selectAll().where('scope', '=', scope).where('key', '=', key).executeTakeFirst();
}

/** False when the key is taken (by another request, perhaps at this very moment). */
export async function insertKey(db: Db, row: IdempotencyKeysTable): Promise<boolean> {
  const result = await db.insertInto('idempotency_keys').values(row).onConflict((oc) => oc.columns(['scope', 'key']).doNothing()).executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0n) > 0;
}

export async function deleteIfExpired(db: Db, scope: string, key: string, now: string): Promise<void> {
  await db.deleteFrom('idempotency_keys').where('scope', '=', scope).where('key', '=', key).where('expires_at', '<=', now).execute();
}

/**
 * Takes over a key whose request stopped without a response (its process died): only if the
 * lock is still the one read, so that of two retries arriving together one wins.
 */
export async function takeOverStale(db: Db, scope: string, key: string, lockedUntilWas: string | null, lockedUntil: string): Promise<boolean> {
  let update = db
    .updateTable('idempotency_keys')
    .set({ locked_until: lockedUntil })
    .where('scope', '=', scope)
    .where('key', '=', key)
    .where('response_status', 'is', null);
  update = lockedUntilWas === null ? update.where('locked_until', 'is', null) : update.where('locked_until', '=', lockedUntilWas);
  const result = await update.executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

export interface StoredResponse {
  scope: string;
  key: string;
  status: number;
  sealedBody: string;
}

/** Stores the responses of keys still under way; a key already answered keeps its response. */
export async function storeResponses(db: Db, responses: readonly StoredResponse[]): Promise<void> {
  for (const response of responses) {
    await db
      .updateTable('idempotency_keys')
      .set({ response_status: response.status, response_body: response.sealedBody, locked_until: null })
      .where('scope', '=', response.scope)
      .where('key', '=', response.key)
      .where('response_status', 'is', null)
      .execute();
  }
}

/** Forgets a key whose request ended without a response worth keeping (5xx, 429). */
export async function releaseKey(db: Db, scope: string, key: string): Promise<void> {
  await db.deleteFrom('idempotency_keys').where('scope', '=', scope).where('key', '=', key).where('response_status', 'is', null).execute();
}

export async function pruneExpiredKeys(db: Db, now: string): Promise<number> {
  const result = await db.deleteFrom('idempotency_keys').where('expires_at', '<=', now).executeTakeFirst();
  return Number(result.numDeletedRows);
}

/** What a key holds sealed: its request's fingerprint and, once answered, the response. */
export interface SealedKeyValues {
  scope: string;
  key: string;
  fingerprint: string;
  response_body: string | null;
}

/**
 * Keys with a fingerprint or a response not sealed under the key whose values begin with
 * `sealingPrefix` (a reseal's work). A fingerprint from before fingerprints were sealed (a keyed
 * digest, not a sealed value) cannot be moved to another key and is left to expire.
 */
function sealedOtherwise(db: Db, sealingPrefix: string) {
  return db
    .selectFrom('idempotency_keys')
    .where((eb) =>
      eb.or([
        eb.and([eb('fingerprint', 'like', `${SEALED_PREFIX}:%`), eb('fingerprint', 'not like', `${sealingPrefix}%`)]),
        eb.and([eb('response_body', 'is not', null), eb('response_body', 'not like', `${sealingPrefix}%`)]),
      ]),
    );
}

export async function findKeysSealedOtherwise(db: Db, sealingPrefix: string, limit: number): Promise<SealedKeyValues[]> {
  return sealedOtherwise(db, sealingPrefix).select(['scope', 'key', 'fingerprint', 'response_body']).orderBy('scope').orderBy('key').limit(limit).execute();
}

export async function countKeysSealedOtherwise(db: Db, sealingPrefix: string): Promise<number> {
  const row = await sealedOtherwise(db, sealingPrefix).select((eb) => eb.fn.countAll<number | string>().as('count')).executeTakeFirstOrThrow();
  return Number(row.count);
}

/** Compare-and-set: false when the key was answered, released or expired since it was read. */
export async function replaceSealedKeyValues(db: Db, before: SealedKeyValues, after: Pick<SealedKeyValues, 'fingerprint' | 'response_body'>): Promise<boolean> {
  const result = await db
    .updateTable('idempotency_keys')
    .set({ fingerprint: after.fingerprint, response_body: after.response_body })
    .where('scope', '=', before.scope)
    .where('key', '=', before.key)
    .where('fingerprint', '=', before.fingerprint)
    .where((eb) => (before.response_body === null ? eb('response_body', 'is', null) : eb('response_body', '=', before.response_body)))
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}
