import type { Db } from '../db/connection.js';
import type { UsersTable } from '../db/schema.js';
import type { Cursor } from '../shared/pagination.js';
import { pageNewestFirst } from '../db/keyset.js';

export type UserRow = UsersTable;

export function findUserById(db: Db, id: string): Promise<UserRow | undefined> {
  return db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
}

export function findUserByEmail(db: Db, email: string): Promise<UserRow | undefined> {
  return db.selectFrom('users').selectAll().where('email_normalized', '=', email.toLowerCase()).executeTakeFirst();
}

export async function insertUser(db: Db, row: UserRow): Promise<void> {
  await db.insertInto('users').values(row).execute();
}

export function listUsers(db: Db, cursor: Cursor | null, limit: number): Promise<UserRow[]> {
  return pageNewestFirst(db.selectFrom('users').selectAll(), cursor, limit).execute();
}

export async function countUsers(db: Db): Promise<number> {
  const row = await db.selectFrom('users').select((eb) => eb.fn.countAll<number | string>().as('n')).executeTakeFirstOrThrow();
  return Number(row.n);
}
