/**
 * The delivery log in SQL: what was sent to a webhook and how each attempt went, and the admin
 * actions on it (redeliver one, recover many).
 */
import { sql, type RawBuilder } from 'kysely';
import { inList } from '../db/bound-rows.js';
import type { Capabilities } from '../db/capabilities.js';
import type { Db } from '../db/connection.js';
import type { AttemptsTable, DeliveriesTable } from '../db/schema.js';
import { pageNewestFirst } from '../db/keyset.js';
import type { Cursor } from '../shared/pagination.js';
import { lockTicketDeliveries } from './deliveries.repository.js';
import { LATENCY_BOUNDS_MS } from './latency-histogram.js';

export type DeliveryRow = Pick<
  DeliveriesTable,
  'id' | 'webhook_id' | 'event_type' | 'status' | 'attempt_count' | 'last_attempt_at' | 'next_attempt_at' | 'last_status_code' | 'created_at'
>;

const DELIVERY_COLUMNS = [
  'id',
  'webhook_id',
  'event_type',
  'status',
  'attempt_count',
  'last_attempt_at',
  'next_attempt_at',
  'last_status_code',
  'created_at',
] as const;

export interface DeliveryFilter {
  status?: DeliveriesTable['status'];
  /** The delivery with this id only (a receiver's log names it by its webhook-id). */
  id?: string;
  ticketId?: string;
  event?: string;
  /** Created at or after. */
  since?: string;
  /** Created before. */
  until?: string;
}

/** The columns a list adds when asked; absent (not null) when not asked. */
export interface IncludedColumns {
  ticket_version?: number | null;
  ticket_id?: string | null;
  last_error?: string | null;
}

/**
 * A page of a webhook's deliveries, newest first, each with the columns asked for: the ticket
 * version its event carries (a lookup of the event by its key per row) and the error of its last
 * attempt (one step down the attempts index per row), so only when asked.
 *
 * A ticket filter reads the webhook's log newest first and keeps its ticket's rows: no index
 * leads with the ticket, so a ticket with few deliveries in a long log costs a walk of that log
 * (bounded by retention). It serves an admin looking at one ticket, not a hot path.
 */
export async function listDeliveries(
  db: Db,
  webhookId: string,
  filter: DeliveryFilter,
  cursor: Cursor | null,
  limit: number,
  include: { ticketVersion: boolean; ticketId: boolean; lastError: boolean },
): Promise<(DeliveryRow & IncludedColumns)[]> {
  let query = db
    .selectFrom('deliveries')
    .select(DELIVERY_COLUMNS)
    .$if(include.ticketVersion, (q) => q.select((eb) => eb.selectFrom('events').select('events.ticket_version').whereRef('events.id', '=', 'deliveries.event_id').as('ticket_version')))
    .$if(include.ticketId, (q) => q.select('ticket_id'))
    .$if(include.lastError, (q) =>
      q.select((eb) =>
        eb
          .selectFrom('attempts')
          .select('attempts.error')
          .whereRef('attempts.delivery_id', '=', 'deliveries.id')
          .orderBy('attempts.attempted_at', 'desc')
          .orderBy('attempts.id', 'desc')
          .limit(1)
          .as('last_error'),
      ),
    )
    .where('webhook_id', '=', webhookId);
  if (filter.id !== undefined) query = query.where('id', '=', filter.id);
  if (filter.ticketId !== undefined) query = query.where('ticket_id', '=', filter.ticketId);
  if (filter.status !== undefined) query = query.where('status', '=', filter.status);
  if (filter.event !== undefined) query = query.where('event_type', '=', filter.event);
  if (filter.since !== undefined) query = query.where('created_at', '>=', filter.since);
  if (filter.until !== undefined) query = query.where('created_at', '<', filter.until);
  return pageNewestFirst(query, cursor, limit).execute();
}

export async function findDelivery(db: Db, webhookId: string, id: string): Promise<(DeliveryRow & { payload: string }) | undefined> {
  return db
    .selectFrom('deliveries')
    .innerJoin('events', 'events.id', 'deliveries.event_id')
    .select(DELIVERY_COLUMNS.map((c) => `deliveries.${c}` as const))
    .select('events.payload')
    .where('deliveries.webhook_id', '=', webhookId)
    .where('deliveries.id', '=', id)
    .executeTakeFirst();
}

/** Oldest first. */
export async function listAttempts(db: Db, deliveryId: string): Promise<AttemptsTable[]> {
  return db.selectFrom('attempts').selectAll().where('delivery_id', '=', deliveryId).orderBy('attempted_at').orderBy('id').execute();
}

/**
 * Asks for one attempt now. A pending delivery's next attempt simply moves to now (its schedule
 * goes on from there), a held one's too: an admin's act goes out at once, outside the per-ticket
 * order, and its breaker (expedited); a finished one gets a single attempt outside any schedule.
 */
export async function requestRedelivery(trx: Db, capabilities: Capabilities, id: string, now: string): Promise<void> {
  // A held delivery may be released by a finishing attempt's transaction at the same moment and
  // leased to its worker, while a claim takes it as a redelivery: sent twice. The release runs
  // under the ticket's named lock; so does this, and whichever commits second sees the other.
  const row = await trx.selectFrom('deliveries').select('ticket_id').where('id', '=', id).executeTakeFirst();
  if (row?.ticket_id) await lockTicketDeliveries(trx, capabilities, [row.ticket_id]);
  await trx.updateTable('deliveries').set({ next_attempt_at: now, held: 0, expedited: 1, updated_at: now }).where('id', '=', id).execute();
}

/**
 * Failed deliveries created in [since, until) go back to the queue with a fresh schedule, due at
 * once and outside the per-ticket order; `expedited`, also outside the webhook's breaker and
 * rate limit.
 */
export async function recoverFailedDeliveries(db: Db, webhookId: string, since: string, until: string, now: string, expedited: boolean): Promise<number> {
  const result = await db
    .updateTable('deliveries')
    .set({ status: 'pending', schedule_attempts: 0, next_attempt_at: now, held: 0, expedited: expedited ? 1 : 0, updated_at: now })
    .where('webhook_id', '=', webhookId)
    .where('status', '=', 'failed')
    .where('created_at', '>=', since)
    .where('created_at', '<', until)
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}

export interface WebhookStatsRows {
  attempts: { total: number; succeeded: number };
  deliveries: Record<DeliveriesTable['status'], number>;
  lastDelivery: DeliveryRow | undefined;
}

/**
 * A webhook's health since a time: its attempts (a failing endpoint shows as failing while its
 * deliveries are still pending), the deliveries created since by status, and the delivery
 * attempted last, whenever that was.
 */
export async function webhookStats(db: Db, webhookId: string, since: string): Promise<WebhookStatsRows> {
  // Deliveries before their attempts: the three reads see no common snapshot, and read in this
  // order a delivery counted as finished always has its attempts counted too (they commit
  // together), where the other order once showed a failed delivery beside two of its three attempts.
  const byStatus = await db
    .selectFrom('deliveries')
    .select((eb) => ['status', eb.fn.countAll<number | string>().as('n')])
    .where('webhook_id', '=', webhookId)
    .where('created_at', '>=', since)
    .groupBy('status')
    .execute();
  const attempts = await db
    .selectFrom('attempts')
    .innerJoin('deliveries', 'deliveries.id', 'attempts.delivery_id')
    .select((eb) => [eb.fn.countAll<number | string>().as('total'), eb.fn.count<number | string>('attempts.id').filterWhere('attempts.error', 'is', null).as('succeeded')])
    .where('deliveries.webhook_id', '=', webhookId)
    .where('attempts.attempted_at', '>=', since)
    .executeTakeFirstOrThrow();
  const lastDelivery = await db
    .selectFrom('deliveries')
    .select(DELIVERY_COLUMNS)
    .where('webhook_id', '=', webhookId)
    .where('last_attempt_at', 'is not', null)
    .orderBy('last_attempt_at', 'desc')
    .orderBy('id', 'desc')
    .limit(1)
    .executeTakeFirst();
  const deliveries = { pending: 0, succeeded: 0, failed: 0 };
  for (const row of byStatus) deliveries[row.status] = Number(row.n);
  return { attempts: { total: Number(attempts.total), succeeded: Number(attempts.succeeded) }, deliveries, lastDelivery };
}

/** Attempts of one webhook in one interval (and latency bucket, when asked), counted. */
export interface ActivityRow {
  webhook_id: string;
  /** The UTC day of the interval, `YYYY-MM-DD`. */
  day: string;
  /** The interval's number within its day, from midnight UTC. */
  slot: number | string;
  /** latency-histogram.ts's bucket; 0 when latencies were not asked for. */
  latency_bucket: number | string;
  total: number | string;
  succeeded: number | string;
}

/**
 * The bucket of `attempts.duration_ms` as a balanced tree of comparisons, a handful per row
 * whatever the number of buckets, in plain SQL both databases run alike.
 */
function latencyBucketExpression(first: number, last: number): RawBuilder<number> {
  if (first === last) return sql<number>`${sql.lit(first)}`;
  const middle = Math.floor((first + last) / 2);
  return sql<number>`case when attempts.duration_ms < ${sql.lit(LATENCY_BOUNDS_MS[middle]!)} then ${latencyBucketExpression(first, middle)} else ${latencyBucketExpression(middle + 1, last)} end`;
}

/**
 * The attempts of some webhooks in [from, to), counted per webhook, per interval of
 * `intervalMinutes` (a divisor of a day) from midnight UTC, and with `latency` per latency
 * bucket too: one grouped query, a bounded number of rows however many attempts there were.
 *
 * The interval is read from the stored time's text (`YYYY-MM-DDTHH:MM:...`, the one format of the
 * database), so both databases group alike without date functions. The deliveries are found
 * through their last attempt (deliveries_webhook_attempted_idx, migration 0015): a delivery with
 * an attempt in the window was last attempted in it or later, so only the deliveries of the
 * webhook attempted since `from` are read, and their attempts through attempts_delivery_idx;
 * a busy webhook's older deliveries and other webhooks' attempts need not be read (the planner
 * may still scan when one webhook makes most of the window's attempts).
 */
export async function attemptActivity(
  db: Db,
  capabilities: Capabilities,
  webhookIds: readonly string[],
  window: { from: string; to: string; intervalMinutes: number },
  latency: boolean,
): Promise<ActivityRow[]> {
  const minuteOfDay = sql`cast(substr(attempts.attempted_at, 12, 2) as integer) * 60 + cast(substr(attempts.attempted_at, 15, 2) as integer)`;
  const slot = sql<number>`(${minuteOfDay}) / ${sql.lit(window.intervalMinutes)}`;
  const day = sql<string>`substr(attempts.attempted_at, 1, 10)`;
  const bucket = latency ? latencyBucketExpression(0, LATENCY_BOUNDS_MS.length) : sql<number>`0`;
  return db
    .selectFrom('deliveries')
    .innerJoin('attempts', 'attempts.delivery_id', 'deliveries.id')
    .select((eb) => [
      'deliveries.webhook_id',
      day.as('day'),
      slot.as('slot'),
      bucket.as('latency_bucket'),
      eb.fn.countAll<number | string>().as('total'),
      eb.fn.count<number | string>('attempts.id').filterWhere('attempts.error', 'is', null).as('succeeded'),
    ])
    .where(inList(capabilities, 'deliveries.webhook_id', webhookIds))
    .where('deliveries.last_attempt_at', '>=', window.from)
    .where('attempts.attempted_at', '>=', window.from)
    .where('attempts.attempted_at', '<', window.to)
    .groupBy(['deliveries.webhook_id', day, slot])
    // A constant in GROUP BY would be read as a column's position.
    .$if(latency, (q) => q.groupBy(bucket))
    .execute();
}
