/**
 * The transactional outbox: a ticket change writes its events, and one delivery per subscribed
 * active webhook, inside the transaction of the change itself. Committed together or not at all.
 */
import type { Capabilities } from '../db/capabilities.js';
import type { Db } from '../db/connection.js';
import type { EventsTable } from '../db/schema.js';
import { newId } from '../shared/ids.js';
import type { PendingEvent } from '../tickets/ticket.js';
import { listActiveSubscriptions } from '../webhooks/webhooks.repository.js';
import { insertDeliveries, insertEvents, type NewDelivery } from './deliveries.repository.js';

/** An event and the time of the change it records: its `timestamp`, and when its deliveries fall due. */
export interface TimedEvent extends PendingEvent {
  at: string;
}

/** The exact body sent to receivers (seed: `{"event", "timestamp", "data"}`). */
function eventPayload(type: string, timestamp: string, data: unknown): string {
  return JSON.stringify({ event: type, timestamp, data });
}

/** The row of a new event, its payload built once: ticket events here, and the test event. */
export function newEventRow(event: { type: string; ticketId: string | null; data: unknown; at: string }): EventsTable {
  return { id: newId('evt'), type: event.type, ticket_id: event.ticketId, payload: eventPayload(event.type, event.at, event.data), created_at: event.at };
}

/**
 * Must be called with the transaction of the change (or of a group of changes: every row goes
 * in one INSERT per table). Returns how many deliveries were queued.
 */
export async function recordEvents(trx: Db, capabilities: Capabilities, events: readonly TimedEvent[]): Promise<number> {
  if (events.length === 0) return 0;
  const subscriptions = await listActiveSubscriptions(trx, capabilities);
  const rows = events.map(newEventRow);
  const deliveries: NewDelivery[] = [];
  for (const row of rows) {
    for (const subscription of subscriptions) {
      if (subscription.events.includes(row.type)) deliveries.push({ webhookId: subscription.id, eventId: row.id, eventType: row.type, queuedAt: row.created_at });
    }
  }
  await insertEvents(trx, capabilities, rows);
  await insertDeliveries(trx, capabilities, deliveries);
  return deliveries.length;
}
