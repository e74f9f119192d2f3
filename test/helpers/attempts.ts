/**
 * Attempts written straight into a test database, at the times and durations a test chooses
 * (hours ago, slow or fast), as the worker would have recorded them: each the one attempt of its
 * own delivery, which it finished.
 */
import type { DatabaseHandle } from '../../src/db/connection.js';
import { insertRows } from '../../src/db/bound-rows.js';
import { inTransaction } from '../../src/db/transaction.js';
import { ATTEMPT_COLUMNS } from '../../src/delivery/attempts.repository.js';
import { insertDeliveries } from '../../src/delivery/deliveries.repository.js';
import { newEventRow } from '../../src/delivery/outbox.js';
import { insertEvents } from '../../src/events/events.repository.js';
import { newId } from '../../src/shared/ids.js';

export interface PastAttempt {
  at: string;
  durationMs: number;
  /** Null for no answer (a timeout); the attempt succeeded when 2xx. */
  statusCode: number | null;
}

export async function insertPastAttempts(database: DatabaseHandle, webhookId: string, attempts: readonly PastAttempt[]): Promise<void> {
  const { capabilities } = database;
  await inTransaction(database.db, async (db) => {
    const events = attempts.map((a) => newEventRow({ type: 'ticket.created', ticketId: null, ticketVersion: null, data: {}, at: a.at, subject: null }));
    await insertEvents(db, capabilities, events);
    const deliveryIds = await insertDeliveries(db, capabilities, events.map((event) => ({ webhookId, eventId: event.id, eventType: event.type, ticketId: null, held: false, expedited: false, queuedAt: event.created_at })));
    const rows = attempts.map((a, i) => {
      const succeeded = a.statusCode !== null && a.statusCode >= 200 && a.statusCode < 300;
      return { id: newId('att'), delivery_id: deliveryIds[i]!, attempted_at: a.at, status_code: a.statusCode, duration_ms: a.durationMs, error: succeeded ? null : a.statusCode === null ? 'timeout' : 'http_status', error_message: null, response_headers: null, response_body: null };
    });
    await insertRows(db, capabilities, 'attempts', ATTEMPT_COLUMNS, rows);
    for (const row of rows) {
      await db
        .updateTable('deliveries')
        .set({ status: row.error === null ? 'succeeded' : 'failed', next_attempt_at: null, attempt_count: 1, schedule_attempts: 1, last_attempt_at: row.attempted_at, last_status_code: row.status_code })
        .where('id', '=', row.delivery_id)
        .execute();
    }
  });
}
