/**
 * Claiming, for one worker: the claim query, with the webhooks that take no more claims left
 * out, and the targets of what it took. It remembers each claimed webhook's host, so that the
 * lanes can say which webhooks to leave out of the next claim.
 */
import type { Capabilities } from '../db/capabilities.js';
import type { Db } from '../db/connection.js';
import { toIso } from '../shared/time.js';
import { claimDueDeliveries, type ClaimedDelivery } from './deliveries.repository.js';
import type { DeliveryTarget, WebhookDirectory } from './webhook-directory.js';

export interface DeliveryClaimerOptions {
  readonly db: Db;
  readonly capabilities: Capabilities;
  readonly webhooks: WebhookDirectory;
  readonly workerId: string;
  readonly leaseMs: number;
  /** How long an empty claim that left webhooks out is not repeated, absent a wake-up. */
  readonly pollIntervalMs: number;
}

export type ClaimResult =
  | { readonly kind: 'claimed'; readonly deliveries: readonly ClaimedDelivery[] }
  /** The same claim found nothing a moment ago: try again at `retryAt`, or when woken. */
  | { readonly kind: 'nothing-new'; readonly retryAt: number };

export class DeliveryClaimer {
  /** The target host of each webhook this worker has claimed for. */
  readonly #hostOfWebhook = new Map<string, string>();
  /**
   * The last claim that left webhooks out and found nothing: it is not repeated before
   * `retryAt` or a wake-up, since each one probes every other webhook's due rows.
   */
  #emptyClaimWhileSkipping: { skipped: string; retryAt: number } | null = null;
  /** Wake-ups so far: a claim that was under way when one came may not have seen its rows. */
  #wakeups = 0;

  constructor(private readonly options: DeliveryClaimerOptions) {}

  /** New rows were committed: they may be for webhooks the last empty claim did not find. */
  woken(): void {
    this.#wakeups += 1;
    this.#emptyClaimWhileSkipping = null;
  }

  /** Claims up to `limit` due deliveries, leaving out the webhooks that `isSaturated` (but an admin's acts). */
  async claim(limit: number, now: number, isSaturated: (webhookId: string, host: string) => boolean): Promise<ClaimResult> {
    const { db, capabilities, workerId, leaseMs, pollIntervalMs } = this.options;
    const skipWebhookIds = [...this.#hostOfWebhook].filter(([webhookId, host]) => isSaturated(webhookId, host)).map(([id]) => id);
    const skipped = skipWebhookIds.join(',');
    const lastEmpty = this.#emptyClaimWhileSkipping;
    if (skipWebhookIds.length > 0 && lastEmpty?.skipped === skipped && now < lastEmpty.retryAt) return { kind: 'nothing-new', retryAt: lastEmpty.retryAt };
    const wakeupsBefore = this.#wakeups;
    const deliveries = await claimDueDeliveries(db, capabilities, { workerId, now: toIso(now), leaseExpiresAt: toIso(now + leaseMs), limit, skipWebhookIds });
    // An empty claim says nothing of rows whose wake-up came while it ran: it read before their
    // commit, and remembering it as empty would leave them to the poll (a healthy webhook's
    // delivery then took the whole poll interval, seen beside a hanging one on its host).
    const emptyAndUnwoken = deliveries.length === 0 && skipWebhookIds.length > 0 && this.#wakeups === wakeupsBefore;
    this.#emptyClaimWhileSkipping = emptyAndUnwoken ? { skipped, retryAt: now + pollIntervalMs } : null;
    return { kind: 'claimed', deliveries };
  }

  /**
   * The targets of the claimed deliveries' webhooks, read together, and their hosts remembered:
   * read with the target, so that a changed target URL moves its webhook to the new host.
   */
  async targets(deliveries: readonly ClaimedDelivery[], now: string): Promise<Map<string, DeliveryTarget>> {
    const { db, webhooks } = this.options;
    const targets = await webhooks.deliveryTargets(db, [...new Set(deliveries.map((d) => d.webhookId))], now);
    for (const [webhookId, target] of targets) this.#hostOfWebhook.set(webhookId, new URL(target.targetUrl).host);
    return targets;
  }

  /** The host of a webhook whose targets were read. */
  hostOf(webhookId: string): string {
    return this.#hostOfWebhook.get(webhookId)!;
  }
}
