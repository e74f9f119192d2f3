/**
 * Recording attempts: the attempt rows of a batch, and each delivery's move after its attempt
 * (succeeded, the next retry, or failed), in two statements whatever the batch size, and the
 * release of the deliveries held behind the ones that finished, in one more. The
 * attempt recorder (attempt-recorder.ts) runs it in the transaction it group-commits, and makes
 * the `delivery.failed` events of the deliveries it reports failed for good in the same one.
 */
import { sql } from 'kysely';
import type { Capabilities } from '../db/capabilities.js';
import { boundRows, inList, insertRows, type ColumnsOf, type ColumnType } from '../db/bound-rows.js';
import type { Db } from '../db/connection.js';
import type { AttemptsTable } from '../db/schema.js';
import { newId } from '../shared/ids.js';
import { lockTicketDeliveries, releaseNextOfStreams, ticketStream, type ClaimedDelivery, type HandOver } from './deliveries.repository.js';

export const ATTEMPT_COLUMNS = {
  id: 'text',
  delivery_id: 'text',
  attempted_at: 'text',
  status_code: 'integer',
  duration_ms: 'integer',
  error: 'text',
  error_message: 'text',
  response_headers: 'text',
  response_body: 'text',
} as const satisfies ColumnsOf<AttemptsTable>;

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
 * One finished attempt to record. Only the worker that still holds the lease moves the delivery;
 * a worker whose lease was taken over records its attempt (it happened) and leaves the state to
 * the new holder. A pending delivery follows its schedule. A finished one (a redelivery) becomes
 * `succeeded` on success and otherwise stays as it was: a redelivery starts no new schedule. If
 * the delivery changed while the attempt was in flight (a redelivery or recovery asked, its
 * webhook deactivated), that change wins: the attempt is counted, and only a success marks it
 * succeeded. With no attempt (an internal error before one could be recorded) the delivery is
 * only moved on, so that such a failure still spends the schedule.
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

/** A delivery whose attempt spent its retry schedule: what `delivery.failed` says of it. */
export interface FailedDelivery {
  id: string;
  webhookId: string;
  eventType: string;
  /** Every attempt made, this one and redeliveries included. */
  attemptCount: number;
  lastStatusCode: number | null;
  createdAt: string;
  /** When the attempt that spent the schedule was recorded: the event's time. */
  failedAt: string;
}

export interface RecordedAttempts {
  /** The deliveries released and handed over, keyed by the delivery whose finish released each. */
  next: Map<string, ClaimedDelivery>;
  /** Deliveries this batch moved from pending to failed: their schedule is spent. */
  failed: FailedDelivery[];
}

/** The new state of one delivery after its attempt. */
interface DeliveryMove {
  id: string;
  status: 'pending' | 'succeeded' | 'failed';
  nextAttemptAt: string | null;
  /** 1 when the attempt spent one of the schedule's tries. */
  scheduled: 0 | 1;
  /** Still an admin's act to send at once: one asked while this attempt was in flight. */
  expedited: number;
  lastAttemptAt: string;
  lastStatusCode: number | null;
}

function moveAfterAttempt(record: AttemptRecord, current: { status: ClaimedState['status']; next_attempt_at: string | null; expedited: number }): DeliveryMove {
  const { attempt, outcome, now, claimed } = record;
  const unchanged = current.status === claimed.status && current.next_attempt_at === claimed.dueAt;
  const scheduled = unchanged && current.status === 'pending';
  const last = { lastAttemptAt: attempt?.attempted_at ?? now, lastStatusCode: attempt?.status_code ?? null, scheduled: scheduled ? 1 : 0, expedited: unchanged ? 0 : Number(current.expedited) } as const;
  if (!unchanged) {
    return { id: record.deliveryId, status: outcome.kind === 'succeeded' ? 'succeeded' : current.status, nextAttemptAt: current.next_attempt_at, ...last };
  }
  const status = outcome.kind === 'succeeded' ? 'succeeded' : scheduled && outcome.kind === 'failed' ? 'failed' : current.status;
  const nextAttemptAt = scheduled && outcome.kind === 'retry' ? outcome.nextAttemptAt : null;
  return { id: record.deliveryId, status, nextAttemptAt, ...last };
}

/**
 * Records a batch of attempts. Must run inside a transaction: it reads the deliveries holding
 * their rows (in id order, so that two batches never wait on each other crosswise), inserts the
 * attempts in one statement and moves every delivery in one more, whatever the batch size.
 * With `handOver`, the deliveries it releases are leased to that worker: it returns each, keyed
 * by the delivery whose finish released it, for the worker to send without claiming. It also
 * returns the deliveries whose schedule this batch spent.
 */
export async function recordAttempts(trx: Db, capabilities: Capabilities, records: readonly AttemptRecord[], handOver: HandOver | null): Promise<RecordedAttempts> {
  const next = new Map<string, ClaimedDelivery>();
  if (records.length === 0) return { next, failed: [] };
  let read = trx
    .selectFrom('deliveries')
    .select(['id', 'status', 'leased_by', 'next_attempt_at', 'expedited', 'webhook_id', 'ticket_id', 'event_type', 'attempt_count', 'created_at'])
    .where(inList(capabilities, 'id', records.map((r) => r.deliveryId)))
    .orderBy('id');
  if (capabilities.rowLocks) read = read.forUpdate();
  const current = new Map((await read.execute()).map((row) => [row.id, row]));
  const present = records.filter((r) => current.has(r.deliveryId));
  const attempts = present.flatMap((r) => (r.attempt ? [{ id: newId('att'), delivery_id: r.deliveryId, ...r.attempt }] : []));
  await insertRows(trx, capabilities, 'attempts', ATTEMPT_COLUMNS, attempts);
  const moves = present.filter((r) => current.get(r.deliveryId)!.leased_by === r.workerId).map((r) => moveAfterAttempt(r, current.get(r.deliveryId)!));
  if (moves.length === 0) return { next, failed: [] };
  await sql`
    update deliveries set
      status = moved.status,
      next_attempt_at = moved.next_attempt_at,
      attempt_count = attempt_count + 1,
      schedule_attempts = schedule_attempts + moved.scheduled,
      last_attempt_at = moved.last_attempt_at,
      last_status_code = moved.last_status_code,
      lease_expires_at = null,
      leased_by = null,
      expedited = moved.expedited,
      updated_at = ${records[0]!.now}
    from ${boundRows(
      capabilities,
      'moved',
      MOVED_COLUMNS,
      moves.map((m) => ({ id: m.id, status: m.status, next_attempt_at: m.nextAttemptAt, scheduled: m.scheduled, expedited: m.expedited, last_attempt_at: m.lastAttemptAt, last_status_code: m.lastStatusCode })),
    )}
    where deliveries.id = moved.id`.execute(trx);

  // Only an attempt that found the delivery as claimed moves it to failed (moveAfterAttempt):
  // one failed meanwhile by its webhook's deactivation was pending no more.
  const recordedAt = new Map(present.map((r) => [r.deliveryId, r.now]));
  const failed = moves.flatMap((m): FailedDelivery[] => {
    const row = current.get(m.id)!;
    if (row.status !== 'pending' || m.status !== 'failed') return [];
    return [
      {
        id: m.id,
        webhookId: row.webhook_id,
        eventType: row.event_type,
        attemptCount: Number(row.attempt_count) + 1,
        lastStatusCode: m.lastStatusCode,
        createdAt: row.created_at,
        failedAt: recordedAt.get(m.id)!,
      },
    ];
  });

  // A delivery that was pending and is no longer releases the next of its ticket to its webhook.
  const finishedBy = new Map<string, string>();
  const finished = moves.flatMap((m) => {
    const row = current.get(m.id)!;
    if (row.status !== 'pending' || m.status === 'pending' || row.ticket_id === null) return [];
    finishedBy.set(ticketStream(row.webhook_id, row.ticket_id), m.id);
    return [{ webhook_id: row.webhook_id, ticket_id: row.ticket_id }];
  });
  await lockTicketDeliveries(trx, capabilities, finished.map((stream) => stream.ticket_id));
  const released = await releaseNextOfStreams(trx, capabilities, finished, records[0]!.now, handOver);
  for (const delivery of released) next.set(finishedBy.get(ticketStream(delivery.stream.webhook_id, delivery.stream.ticket_id))!, delivery);
  return { next, failed };
}

/** The new states, as the derived table `moved` of the UPDATE ... FROM. */
const MOVED_COLUMNS = {
  id: 'text',
  status: 'text',
  next_attempt_at: 'text',
  scheduled: 'integer',
  expedited: 'integer',
  last_attempt_at: 'text',
  last_status_code: 'integer',
} as const satisfies Record<string, ColumnType>;
