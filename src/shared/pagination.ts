import { AppError } from '../errors.js';

/** A position in a list ordered by (createdAt, id) descending, opaque to clients. */
export interface Cursor {
  readonly createdAt: string;
  readonly id: string;
}

export interface Page<T> {
  readonly items: T[];
  readonly nextCursor: string | null;
}

export interface PageRequest {
  readonly limit: number;
  readonly cursor: Cursor | null;
}

export function encodeCursor(cursor: Cursor): string {
  return Buffer.from(JSON.stringify([cursor.createdAt, cursor.id])).toString('base64url');
}

export function decodeCursor(value: string): Cursor {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(value, 'base64url').toString('utf8'));
    if (Array.isArray(parsed) && parsed.length === 2 && typeof parsed[0] === 'string' && typeof parsed[1] === 'string') {
      return { createdAt: parsed[0], id: parsed[1] };
    }
  } catch {
    // fall through to the validation error below
  }
  throw AppError.invalidField('cursor', 'is not a cursor returned by this list');
}

/** Parses `?limit=` (1..100, default 50, never clamped) and `?cursor=`. */
export function parsePageRequest(query: { limit?: string; cursor?: string }): PageRequest {
  let limit = 50;
  if (query.limit !== undefined) {
    if (!/^\d+$/.test(query.limit) || Number(query.limit) < 1 || Number(query.limit) > 100) {
      throw AppError.invalidField('limit', 'must be a whole number from 1 to 100');
    }
    limit = Number(query.limit);
  }
  return { limit, cursor: query.cursor === undefined ? null : decodeCursor(query.cursor) };
}

/** Given up to limit + 1 rows, returns the page and the cursor of its last row if more follow. */
export function toPage<T extends { createdAt: string; id: string }>(rows: T[], limit: number): Page<T> {
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return { items, nextCursor: rows.length > limit && last ? encodeCursor(last) : null };
}
