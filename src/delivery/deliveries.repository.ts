/**
 * The delivery queue in SQL. A delivery is one event for one webhook; it is `pending` until an
 * attempt succeeds (`succeeded`) or the schedule is spent (`failed`). `next_attempt_at` is set
 * while there is an attempt to make: on every pending delivery, and on a finished one whose
 * redelivery was asked. A worker claims due rows by taking a lease; a lease that expires (the
 * worker crashed) makes the row claimable again.
 */
import { sql } from 'kysely';
import type { Capabilities } from '../db/capabilities.js';
import type { Db } from '../db/connection.js';
import type { AttemptsTable, EventsTable } from '../db/schema.js';
import { newId } from '../shared/ids.js';

export async function insertEvent(db: Db, row: EventsTable): Promise<void> {
  await db.insertInto('events').values(row).execute();
}

export async function insertDeliveries(
  db: Db,
  deliveries: readonly { webhookId: string; eventId: string; eventType: string }[],
  now: string,
): Promise<string[]> {
  if (deliveries.length === 0) return [];
  const ids = deliveries.map(() => newId('msg'));
  await db
    .insertInto('deliveries')
    .values(
      deliveries.map((d, i) => ({
        id: ids[i]!,
        webhook_id: d.webhookId,
        event_id: d.eventId,
        event_type: d.eventType,
        status: 'pending' as const,
        attempt_count: 0,
        schedule_attempts: 0,
        next_attempt_at: now,
        lease_expires_at: null,
        leased_by: null,
        last_attempt_at: null,
        last_status_code: null,
        created_at: now,
        updated_at: now,
      })),
    )
    .execute();
  return ids;
}

export interface ClaimedDelivery {
  id: string;
  seq: number;
  webhookId: string;
  eventType: string;
  /** `pending` on its schedule; `succeeded` or `failed` for a one-off redelivery. */
  status: 'pending' | 'succeeded' | 'failed';
  scheduleAttempts: number;
  nextAttemptAt: string;
  /** When the event was queued: the start of its event-to-delivery latency. */
  createdAt: string;
  payload: string;
}

export interface ClaimRequest {
  workerId: string;
  now: string;
  leaseExpiresAt: string;
  limit: number;
  /** Webhooks whose target host has no free slot in this worker: leave their rows for later. */
  skipWebhookIds: readonly string[];
}

/** When a row with an attempt to make becomes claimable: when it is due, or when its lease runs out. */
const claimableAt = sql<string>`case when lease_expires_at is not null and lease_expires_at > next_attempt_at then lease_expires_at else next_attempt_at end`;

/** Claims up to `limit` due deliveries, oldest due first and in queue order. */
export async function claimDueDeliveries(db: Db, capabilities: Capabilities, request: ClaimRequest): Promise<ClaimedDelivery[]> {
  if (request.limit <= 0) return [];
  let due = db
    .selectFrom('deliveries')
    .select('seq')
    .where('next_attempt_at', '<=', request.now)
    .where((eb) => eb.or([eb('lease_expires_at', 'is', null), eb('lease_expires_at', '<=', request.now)]))
    .orderBy('next_attempt_at')
    .orderBy('seq')
    .limit(request.limit);
  if (request.skipWebhookIds.length > 0) due = due.where('webhook_id', 'not in', request.skipWebhookIds);
  if (capabilities.skipLocked) due = due.forUpdate().skipLocked();

  // One transaction: a claim is never left taken without its payloads having been read.
  const { claimed, payloads } = await db.transaction().execute(async (trx) => {
    const rows = await trx
      .updateTable('deliveries')
      .set({ lease_expires_at: request.leaseExpiresAt, leased_by: request.workerId })
      .where('seq', 'in', due)
      .returning(['id', 'seq', 'webhook_id', 'event_id', 'event_type', 'status', 'schedule_attempts', 'next_attempt_at', 'created_at'])
      .execute();
    if (rows.length === 0) return { claimed: rows, payloads: [] };
    const events = await trx
      .selectFrom('events')
      .select(['id', 'payload'])
      .where('id', 'in', [...new Set(rows.map((row) => row.event_id))])
      .execute();
    return { claimed: rows, payloads: events };
  });
  if (claimed.length === 0) return [];

  const payloadById = new Map(payloads.map((row) => [row.id, row.payload]));
  return claimed
    .map((row) => ({
      id: row.id,
      seq: Number(row.seq),
      webhookId: row.webhook_id,
      eventType: row.event_type,
      status: row.status,
      scheduleAttempts: row.schedule_attempts,
      nextAttemptAt: row.next_attempt_at ?? request.now,
      createdAt: row.created_at,
      payload: payloadById.get(row.event_id) ?? '',
    }))
    .sort((a, b) => (a.nextAttemptAt < b.nextAttemptAt ? -1 : a.nextAttemptAt > b.nextAttemptAt ? 1 : a.seq - b.seq));
}

/** The earliest time a delivery becomes claimable, or null if none has an attempt to make. */
export async function nextClaimableAt(db: Db, skipWebhookIds: readonly string[]): Promise<string | null> {
  let query = db
    .selectFrom('deliveries')
    .select((eb) => eb.fn.min(claimableAt).as('at'))
    .where('next_attempt_at', 'is not', null);
  if (skipWebhookIds.length > 0) query = query.where('webhook_id', 'not in', skipWebhookIds);
  const row = await query.executeTakeFirst();
  return row?.at ?? null;
}

export type AttemptOutcome =
  | { kind: 'succeeded' }
  | { kind: 'retry'; nextAttemptAt: string }
  | { kind: 'failed' };

/** What the worker saw when it claimed the delivery. */
export interface ClaimedState {
  status: 'pending' | 'succeeded' | 'failed';
  dueAt: string;
}

/**
 * Records one attempt and moves the delivery on, in one transaction, holding the row. Only the
 * worker that still holds the lease moves the delivery; a worker whose lease was taken over
 * records its attempt (it happened) and leaves the state to the new holder. A pending delivery
 * follows its schedule. A finished one (a redelivery) becomes `succeeded` on success and
 * otherwise stays as it was: a redelivery starts no new schedule. If the delivery changed while
 * the attempt was in flight (a redelivery or recovery asked, its webhook deactivated), that
 * change wins: the attempt is counted, and only a success marks it succeeded. With no attempt
 * (an internal error before one could be recorded) the delivery is only moved on, so that such a
 * failure still spends the schedule.
 */
export interface AttemptRecord {
  workerId: string;
  deliveryId: string;
  /** Null when the attempt failed internally before it could be recorded. */
  attempt: Omit<AttemptsTable, 'id' | 'delivery_id'> | null;
  outcome: AttemptOutcome;
  now: string;
  claimed: ClaimedState;
}

export async function recordAttempt(db: Db, capabilities: Capabilities, record: AttemptRecord): Promise<void> {
  const { workerId, deliveryId, attempt, outcome, now, claimed } = record;
  await db.transaction().execute(async (trx) => {
    let read = trx.selectFrom('deliveries').select(['status', 'leased_by', 'next_attempt_at']).where('id', '=', deliveryId);
    if (capabilities.rowLocks) read = read.forUpdate();
    const current = await read.executeTakeFirst();
    if (!current) return;
    if (attempt) await trx.insertInto('attempts').values({ id: newId('att'), delivery_id: deliveryId, ...attempt }).execute();
    if (current.leased_by !== workerId) return;
    const unchanged = current.status === claimed.status && current.next_attempt_at === claimed.dueAt;
    const scheduled = unchanged && current.status === 'pending';
    const base = {
      attempt_count: sql<number>`attempt_count + 1`,
      ...(scheduled ? { schedule_attempts: sql<number>`schedule_attempts + 1` } : {}),
      last_attempt_at: attempt?.attempted_at ?? now,
      last_status_code: attempt?.status_code ?? null,
      lease_expires_at: null,
      leased_by: null,
      updated_at: now,
    };
    if (!unchanged) {
      await trx
        .updateTable('deliveries')
        .set({ ...base, ...(outcome.kind === 'succeeded' ? { status: 'succeeded' as const } : {}) })
        .where('id', '=', deliveryId)
        .execute();
      return;
    }
    const status = outcome.kind === 'succeeded' ? 'succeeded' : scheduled && outcome.kind === 'failed' ? 'failed' : current.status;
    const nextAttemptAt = scheduled && outcome.kind === 'retry' ? outcome.nextAttemptAt : null;
    await trx.updateTable('deliveries').set({ ...base, status, next_attempt_at: nextAttemptAt }).where('id', '=', deliveryId).execute();
  });
}

/** A pending delivery found due for an inactive webhook (deactivated after it was queued) is failed unsent. */
export async function failDelivery(db: Db, id: string, now: string): Promise<void> {
  await db
    .updateTable('deliveries')
    .set({ status: 'failed', next_attempt_at: null, lease_expires_at: null, leased_by: null, updated_at: now })
    .where('id', '=', id)
    .where('status', '=', 'pending')
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

/** A deactivated webhook's pending deliveries become failed, to be recovered later. */
export async function failPendingDeliveries(db: Db, webhookId: string, now: string): Promise<void> {
  await db
    .updateTable('deliveries')
    .set({ status: 'failed', next_attempt_at: null, updated_at: now })
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
      db.selectFrom('deliveries').select('seq').where('created_at', '<', before).where('next_attempt_at', 'is', null).limit(batch),
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
        .where('events.created_at', '<', before)
        .where((eb) => eb.not(eb.exists(eb.selectFrom('deliveries').select('deliveries.seq').whereRef('deliveries.event_id', '=', 'events.id'))))
        .limit(batch),
    )
    .executeTakeFirst();
  return Number(deliveries.numDeletedRows) + Number(events.numDeletedRows);
}
