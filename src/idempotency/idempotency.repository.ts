import type { Db } from '../db/connection.js';
import type { IdempotencyKeysTable } from '../db/schema.js';

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
