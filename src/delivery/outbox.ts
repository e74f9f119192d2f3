/**
 * The transactional outbox: a ticket change writes its events, and one delivery per subscribed
 * active webhook, inside the transaction of the change itself. Committed together or not at all.
 * The attempt recorder writes operational events through it too, in the transaction of the
 * deactivation or final failure that makes them (attempt-recorder.ts).
 */
import type { Capabilities } from '../db/capabilities.js';
import type { Db } from '../db/connection.js';
import { eventPayload } from '../events/event-payload.js';
import { isOperationalEventType, type EventType } from '../events/event-types.js';
import { filterDocument, storedFilterContext, type FilterDocument, type FilterSubject } from '../events/filter-document.js';
import { newId } from '../shared/ids.js';
import { insertEvents, type NewEventRow } from '../events/events.repository.js';
import { insertDeliveries, lockTicketDeliveries, pendingTicketStreams, ticketStream, type NewDelivery } from './deliveries.repository.js';
import { NO_OBSERVER, type DeliveryObserver } from './observer.js';
import type { SubscriptionLock, WebhookDirectory } from './webhook-directory.js';

/** An event to record, and the time of the change: its `timestamp`, and when its deliveries fall due. */
export interface TimedEvent {
  type: EventType;
  /** Null for the test event and operational events, which belong to no ticket. */
  ticketId: string | null;
  /** The ticket's version that the event carries in its data, null with `ticketId`. */
  ticketVersion: number | null;
  data: unknown;
  at: string;
  /** What webhooks' filters see of the change beside the event's type; null without a ticket. */
  subject: FilterSubject | null;
  /**
   * The span of the transaction that makes the event, which its delivery attempts continue
   * (docs/delivery.md, "Tracing"); null or absent when tracing is off.
   */
  traceparent?: string | null;
}

/**
 * The row of a new event, its payload built once: ticket events here, and the test event. Its id
 * begins with the time of its change, so that ids sort as the events were made: by time, and
 * within one change in the order given (`newEventRows`). The feed lists by id, and on
 * PostgreSQL the sequencer numbers committed events in id order (events.repository.ts).
 */
export function newEventRow(event: TimedEvent, id: string = newId('evt', Date.parse(event.at))): NewEventRow {
  return {
    id,
    type: event.type,
    ticket_id: event.ticketId,
    ticket_version: event.ticketVersion,
    payload: eventPayload(event.type, event.at, event.data),
    filter_context: storedFilterContext(event.subject),
    traceparent: event.traceparent ?? null,
    created_at: event.at,
  };
}

/**
 * The rows of events made in this order. The events of one change share their time, and so the
 * time part of their ids: the random parts, drawn for the change, are handed out in ascending
 * order, so that the ids keep the order of the change's events. Changes of one ticket are at
 * least 1 ms apart (`nextChangeTime`), so their ids keep their order by time.
 */
export function newEventRows(events: readonly TimedEvent[]): NewEventRow[] {
  const ids = events.map((event) => newId('evt', Date.parse(event.at)));
  for (let start = 0; start < events.length; ) {
    let end = start + 1;
    while (end < events.length && events[end]!.at === events[start]!.at) end += 1;
    if (end - start > 1) ids.splice(start, end - start, ...ids.slice(start, end).sort());
    start = end;
  }
  return events.map((event, i) => newEventRow(event, ids[i]));
}

export class Outbox {
  constructor(
    private readonly capabilities: Capabilities,
    private readonly webhooks: WebhookDirectory,
    private readonly observer: Pick<DeliveryObserver, 'filteredOut'> = NO_OBSERVER,
  ) {}

  /**
   * Must be called with the transaction of the change (or of a group of changes: every row goes
   * in one INSERT per table), events in the order they were made. Returns how many deliveries
   * were queued.
   *
   * Per-ticket order (docs/delivery.md, "Order"): a delivery is held when its ticket already has
   * a pending delivery to the same webhook, or an earlier event of this call does. A created
   * ticket has no earlier delivery to wait for, so creations (the busiest path) skip the lock
   * and the read. The lock comes before the subscriptions' share locks: the attempt recorder
   * takes the same lock before it locks webhooks, so neither can wait for the other crosswise.
   *
   * Filters choose among ticket events (docs/api.md, "Filters"): an operational event of a
   * subscribed type makes a delivery whatever the webhook's filter, which describes tickets.
   */
  async record(trx: Db, events: readonly TimedEvent[], lock: SubscriptionLock = 'share'): Promise<number> {
    if (events.length === 0) return 0;
    const changedTickets = [...new Set(events.flatMap((e) => (e.ticketId !== null && e.type !== 'ticket.created' ? [e.ticketId] : [])))];
    await lockTicketDeliveries(trx, this.capabilities, changedTickets);
    const subscriptions = await this.webhooks.activeSubscriptions(trx, lock);
    const rows = newEventRows(events);
    const deliveries: NewDelivery[] = [];
    const pending = changedTickets.length > 0 && subscriptions.length > 0 ? await pendingTicketStreams(trx, this.capabilities, changedTickets) : new Set<string>();
    let filteredOut = 0;
    rows.forEach((row, i) => {
      const { subject } = events[i]!;
      // Built once per event, and only if a filter asks for it.
      let document: FilterDocument | null = null;
      for (const subscription of subscriptions) {
        if (!subscription.events.includes(row.type)) continue;
        if (subscription.matches !== null && !isOperationalEventType(row.type)) {
          document ??= filterDocument(row.type, subject);
          if (!subscription.matches(document)) {
            filteredOut += 1;
            continue;
          }
        }
        let held = false;
        if (row.ticket_id !== null) {
          const stream = ticketStream(subscription.id, row.ticket_id);
          held = pending.has(stream);
          pending.add(stream);
        }
        deliveries.push({ webhookId: subscription.id, eventId: row.id, eventType: row.type, ticketId: row.ticket_id, held, queuedAt: row.created_at });
      }
    });
    await insertEvents(trx, this.capabilities, rows);
    await insertDeliveries(trx, this.capabilities, deliveries);
    if (filteredOut > 0) this.observer.filteredOut(filteredOut);
    return deliveries.length;
  }
}
