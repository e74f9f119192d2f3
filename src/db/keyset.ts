import type { ExpressionBuilder, SelectQueryBuilder } from 'kysely';
import type { Database } from './schema.js';
import type { Cursor } from '../shared/pagination.js';

type Listable = 'users' | 'api_keys' | 'tickets' | 'webhooks' | 'deliveries';

/** Newest first, (created_at, id) descending, starting after the cursor: keyset pagination. */
export function pageNewestFirst<T extends Listable, O>(
  query: SelectQueryBuilder<Database, T, O>,
  cursor: Cursor | null,
  limit: number,
): SelectQueryBuilder<Database, T, O> {
  let q = query;
  if (cursor) {
    q = q.where((eb: ExpressionBuilder<Database, T>) => {
      const createdAt = eb.ref('created_at' as never);
      const id = eb.ref('id' as never);
      return eb.or([
        eb(createdAt, '<', cursor.createdAt as never),
        eb.and([eb(createdAt, '=', cursor.createdAt as never), eb(id, '<', cursor.id as never)]),
      ]);
    });
  }
  return q
    .orderBy('created_at' as never, 'desc')
    .orderBy('id' as never, 'desc')
    .limit(limit + 1);
}
