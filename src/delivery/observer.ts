/**
 * What the worker reports as it goes, for metrics. The worker knows nothing of Prometheus; the
 * metrics module implements this.
 */
import type { OperationalEventType } from '../events/event-types.js';

export interface AttemptReport {
  eventType: string;
  target: string;
  outcome: 'succeeded' | 'retry' | 'failed';
  error: string | null;
  durationMs: number;
  /** From the event being queued to this attempt's end; only on the delivery's first success. */
  eventToDeliveryMs: number | null;
  /** The delivery reached a final state by this attempt (succeeded, or its schedule spent). */
  finalTransition: boolean;
}

export interface DeliveryObserver {
  attempted(report: AttemptReport): void;
  /** Deliveries a change did not make because the webhooks' filters did not match its events. */
  filteredOut(count: number): void;
  /** Deliveries of a rate-limited webhook put back to wait for its next free slots. */
  rateLimited(webhookId: string, count: number): void;
  /** An operational event was committed (docs/api.md, "Operational events"). */
  operationalEvent(type: OperationalEventType): void;
}

export const NO_OBSERVER: DeliveryObserver = { attempted: () => undefined, filteredOut: () => undefined, rateLimited: () => undefined, operationalEvent: () => undefined };
