/**
 * The event types, defined once. A ticket change makes ticket events (docs/api.md, "Events and payloads");
 * the delivery engine makes operational events (docs/api.md, "Operational events");
 * `POST /webhooks/:id/test` makes the test event. The ticket rules, the webhook schema, the
 * OpenAPI document's `webhooks` and the console's event picker all derive from these lists, so
 * an event type added here reaches every one of them (or fails the typecheck where it must be
 * described). This file imports nothing: the console's bundle takes it as it is.
 */

/** What a ticket change makes, in the order the docs and the console list them. */
export const TICKET_EVENT_TYPES = ['ticket.created', 'ticket.updated', 'ticket.deleted', 'ticket.assignment.changed', 'ticket.resolved'] as const;

export type TicketEventType = (typeof TICKET_EVENT_TYPES)[number];

/**
 * What the delivery engine says about itself: a webhook deactivated automatically, a ticket
 * event's delivery failed for good. They belong to no ticket.
 */
export const OPERATIONAL_EVENT_TYPES = ['webhook.disabled', 'delivery.failed'] as const;

export type OperationalEventType = (typeof OPERATIONAL_EVENT_TYPES)[number];

/** What a webhook can subscribe to, in the order the docs and the console list them. */
export const SUBSCRIBABLE_EVENT_TYPES = [...TICKET_EVENT_TYPES, ...OPERATIONAL_EVENT_TYPES] as const;

export type SubscribableEventType = (typeof SUBSCRIBABLE_EVENT_TYPES)[number];

/** The event of `POST /webhooks/:id/test`; unlike ticket events, sent to an inactive webhook too. */
export const TEST_EVENT_TYPE = 'webhook.test';

export type EventType = SubscribableEventType | typeof TEST_EVENT_TYPE;

/**
 * What the event feed lists and streams (docs/api.md, "The event feed"): every change's events.
 * The test event is one webhook's and operational events are the engine's, not a change's: both
 * stay out of it.
 */
export const FEED_EVENT_TYPES: readonly TicketEventType[] = TICKET_EVENT_TYPES;

/** Every type a receiver may get. */
export const EVENT_TYPES: readonly EventType[] = [...SUBSCRIBABLE_EVENT_TYPES, TEST_EVENT_TYPE];

/** Whether an event is operational: its failed delivery makes no further event (docs/delivery.md). */
export function isOperationalEventType(type: string): type is OperationalEventType {
  return (OPERATIONAL_EVENT_TYPES as readonly string[]).includes(type);
}

/** Whether an event is a ticket change's. */
export function isTicketEventType(type: string): type is TicketEventType {
  return (TICKET_EVENT_TYPES as readonly string[]).includes(type);
}
