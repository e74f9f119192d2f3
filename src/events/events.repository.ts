/**
 * Events in SQL: written with the change that makes them (the outbox), listed by the feed, and
 * followed in commit order by the stream (docs/api.md, "The event feed").
 *
 * Commit order: an event's `feed_position`. On SQLite one transaction writes at a time, so the
 * insert numbers its events after the highest position, and they commit in that order. On
 * PostgreSQL transactions commit concurrently: a number taken inside one is not in commit order,
 * and a reader that had passed number 8 would never see a 7 that committed later. There the
 * insert leaves the position null and the sequencer numbers committed events: one process at a
 * time (a named lock), the events it finds unnumbered, in id order (ids begin with the time of
 * their change and keep the order of a change's events, and a ticket's changes are at least 1 ms
 * apart: so each ticket's events keep the order of its changes). Each of its
 * transactions numbers above the last one's, and commits before the next begins, so a reader
 * that sees position P will never later find a committed position below P: it may resume from
 * any position it has seen, nothing missed, nothing repeated.
 *
 * Only ticket events have a position: the events of no ticket (the test event, operational
 * events) are in no feed, and neither the insert nor the sequencer numbers them (migration 0012):
 * unnumbered for good, they stay out of the sequencer's index as well as the stream's.
 */
import { sql } from 'kysely';
import type { Capabilities } from '../db/capabilities.js';
import { insertRows, type ColumnsOf } from '../db/bound-rows.js';
import type { Db } from '../db/connection.js';
import { LOCK_NAMESPACES, lockNames } from '../db/named-locks.js';
import type { EventsTable } from '../db/schema.js';
import { ID_TIME_SLACK_MS, idTimePrefix } from '../shared/ids.js';
import type { Cursor } from '../shared/pagination.js';
import { FEED_EVENT_TYPES } from './event-types.js';

/** An event as the outbox makes it: its place in commit order is the database's to give. */
export type NewEventRow = Omit<EventsTable, 'feed_position'>;

const EVENT_COLUMNS = {
  id: 'text',
  type: 'text',
  ticket_id: 'text',
  ticket_version: 'integer',
  payload: 'text',
  filter_context: 'text',
  feed_position: 'integer',
  traceparent: 'text',
  created_at: 'text',
} as const satisfies ColumnsOf<EventsTable>;

/** Inserts events in the order given, which is the order of the change's events. */
export async function insertEvents(db: Db, capabilities: Capabilities, rows: readonly NewEventRow[]): Promise<void> {
  if (rows.length === 0) return;
  let next: number | null = null;
  if (capabilities.writesInCommitOrder && rows.some(inFeed)) next = (await latestPosition(db)) + 1;
  await insertRows(db, capabilities, 'events', EVENT_COLUMNS, rows.map((row) => ({ ...row, feed_position: next !== null && inFeed(row) ? next++ : null })));
}

/** Whether an event takes a place in the feed's commit order: a ticket's events do. */
function inFeed(row: NewEventRow): boolean {
  return row.ticket_id !== null;
}

/** The highest position given, 0 when none is: the stream starts after it. */
export async function latestPosition(db: Db): Promise<number> {
  // Stated, not implied: the position index is partial (numbered events only), and SQLite uses
  // it for max() only when the query says so (without it, max() read the whole table).
  const row = await db.selectFrom('events').select((eb) => eb.fn.max('feed_position').as('top')).where('feed_position', 'is not', null).executeTakeFirst();
  return Number(row?.top ?? 0);
}

/** Most events numbered in one transaction of the sequencer. */
const SEQUENCER_BATCH = 2_000;

/**
 * Numbers the committed events that have no position yet (PostgreSQL); nothing to do where the
 * insert numbers them. Returns how many it numbered.
 */
export async function sequenceEvents(db: Db, capabilities: Capabilities): Promise<number> {
  if (capabilities.writesInCommitOrder) return 0;
  let total = 0;
  for (;;) {
    const numbered = await db.transaction().execute(async (trx) => {
      await lockNames(trx, capabilities, LOCK_NAMESPACES.eventFeed, ['sequencer']);
      // Read after the lock: this statement's snapshot sees every number given before it.
      const result = await sql`
        update events set feed_position = base.top + next.n
        from (select coalesce(max(feed_position), 0) as top from events where feed_position is not null) as base,
             (select id, row_number() over (order by id) as n
                from (select id from events where feed_position is null and ticket_id is not null order by id limit ${SEQUENCER_BATCH}) as unnumbered) as next
        where events.id = next.id`.execute(trx);
      return Number(result.numAffectedRows ?? 0);
    });
    total += numbered;
    if (numbered < SEQUENCER_BATCH) return total;
  }
}

/**
 * The position of a feed event, or undefined when the feed does not keep it. Read after the
 * sequencer ran: every committed event has one by then.
 */
export async function positionOf(db: Db, eventId: string): Promise<number | undefined> {
  const row = await db.selectFrom('events').select('feed_position').where('id', '=', eventId).where('type', 'in', FEED_EVENT_TYPES).where('feed_position', 'is not', null).executeTakeFirst();
  return row === undefined ? undefined : Number(row.feed_position);
}

export interface StreamedEventRow {
  id: string;
  type: string;
  payload: string;
  position: number;
}

/** Feed events after a position, in commit order. */
export async function eventsAfter(db: Db, position: number, limit: number): Promise<StreamedEventRow[]> {
  const rows = await db
    .selectFrom('events')
    .select(['id', 'type', 'payload', 'feed_position'])
    .where('feed_position', '>', position)
    .where('type', 'in', FEED_EVENT_TYPES)
    .orderBy('feed_position')
    .limit(limit)
    .execute();
  return rows.map((row) => ({ id: row.id, type: row.type, payload: row.payload, position: Number(row.feed_position) }));
}

export interface FeedFilter {
  types?: readonly string[];
  ticketId?: string;
  since?: string;
  until?: string;
}

export interface FeedEventRow {
  id: string;
  type: string;
  payload: string;
  created_at: string;
}

/**
 * The feed, newest first: by id, which is by time and then id (an event's id begins with the
 * time of its change), so the primary key (or the ticket index) is walked and nothing sorted.
 */
export async function listFeedEvents(db: Db, filter: FeedFilter, cursor: Cursor | null, limit: number): Promise<FeedEventRow[]> {
  let query = db
    .selectFrom('events')
    .select(['id', 'type', 'payload', 'created_at'])
    .where('type', 'in', filter.types ?? FEED_EVENT_TYPES);
  if (filter.ticketId !== undefined) query = query.where('ticket_id', '=', filter.ticketId);
  if (filter.since !== undefined) {
    query = query.where('created_at', '>=', filter.since).where('id', '>=', idTimePrefix('evt', Date.parse(filter.since) - ID_TIME_SLACK_MS));
  }
  if (filter.until !== undefined) {
    query = query.where('created_at', '<', filter.until).where('id', '<', idTimePrefix('evt', Date.parse(filter.until) + ID_TIME_SLACK_MS));
  }
  if (cursor !== null) query = query.where('id', '<', cursor.id);
  return query.orderBy('id', 'desc').limit(limit + 1).execute();
}

export async function findFeedEvent(db: Db, id: string): Promise<FeedEventRow | undefined> {
  return db.selectFrom('events').select(['id', 'type', 'payload', 'created_at']).where('id', '=', id).where('type', 'in', FEED_EVENT_TYPES).executeTakeFirst();
}
