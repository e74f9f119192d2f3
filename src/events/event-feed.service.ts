/**
 * The event feed (docs/api.md, "The event feed"): every change's events, kept for the retention
 * period whether or not a webhook was subscribed, listed newest first. Reads only: the feed adds
 * nothing to a ticket change but the indexes its queries use.
 */
import type { Db } from '../db/connection.js';
import { AppError } from '../errors.js';
import { toPage, type Page, type PageRequest } from '../shared/pagination.js';
import { parseTimeWindow } from '../shared/time.js';
import { findFeedEvent, listFeedEvents, type FeedEventRow, type FeedFilter } from './events.repository.js';

/** An event as the feed shows it: its payload (`event`, `timestamp`, `data`) with its id. */
export interface FeedEvent {
  id: string;
  event: string;
  timestamp: string;
  data: unknown;
}

function presentEvent(row: FeedEventRow): FeedEvent {
  const payload = JSON.parse(row.payload) as { event: string; timestamp: string; data: unknown };
  return { id: row.id, event: payload.event, timestamp: payload.timestamp, data: payload.data };
}

export class EventFeedService {
  constructor(private readonly db: Db) {}

  async list(filter: FeedFilter, page: PageRequest): Promise<Page<FeedEvent>> {
    const rows = await listFeedEvents(this.db, { ...filter, ...parseTimeWindow(filter) }, page.cursor, page.limit);
    const listed = toPage(
      rows.map((row) => ({ id: row.id, createdAt: row.created_at, row })),
      page.limit,
    );
    return { items: listed.items.map(({ row }) => presentEvent(row)), nextCursor: listed.nextCursor };
  }

  async get(id: string): Promise<FeedEvent> {
    const row = await findFeedEvent(this.db, id);
    if (!row) throw AppError.notFound('Event');
    return presentEvent(row);
  }
}
