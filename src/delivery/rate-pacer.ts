/**
 * Rate limits, for one worker (docs/delivery.md, "Rate limits"): the claims of a rate-limited
 * webhook get send slots reserved in the database, shared with every other worker, and wait for
 * them in this worker; the claims that got none go back to the queue, due at the webhook's next
 * free slot. No attempt is spent on a claim that waits, and the webhook is left out of this
 * worker's claims until it has a free slot again, so its backlog holds no other webhook's
 * deliveries. An admin's acts (expedited) go out at once and take no slot.
 */
import type { Capabilities } from '../db/capabilities.js';
import type { Db } from '../db/connection.js';
import type { Claim } from './host-lanes.js';
import { reserveSendSlots, type SlotRequest } from './send-slots.repository.js';

/**
 * How far apart a webhook's sends are, against the interval its limit allows: 5% further, so
 * that a send a few milliseconds late (a busy event loop, a slow network) never makes a
 * receiver that counts per second see one more than the limit in any second.
 */
const PACING_MARGIN = 1.05;

/** How far ahead slots are reserved: one claim per webhook and second is enough at any limit. */
export const SLOT_HORIZON_MS = 1_000;

export function sendIntervalMs(rateLimit: number): number {
  return (1000 / rateLimit) * PACING_MARGIN;
}

/** Whether a claim waits for a send slot: its webhook has a limit, and it is not an admin's act. */
function isPaced(claim: Claim): boolean {
  return claim.target.rateLimit !== null && !claim.delivery.expedited;
}

/** What to do with a batch of claims. */
export interface PacedClaims {
  /** Claims to start now or at `at` (their slot), in order. */
  readonly paced: { claim: Claim; at: number }[];
  /** Claims that got no slot, by webhook, to be put back due at `until`. */
  readonly deferred: { webhookId: string; claims: Claim[]; until: number }[];
}

export class RatePacer {
  /** Webhooks with no free slot before this time: left out of claims until then. */
  readonly #fullUntil = new Map<string, number>();
  /**
   * When this worker last started a send to each rate-limited webhook. A send that starts late
   * (a timer held up by a busy event loop) pushes the next one back by the same amount, so that
   * this worker's sends to a webhook are never closer than an interval, whatever its slots say.
   */
  readonly #lastStartOf = new Map<string, number>();

  constructor(
    private readonly db: Db,
    private readonly capabilities: Capabilities,
    private readonly clock: () => number,
  ) {}

  /**
   * When a paced claim may start: its slot, or one interval after this worker's last send to its
   * webhook if that is later. Null means now, and the start is then counted.
   */
  startsAt(claim: Claim, slot: number, now: number): number | null {
    if (!isPaced(claim)) return null;
    const webhookId = claim.delivery.webhookId;
    const last = this.#lastStartOf.get(webhookId);
    const earliest = Math.max(slot, last === undefined ? slot : last + sendIntervalMs(claim.target.rateLimit!));
    if (earliest > now) return earliest;
    this.#lastStartOf.set(webhookId, now);
    return null;
  }

  /** Whether this webhook's slots are taken until later: its rows are not worth claiming now. */
  isFull(webhookId: string, now: number): boolean {
    const until = this.#fullUntil.get(webhookId);
    if (until === undefined) return false;
    if (until > now) return true;
    this.#fullUntil.delete(webhookId);
    return false;
  }

  /** Slots for the claims of rate-limited webhooks; the others (and an admin's acts) start now. */
  async pace(claims: readonly Claim[]): Promise<PacedClaims> {
    let now = this.clock();
    const paced: { claim: Claim; at: number }[] = [];
    const limited = new Map<string, Claim[]>();
    for (const claim of claims) {
      if (!isPaced(claim)) paced.push({ claim, at: now });
      else {
        const list = limited.get(claim.delivery.webhookId);
        if (list) list.push(claim);
        else limited.set(claim.delivery.webhookId, [claim]);
      }
    }
    if (limited.size === 0) return { paced, deferred: [] };
    const requests: SlotRequest[] = [...limited].map(([webhookId, list]) => ({ webhookId, count: list.length, intervalMs: sendIntervalMs(list[0]!.target.rateLimit!) }));
    const reserved = await reserveSendSlots(this.db, this.capabilities, requests, this.clock, SLOT_HORIZON_MS);
    const grants = reserved.grants;
    now = reserved.now;
    const deferred: { webhookId: string; claims: Claim[]; until: number }[] = [];
    for (const [webhookId, list] of limited) {
      // A webhook deleted meanwhile has no slot row: its rows went with it.
      const grant = grants.get(webhookId) ?? { slots: [], nextSlotAt: now };
      grant.slots.forEach((at, i) => paced.push({ claim: list[i]!, at }));
      if (grant.slots.length < list.length) deferred.push({ webhookId, claims: list.slice(grant.slots.length), until: grant.nextSlotAt });
      // Until its next slot comes within the horizon, a claim of its rows would get none.
      if (grant.nextSlotAt - SLOT_HORIZON_MS > now) this.#fullUntil.set(webhookId, grant.nextSlotAt - SLOT_HORIZON_MS);
    }
    return { paced, deferred };
  }
}
