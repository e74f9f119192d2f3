/**
 * The operational events (docs/api.md, "Operational events"): what the attempt recorder's batch
 * says about the engine itself, as events for the outbox to record in the same transaction.
 *
 * A failed delivery of an operational event makes no further event. Without that rule a webhook
 * subscribed to `delivery.failed` whose receiver is down would be sent the failure of its own
 * failure, for ever; and receivers subscribed to `webhook.disabled` that are gone would pass the
 * deactivation of one to the next. So an operational event's delivery that spends its schedule
 * makes no `delivery.failed`, and a deactivation caused by one (its 410, or the last failure of
 * five days) makes no `webhook.disabled`.
 */
import { isOperationalEventType, isTicketEventType, type OperationalEventType } from '../events/event-types.js';
import type { FailedDelivery } from './attempts.repository.js';
import type { TimedEvent } from './outbox.js';
import type { Deactivation } from './webhook-directory.js';

export interface OperationalEvent extends TimedEvent {
  type: OperationalEventType;
  /** The delivery whose attempt made it: the event's `delivery.failed`, or the deactivating attempt's webhook. */
  webhookId: string;
  deliveryId: string | null;
}

/**
 * The events of a recorded batch: `webhook.disabled` per webhook it deactivated, then
 * `delivery.failed` per ticket event's delivery whose schedule it spent. Deliveries of a webhook
 * deactivated in the same batch make none: the one `webhook.disabled` covers them, as it covers
 * the pending deliveries the deactivation failed in bulk.
 */
export function operationalEvents(failed: readonly FailedDelivery[], deactivated: ReadonlyMap<string, Deactivation>): OperationalEvent[] {
  const events: OperationalEvent[] = [];
  for (const [webhookId, deactivation] of deactivated) {
    if (isOperationalEventType(deactivation.causeEventType)) continue;
    events.push({
      type: 'webhook.disabled',
      ticketId: null,
      ticketVersion: null,
      data: { webhook: { id: webhookId, name: deactivation.name, targetUrl: deactivation.targetUrl, disabledReason: deactivation.reason, disabledAt: deactivation.at } },
      at: deactivation.at,
      subject: null,
      webhookId,
      deliveryId: null,
    });
  }
  for (const delivery of failed) {
    // Only a ticket change's: the test event's failure is shown where it was asked, and an operational event's makes none.
    if (!isTicketEventType(delivery.eventType) || deactivated.has(delivery.webhookId)) continue;
    events.push({
      type: 'delivery.failed',
      ticketId: null,
      ticketVersion: null,
      data: {
        delivery: {
          id: delivery.id,
          webhookId: delivery.webhookId,
          event: delivery.eventType,
          attemptCount: delivery.attemptCount,
          lastStatusCode: delivery.lastStatusCode,
          createdAt: delivery.createdAt,
        },
      },
      at: delivery.failedAt,
      subject: null,
      webhookId: delivery.webhookId,
      deliveryId: delivery.id,
    });
  }
  return events;
}
