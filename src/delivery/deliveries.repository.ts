/**
 * The delivery queue in SQL. A delivery is one event for one webhook; it is `pending` until an
 * attempt succeeds (`succeeded`) or the schedule is spent (`failed`). `next_attempt_at` is set
 * while there is an attempt to make: on every pending delivery, and on a finished one whose
 * redelivery was asked. A worker claims due rows by taking a lease; a lease that expires (the
 * worker crashed) makes the row claimable again.
 */
import { sql, type ExpressionBuilder, type SqlBool } from 'kysely';
import type { Capabilities } from '../db/capabilities.js';
import { boundRows, inList, insertRows, type ColumnsOf } from '../db/bound-rows.js';
import type { Db } from '../db/connection.js';
import { LOCK_NAMESPACES, lockNames } from '../db/named-locks.js';
import type { Database, DeliveriesTable, EventsTable } from '../db/schema.js';
import { ID_TIME_SLACK_MS, idTimePrefix, newId } from '../shared/ids.js';

/** Every column but `seq`, which the database numbers. */
const DELIVERY_COLUMNS = {
  id: 'text',
  webhook_id: 'text',
  event_id: 'text',
  event_type: 'text',
  ticket_id: 'text',
  held: 'integer',
  expedited: 'integer',
  status: 'text',
  attempt_count: 'integer',
  schedule_attempts: 'integer',
  next_attempt_at: 'text',
  lease_expires_at: 'text',
  leased_by: 'text',
  last_attempt_at: 'text',
  last_status_code: 'integer',
  created_at: 'text',
  updated_at: 'text',
} as const satisfies ColumnsOf<Omit<DeliveriesTable, 'seq'>>;

export interface NewDelivery {
  webhookId: string;
  eventId: string;
  eventType: string;
  /** The ticket it is ordered with; null outside any order (the test event). */
  ticketId: string | null;
  /** Behind an earlier pending delivery of its ticket to its webhook: not due until released. */
  held: boolean;
  /** An admin's act (the test event): out at once, whatever the breaker says. */
  expedited?: boolean;
  /** When its event happened: the delivery is due from then (once released, if held). */
  queuedAt: string;
}

export async function insertDeliveries(db: Db, capabilities: Capabilities, deliveries: readonly NewDelivery[]): Promise<string[]> {
  const rows = deliveries.map((d) => ({
    id: newId('msg'),
    webhook_id: d.webhookId,
    event_id: d.eventId,
    event_type: d.eventType,
    ticket_id: d.ticketId,
    held: d.held ? 1 : 0,
    expedited: d.expedited ? 1 : 0,
    status: 'pending' as const,
    attempt_count: 0,
    schedule_attempts: 0,
    next_attempt_at: d.held ? null : d.queuedAt,
    lease_expires_at: null,
    leased_by: null,
    last_attempt_at: null,
    last_status_code: null,
    created_at: d.queuedAt,
    updated_at: d.queuedAt,
  }));
  await insertRows(db, capabilities, 'deliveries', DELIVERY_COLUMNS, rows);
  return rows.map((row) => row.id);
}

/**
 * The webhooks that have a pending delivery of each of these tickets, as `webhookId ticketId`
 * pairs: a new delivery of the same ticket to one of them is held behind it. Must run after
 * lockTicketDeliveries, in the same transaction.
 */
export async function pendingTicketStreams(db: Db, capabilities: Capabilities, ticketIds: readonly string[]): Promise<Set<string>> {
  if (ticketIds.length === 0) return new Set();
  const rows = await db
    .selectFrom('deliveries')
    .select(['webhook_id', 'ticket_id'])
    .distinct()
    .where(inList(capabilities, 'ticket_id', ticketIds))
    .where(isPending)
    .execute();
  return new Set(rows.map((row) => ticketStream(row.webhook_id, row.ticket_id!)));
}

/**
 * `status = 'pending'` written as a literal, so that both databases can prove that the query
 * stays within deliveries_ticket_pending_idx (a bound parameter proves nothing at planning).
 */
const isPending = sql<SqlBool>`status = 'pending'`;

export interface TicketStream {
  webhook_id: string;
  ticket_id: string;
}

/**
 * After deliveries of these streams succeeded or failed for good: in each stream left with no
 * delivery under way (nothing pending but held ones), the earliest held one is released, due
 * now. Must run after lockTicketDeliveries for the streams' tickets, in the transaction that
 * finished them, so that a change queuing a held delivery at the same moment is either seen
 * here or sees the finish itself.
 */
export async function releaseNextOfStreams(db: Db, capabilities: Capabilities, streams: readonly TicketStream[], now: string, handOver: HandOver | null): Promise<ReleasedDelivery[]> {
  if (streams.length === 0) return [];
  const lease = handOver === null ? sql`` : sql`, leased_by = ${handOver.workerId}, lease_expires_at = ${handOver.leaseExpiresAt}`;
  // Driven from the streams, a step in deliveries_ticket_pending_idx each: written as a join,
  // PostgreSQL planned a scan of every pending row per batch (docs/benchmarks.md, issue 14).
  const { rows } = await sql<ClaimedRow & { ticket_id: string }>`
    update deliveries set held = 0, next_attempt_at = ${now}, updated_at = ${now}${lease}
    where seq in (
      select (
        select d.seq from deliveries as d
        where d.ticket_id = finished.ticket_id and d.webhook_id = finished.webhook_id and d.status = 'pending' and d.held = 1
        order by d.seq limit 1)
      from ${boundRows(capabilities, 'finished', STREAM_COLUMNS, streams)}
      where (
        select e.seq from deliveries as e
        where e.ticket_id = finished.ticket_id and e.webhook_id = finished.webhook_id and e.status = 'pending' and e.held = 0
        limit 1) is null)
    returning ${sql.join(CLAIMED_COLUMNS.map((c) => sql.ref(c)))}, ticket_id`.execute(db);
  if (handOver === null || rows.length === 0) return [];
  const claimed = await withPayloads(db, capabilities, rows, now);
  const ticketOf = new Map(rows.map((row) => [row.id, row.ticket_id]));
  return claimed.map((delivery) => ({ ...delivery, stream: { webhook_id: delivery.webhookId, ticket_id: ticketOf.get(delivery.id)! } }));
}

/**
 * A release that leases what it releases to the worker whose attempt finished the stream: the
 * next delivery of a ticket is then taken by the same statement that makes it due, instead of
 * by one more update of its row in a later claim.
 */
export interface HandOver {
  workerId: string;
  leaseExpiresAt: string;
}

/** A delivery released and leased to the worker that finished the one before it, in `stream`. */
export type ReleasedDelivery = ClaimedDelivery & { stream: TicketStream };

const STREAM_COLUMNS = { webhook_id: 'text', ticket_id: 'text' } as const satisfies ColumnsOf<TicketStream>;

/** The key of one ticket's deliveries to one webhook. */
export function ticketStream(webhookId: string, ticketId: string): string {
  return `${webhookId} ${ticketId}`;
}

/**
 * Serialises, per ticket, the transactions that queue a ticket's deliveries with the ones that
 * finish them, so that a delivery is never held behind one that finished unseen (and then never
 * released). On SQLite writing transactions already run one at a time.
 */
export async function lockTicketDeliveries(db: Db, capabilities: Capabilities, ticketIds: readonly string[]): Promise<void> {
  await lockNames(db, capabilities, LOCK_NAMESPACES.ticketDeliveries, ticketIds);
}

export interface ClaimedDelivery {
  id: string;
  seq: number;
  webhookId: string;
  eventType: string;
  /** `pending` on its schedule; `succeeded` or `failed` for a one-off redelivery. */
  status: 'pending' | 'succeeded' | 'failed';
  /** An admin's act: out at once, whatever the webhook's breaker or fair share says. */
  expedited: boolean;
  scheduleAttempts: number;
  nextAttemptAt: string;
  /** When the event was queued: the start of its event-to-delivery latency. */
  createdAt: string;
  payload: string;
  /** The event's trace, which the attempt continues; null when it was made untraced. */
  traceparent: string | null;
}

export interface ClaimRequest {
  workerId: string;
  now: string;
  leaseExpiresAt: string;
  limit: number;
  /**
   * Webhooks with no room in this worker (their share of their host is full, or their breaker
   * paused them): leave their rows for later, but their expedited ones (an admin's acts).
   */
  skipWebhookIds: readonly string[];
}

/** Written as a literal, so that both databases can use deliveries_expedited_idx. */
const isExpedited = sql<SqlBool>`expedited = 1`;

/** Past this many webhooks to claim for, one walk of the due index is cheaper than one index probe each. */
const MAX_WEBHOOK_PROBES = 50;

/**
 * Claims up to `limit` due deliveries, oldest due first and in queue order. With webhooks to
 * leave out, the other webhooks' first due rows are read one webhook at a time through
 * deliveries_webhook_due_idx, so that the left-out webhooks' backlog is never walked; with none
 * left to claim for, nothing is read at all.
 */
export async function claimDueDeliveries(db: Db, capabilities: Capabilities, request: ClaimRequest): Promise<ClaimedDelivery[]> {
  if (request.limit <= 0) return [];
  const isDue = (eb: ExpressionBuilder<Database, 'deliveries'>) =>
    eb.and([eb('next_attempt_at', '<=', request.now), eb.or([eb('lease_expires_at', 'is', null), eb('lease_expires_at', '<=', request.now)])]);
  let due = db.selectFrom('deliveries').select('seq').where(isDue).orderBy('next_attempt_at').orderBy('seq').limit(request.limit);
  if (request.skipWebhookIds.length > 0) {
    const others = await db.selectFrom('webhooks').select('id').where('id', 'not in', request.skipWebhookIds).execute();
    if (others.length <= MAX_WEBHOOK_PROBES) {
      const firstDue = others
        .map(({ id }) => db.selectFrom('deliveries').select(['seq', 'next_attempt_at']).where('webhook_id', '=', id).where(isDue).orderBy('next_attempt_at').orderBy('seq').limit(request.limit))
        .map((probe, i) => db.selectFrom(probe.as(`w${i}`)).select('seq'));
      // An admin's acts for the left-out webhooks too, through the index of expedited rows.
      const expedited = db.selectFrom('deliveries').select(['seq', 'next_attempt_at']).where(isExpedited).where(isDue).orderBy('next_attempt_at').orderBy('seq').limit(request.limit);
      const candidates = firstDue.reduce((union, probe) => union.unionAll(probe), db.selectFrom(expedited.as('expedited')).select('seq'));
      due = due.where('seq', 'in', candidates);
    } else {
      due = due.where((eb) => eb.or([eb('webhook_id', 'not in', request.skipWebhookIds), isExpedited]));
    }
  }
  if (capabilities.skipLocked) due = due.forUpdate().skipLocked();

  // One transaction: a claim is never left taken without its payloads having been read.
  return db.transaction().execute(async (trx) => {
    const rows = await trx
      .updateTable('deliveries')
      .set({ lease_expires_at: request.leaseExpiresAt, leased_by: request.workerId })
      .where('seq', 'in', due)
      .returning(CLAIMED_COLUMNS)
      .execute();
    return withPayloads(trx, capabilities, rows, request.now);
  });
}

/** What a claim reads of each row it leases. */
const CLAIMED_COLUMNS = ['id', 'seq', 'webhook_id', 'event_id', 'event_type', 'status', 'expedited', 'schedule_attempts', 'next_attempt_at', 'created_at'] as const;
type ClaimedRow = Omit<Pick<DeliveriesTable, (typeof CLAIMED_COLUMNS)[number]>, 'seq'> & { seq: number | string };

/** The leased rows with their events' payloads, oldest due first and in queue order. */
async function withPayloads(db: Db, capabilities: Capabilities, rows: readonly ClaimedRow[], now: string): Promise<ClaimedDelivery[]> {
  if (rows.length === 0) return [];
  const payloads = await db
    .selectFrom('events')
    .select(['id', 'payload', 'traceparent'])
    .where(inList(capabilities, 'id', [...new Set(rows.map((row) => row.event_id))]))
    .execute();
  const eventById = new Map(payloads.map((row) => [row.id, row]));
  return rows
    .map((row) => ({
      id: row.id,
      seq: Number(row.seq),
      webhookId: row.webhook_id,
      eventType: row.event_type,
      status: row.status,
      expedited: Number(row.expedited) === 1,
      scheduleAttempts: row.schedule_attempts,
      nextAttemptAt: row.next_attempt_at ?? now,
      createdAt: row.created_at,
      payload: eventById.get(row.event_id)?.payload ?? '',
      traceparent: eventById.get(row.event_id)?.traceparent ?? null,
    }))
    .sort((a, b) => (a.nextAttemptAt < b.nextAttemptAt ? -1 : a.nextAttemptAt > b.nextAttemptAt ? 1 : a.seq - b.seq));
}

/**
 * The latest ticket events still kept, newest first, through the events' primary key (ids
 * begin with their time): what a webhook filter is tried on before it is saved.
 */
export async function listRecentTicketEvents(db: Db, limit: number): Promise<Pick<EventsTable, 'id' | 'type' | 'ticket_id' | 'ticket_version' | 'payload' | 'filter_context' | 'created_at'>[]> {
  return db
    .selectFrom('events')
    .select(['id', 'type', 'ticket_id', 'ticket_version', 'payload', 'filter_context', 'created_at'])
    .where('ticket_id', 'is not', null)
    .orderBy('id', 'desc')
    .limit(limit)
    .execute();
}

/**
 * The earliest `next_attempt_at` of a delivery nobody holds, or null. The due index is walked in
 * order and stops at the first unleased row, so the cost does not grow with the queue; rows
 * whose lease expired are left to the worker's poll.
 */
export async function nextDueAt(db: Db): Promise<string | null> {
  const row = await db
    .selectFrom('deliveries')
    .select('next_attempt_at')
    .where('next_attempt_at', 'is not', null)
    .where('lease_expires_at', 'is', null)
    .orderBy('next_attempt_at')
    .limit(1)
    .executeTakeFirst();
  return row?.next_attempt_at ?? null;
}

/**
 * The earliest `next_attempt_at` at or before `dueBefore` of a delivery that any worker could
 * claim at `now` (nobody holds it, or its lease ran out), or null: work left waiting, which a
 * worker's health looks for (worker-health.ts). The due index is walked from the oldest.
 */
export async function oldestClaimableDueAt(db: Db, dueBefore: string, now: string): Promise<string | null> {
  const row = await db
    .selectFrom('deliveries')
    .select('next_attempt_at')
    .where('next_attempt_at', '<=', dueBefore)
    .where((eb) => eb.or([eb('lease_expires_at', 'is', null), eb('lease_expires_at', '<=', now)]))
    .orderBy('next_attempt_at')
    .limit(1)
    .executeTakeFirst();
  return row?.next_attempt_at ?? null;
}

/** Pending deliveries found due for an inactive webhook (deactivated after they were queued) are failed unsent. */
export async function failDeliveries(db: Db, ids: readonly string[], now: string): Promise<void> {
  if (ids.length === 0) return;
  await db
    .updateTable('deliveries')
    .set({ status: 'failed', next_attempt_at: null, held: 0, lease_expires_at: null, leased_by: null, updated_at: now })
    .where('id', 'in', ids)
    .where('status', '=', 'pending')
    .execute();
}

/**
 * Puts claimed rows of a rate-limited webhook back, due at `until` (its next free send slot):
 * no attempt is counted and nothing else of the row changes, so they wait their turn in the
 * queue rather than in this worker.
 */
export async function deferDeliveries(db: Db, workerId: string, ids: readonly string[], until: string): Promise<void> {
  if (ids.length === 0) return;
  await db
    .updateTable('deliveries')
    .set({ next_attempt_at: until, lease_expires_at: null, leased_by: null })
    .where('leased_by', '=', workerId)
    .where('id', 'in', ids)
    .execute();
}

/** Gives claimed rows back (graceful shutdown) so that another worker may take them at once. */
export async function releaseLeases(db: Db, workerId: string, ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  await db
    .updateTable('deliveries')
    .set({ lease_expires_at: null, leased_by: null })
    .where('leased_by', '=', workerId)
    .where('id', 'in', ids)
    .execute();
}

/** A deactivated webhook's pending deliveries, held ones included, become failed, to be recovered later. */
export async function failPendingDeliveries(db: Db, webhookId: string, now: string): Promise<void> {
  await db
    .updateTable('deliveries')
    .set({ status: 'failed', next_attempt_at: null, held: 0, updated_at: now })
    .where('webhook_id', '=', webhookId)
    .where('status', '=', 'pending')
    .execute();
}

/** Deliveries with an attempt to make (due or not): the queue depth. */
export async function countQueued(db: Db): Promise<number> {
  const row = await db
    .selectFrom('deliveries')
    .select((eb) => eb.fn.countAll<number | string>().as('n'))
    .where('next_attempt_at', 'is not', null)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** Deliveries held behind an earlier pending delivery of their ticket to their webhook. */
export async function countHeld(db: Db): Promise<number> {
  const row = await db
    .selectFrom('deliveries')
    .select((eb) => eb.fn.countAll<number | string>().as('n'))
    .where(isPending)
    .where('held', '=', 1)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/**
 * Retention: deletes up to `batch` finished deliveries created before `before` (their attempts
 * go with them), then up to `batch` events no delivery refers to any more. Small batches keep
 * each transaction short beside live traffic. Returns how many rows went.
 */
export async function pruneFinished(db: Db, before: string, batch: number): Promise<number> {
  // Both statements rely on deliveries_event_idx: without it each event costs a full scan.
  const deliveries = await db
    .deleteFrom('deliveries')
    .where(
      'seq',
      'in',
      // Finished, and no redelivery asked: a held delivery has no next attempt either, but is pending.
      db.selectFrom('deliveries').select('seq').where('created_at', '<', before).where('next_attempt_at', 'is', null).where('status', '<>', 'pending').limit(batch),
    )
    .executeTakeFirst();
  const events = await db
    .deleteFrom('events')
    .where(
      'id',
      'in',
      db
        .selectFrom('events')
        .select('events.id')
        // The id range first: ids begin with their event's time, so only old events are read.
        // created_at alone has no index, and every pass read the whole table (payloads
        // included) even when nothing was old enough.
        .where('events.id', '<', idTimePrefix('evt', Date.parse(before) + ID_TIME_SLACK_MS))
        .where('events.created_at', '<', before)
        .where((eb) => eb.not(eb.exists(eb.selectFrom('deliveries').select('deliveries.seq').whereRef('deliveries.event_id', '=', 'events.id'))))
        .limit(batch),
    )
    .executeTakeFirst();
  return Number(deliveries.numDeletedRows) + Number(events.numDeletedRows);
}
