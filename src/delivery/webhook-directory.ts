/**
 * What the delivery engine needs to know of webhooks, as a port: the webhooks part implements it
 * (webhooks/webhook-directory.ts) and runtime.ts hands it in, so that the engine imports no
 * domain, the way DeliveryObserver keeps the metrics out of it. Three questions, each asked
 * inside the engine's own transaction or for a whole batch at once:
 * - the outbox: who subscribes to what, now;
 * - the worker: where to send a claim and with which secrets;
 * - the attempt recorder: what a batch of results does to the webhooks' health, and who
 *   subscribes to the operational events it makes.
 */
import type { Db } from '../db/connection.js';
import type { FilterDocument } from '../events/filter-document.js';

/** An active webhook, the event types it wants, and which of those events (its filter). */
export interface Subscription {
  readonly id: string;
  readonly events: readonly string[];
  /** Whether an event of a subscribed type makes a delivery; null for every one. */
  readonly matches: ((document: FilterDocument) => boolean) | null;
}

/** Where and how to send a webhook's deliveries. */
export interface DeliveryTarget {
  readonly targetUrl: string;
  /** The current secret first, then the previous ones still live: each signs every delivery. */
  readonly signingSecrets: string[];
  readonly active: boolean;
  /** The webhook's own extra headers, opened. */
  readonly headers: Readonly<Record<string, string>>;
  /** Deliveries a second across every worker, or null for no limit. */
  readonly rateLimit: number | null;
}

/** Why the engine's results deactivated a webhook: a `410 Gone`, or five days of failures. */
export type DeactivationReason = 'gone' | 'failing';

/** What one attempt says about its webhook's health. */
export type AttemptVerdict = 'succeeded' | 'failed' | 'gone';

export interface AttemptVerdictAt {
  readonly webhookId: string;
  readonly verdict: AttemptVerdict;
  readonly at: string;
  /** The event type of the attempt's delivery: an operational one's deactivation makes no event. */
  readonly eventType: string;
}

/** A webhook the engine's results just deactivated: what `webhook.disabled` says of it. */
export interface Deactivation {
  readonly reason: DeactivationReason;
  /** Its `disabledAt`. */
  readonly at: string;
  readonly name: string;
  readonly targetUrl: string;
  /** The event type of the delivery whose attempt deactivated it: the 410, or the last failure. */
  readonly causeEventType: string;
}

/**
 * How the subscriptions' rows are held until the transaction ends. A ticket change takes share
 * locks: a deactivation or deletion of a webhook committed at the same moment waits for it, then
 * fails or deletes what it queued. The attempt recorder has already updated webhooks of its batch
 * when it queues operational events: share locks there would wait crosswise on a second
 * recorder's updated rows (a deadlock). It takes key-share locks, which no update of a webhook's
 * columns waits on but a deletion does: no delivery is queued for a webhook deleted meanwhile,
 * and one queued for a webhook deactivated meanwhile is failed unsent when it falls due.
 */
export type SubscriptionLock = 'share' | 'key-share';

export interface WebhookDirectory {
  /**
   * The active webhooks and their event types, read inside the transaction of the change that is
   * being recorded, so that a deactivation or deletion committed at the same moment either waits
   * for it or is seen by it.
   */
  activeSubscriptions(trx: Db, lock: SubscriptionLock): Promise<Subscription[]>;
  /**
   * The targets of a claim's webhooks, with their live secrets opened, in one read whatever the
   * size of the claim. A webhook deleted meanwhile is absent from the map.
   */
  deliveryTargets(db: Db, webhookIds: readonly string[], now: string): Promise<Map<string, DeliveryTarget>>;
  /**
   * Applies a batch of attempt verdicts, in the order the attempts finished, inside the
   * transaction that records them. Returns the webhooks deactivated by it, by id.
   */
  applyVerdicts(trx: Db, verdicts: readonly AttemptVerdictAt[]): Promise<Map<string, Deactivation>>;
}
