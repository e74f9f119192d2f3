import type { Db } from '../db/connection.js';
import type { ApiKeysTable, UsersTable } from '../db/schema.js';
import type { Cursor } from '../shared/pagination.js';
import { pageNewestFirst } from '../db/keyset.js';

export type ApiKeyRow = ApiKeysTable;

export async function insertApiKey(db: Db, row: ApiKeyRow): Promise<void> {
  await db.insertInto('api_keys').values(row).execute();
}

export function listApiKeys(db: Db, cursor: Cursor | null, limit: number): Promise<ApiKeyRow[]> {
  return pageNewestFirst(db.selectFrom('api_keys').selectAll(), cursor, limit).execute();
}

export async function deleteApiKey(db: Db, id: string): Promise<boolean> {
  const result = await db.deleteFrom('api_keys').where('id', '=', id).executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

/** The key's id, its hash and its user, found through the unique index on key_hash. */
export function findKeyOwnerByHash(
  db: Db,
  keyHash: string,
): Promise<{ keyId: string; keyHash: string; user: Pick<UsersTable, 'id' | 'role'> } | undefined> {
  return db
    .selectFrom('api_keys')
    .innerJoin('users', 'users.id', 'api_keys.user_id')
    .select(['api_keys.id as keyId', 'api_keys.key_hash as keyHash', 'users.id as userId', 'users.role as role'])
    .where('api_keys.key_hash', '=', keyHash)
    .executeTakeFirst()
    .then((row) => (row ? { keyId: row.keyId, keyHash: row.keyHash, user: { id: row.userId, role: row.role } } : undefined));
}
