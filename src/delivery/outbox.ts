/**
 * The transactional outbox: a ticket change writes its events, and one delivery per subscribed
 * active webhook, inside the transaction of the change itself. Committed together or not at all.
 */
import type { Capabilities } from '../db/capabilities.js';
import type { Db } from '../db/connection.js';
import { newId } from '../shared/ids.js';
import type { PendingEvent } from '../tickets/ticket.js';
import { listActiveSubscriptions } from '../webhooks/webhooks.repository.js';
import { insertDeliveries, insertEvent } from './deliveries.repository.js';

/** The exact body sent to receivers (seed: `{"event", "timestamp", "data"}`). */
export function eventPayload(type: string, timestamp: string, data: unknown): string {
  return JSON.stringify({ event: type, timestamp, data });
}

/** Must be called with the transaction of the change. Returns how many deliveries were queued. */
export async function recordEvents(trx: Db, capabilities: Capabilities, events: readonly PendingEvent[], timestamp: string): Promise<number> {
  if (events.length === 0) return 0;
  const subscriptions = await listActiveSubscriptions(trx, capabilities);
  let queued = 0;
  for (const event of events) {
    const eventId = newId('evt');
    await insertEvent(trx, {
      id: eventId,
      type: event.type,
      ticket_id: event.ticketId,
      payload: eventPayload(event.type, timestamp, event.data),
      created_at: timestamp,
    });
    const webhookIds = subscriptions.filter((s) => s.events.includes(event.type)).map((s) => s.id);
    await insertDeliveries(trx, webhookIds.map((webhookId) => ({ webhookId, eventId, eventType: event.type })), timestamp);
    queued += webhookIds.length;
  }
  return queued;
}
