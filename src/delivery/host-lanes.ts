/**
 * A worker's lanes: per target host, and per webhook within its host, the claims waiting for a
 * slot (first in, first out) and the attempts on the wire. Many webhooks often share one host
 * (automation platforms, chat tools and CRMs serve one path per customer), so a host's slots are
 * shared fairly: the webhooks with work on a host take turns, and each may hold at most its fair
 * share of the host's slots (the host's limit divided by the webhooks with work there). A
 * webhook alone on its host may use all of them; one that hangs holds its share and no more, so
 * another webhook of the same host starts at once (docs/delivery.md, "Concurrency and
 * isolation"). The global limit bounds the attempts on the wire across hosts. A slot is free as
 * soon as the receiver answered, so the next claim starts without a trip to the database.
 *
 * Attempts already on the wire are never cut short: when a second webhook starts work on a host
 * whose slots the first one fills, the second still gets its share at once, and the host is
 * over its limit until the first one's attempts end; never past twice the limit.
 */
import type { Clock } from '../shared/time.js';
import type { CircuitBreakers } from './circuit-breaker.js';
import type { ClaimedDelivery } from './deliveries.repository.js';
import type { DeliveryTarget } from './webhook-directory.js';

/** A claimed delivery with what is needed to send it. */
export interface Claim {
  readonly delivery: ClaimedDelivery;
  readonly target: DeliveryTarget;
  /** `host[:port]` of the target URL: the unit of concurrency, shared by its webhooks. */
  readonly host: string;
  /** When this worker took the lease: a claim left waiting too long goes back unsent. */
  readonly claimedAt: number;
}

export interface LaneLimits {
  /** Attempts on the wire to one host, shared fairly by its webhooks. */
  readonly perHost: number;
  /** Attempts on the wire across every host. */
  readonly global: number;
  /**
   * How long a claim may wait in its lane. Its target (URL, secrets, active) was read when it
   * was claimed; past this it goes back to the queue and is read afresh when claimed again.
   */
  readonly maxWaitMs: number;
}

/** Attempts on the wire to one host, shared by its webhooks, unless configured otherwise. */
export const DEFAULT_PER_HOST_CONCURRENCY = 64;

/**
 * The most attempts that can be on the wire to one host: twice its limit, reached only while a
 * webhook that held more than its share finishes the attempts it had started.
 */
export function maxAttemptsPerHost(perHost: number): number {
  return 2 * perHost;
}

interface WebhookLane {
  waiting: Claim[];
  sending: number;
}

interface HostLane {
  sending: number;
  /** The webhooks with work on this host, in their turn order. */
  webhooks: Map<string, WebhookLane>;
}

export class HostLanes {
  readonly #hosts = new Map<string, HostLane>();
  /** Webhooks whose claims may not start for now, with how many 410 Gone answers are being recorded. */
  readonly #stopped = new Map<string, number>();
  #sendingTotal = 0;

  constructor(
    private readonly limits: LaneLimits,
    /** Per webhook: a webhook whose attempts mostly fail is paused, never its host's others. */
    private readonly breakers: CircuitBreakers,
    private readonly clock: Clock,
  ) {}

  /** Queues a claim behind the others of its webhook. */
  enqueue(claim: Claim): void {
    this.#webhookLane(this.#host(claim.host), claim.delivery.webhookId).waiting.push(claim);
  }

  /**
   * The waiting claims of one host that may start now: the webhooks take turns, one claim each
   * per round, each in claim order, as far as its fair share, the host's and the global limits
   * and its breaker allow. An admin's act (redelivery, recovery, test event) goes out whatever
   * the breaker and the share say, within the limits. Each one taken holds its slots until
   * `answered`. Also the ids to hand back unsent: a paused webhook's waiting claims (but an
   * admin's act), and claims that waited longer than `maxWaitMs`.
   */
  take(host: string): { start: Claim[]; giveBack: string[] } {
    const lane = this.#host(host);
    const start: Claim[] = [];
    const giveBack: string[] = [];
    const now = this.clock.now();
    for (let progress = true; progress; ) {
      progress = false;
      const share = this.#share(lane);
      for (const [webhookId, webhook] of lane.webhooks) {
        if (this.#sendingTotal >= this.limits.global || lane.sending >= maxAttemptsPerHost(this.limits.perHost)) break;
        while (webhook.waiting.length > 0 && now - webhook.waiting[0]!.claimedAt > this.limits.maxWaitMs) giveBack.push(webhook.waiting.shift()!.delivery.id);
        const next = webhook.waiting[0];
        if (next === undefined || this.#stopped.has(webhookId)) continue;
        if (!next.delivery.expedited) {
          if (webhook.sending >= share) continue;
          if (!this.breakers.tryAcquire(webhookId)) {
            // Paused: its scheduled claims go back to the queue; an admin's act stays to go out.
            const kept = webhook.waiting.filter((claim) => claim.delivery.expedited);
            giveBack.push(...webhook.waiting.filter((claim) => !claim.delivery.expedited).map((claim) => claim.delivery.id));
            webhook.waiting = kept;
            continue;
          }
        }
        start.push(webhook.waiting.shift()!);
        webhook.sending += 1;
        lane.sending += 1;
        this.#sendingTotal += 1;
        progress = true;
      }
      // The next round (and the next take) starts with another webhook, so none is always first.
      if (progress) this.#rotate(lane);
    }
    this.#forgetIdle(lane, host);
    return { start, giveBack };
  }

  /**
   * An attempt of `webhookId` to `host` has its answer: its slots are free. True when the
   * global limit was reached before, so that other hosts' waiting claims may start now (only a
   * freed global slot can start them: walking every lane on every answer would cost a loop over
   * all hosts per delivery).
   */
  answered(host: string, webhookId: string): boolean {
    const globalWasFull = this.#sendingTotal >= this.limits.global;
    const lane = this.#host(host);
    const webhook = this.#webhookLane(lane, webhookId);
    webhook.sending -= 1;
    lane.sending -= 1;
    this.#sendingTotal -= 1;
    if (webhook.sending === 0 && webhook.waiting.length === 0) lane.webhooks.delete(webhookId);
    if (lane.webhooks.size === 0 && lane.sending === 0) this.#hosts.delete(host);
    return globalWasFull;
  }

  /**
   * Holds a webhook's waiting claims (none starts) until `resume`: its receiver answered 410
   * Gone, and nothing more may be sent to it while that is being recorded.
   */
  stop(webhookId: string): void {
    this.#stopped.set(webhookId, (this.#stopped.get(webhookId) ?? 0) + 1);
  }

  /**
   * Lets a stopped webhook's claims start again, or, when it was deactivated meanwhile, empties
   * its lane and returns the ids of the claims that were waiting (to hand back: their rows are
   * failed already, so nothing sends them).
   */
  resume(webhookId: string, deactivated: boolean): string[] {
    const stops = this.#stopped.get(webhookId);
    if (stops !== undefined) {
      if (stops > 1) this.#stopped.set(webhookId, stops - 1);
      else this.#stopped.delete(webhookId);
    }
    if (!deactivated) return [];
    const dropped: string[] = [];
    for (const lane of this.#hosts.values()) {
      const webhook = lane.webhooks.get(webhookId);
      if (webhook) dropped.push(...webhook.waiting.splice(0).map((claim) => claim.delivery.id));
    }
    return dropped;
  }

  /** The hosts with claims waiting. */
  waitingHosts(): string[] {
    return [...this.#hosts].filter(([, lane]) => [...lane.webhooks.values()].some((w) => w.waiting.length > 0)).map(([host]) => host);
  }

  /** Empties every lane (shutdown) and returns the ids of the claims that were waiting. */
  drain(): string[] {
    return [...this.#hosts.values()].flatMap((lane) => [...lane.webhooks.values()].flatMap((webhook) => webhook.waiting.splice(0).map((claim) => claim.delivery.id)));
  }

  /**
   * Whether a webhook takes no more claims for now: its lane holds two rounds of its fair share
   * of its host (sending and waiting), its breaker paused it, or it is stopped. Its admin acts
   * are claimed all the same (the claim reads them apart).
   */
  isSaturated(webhookId: string, host: string): boolean {
    if (this.#stopped.has(webhookId) || this.breakers.pausedUntil(webhookId) !== null) return true;
    const lane = this.#hosts.get(host);
    const webhook = lane?.webhooks.get(webhookId);
    return lane !== undefined && webhook !== undefined && webhook.sending + webhook.waiting.length >= 2 * this.#share(lane);
  }

  /** When the first of the paused webhooks with a lane may be tried again; +Infinity when none is paused. */
  nextPauseEnd(): number {
    let first = Number.POSITIVE_INFINITY;
    for (const lane of this.#hosts.values()) {
      for (const webhookId of lane.webhooks.keys()) first = Math.min(first, this.breakers.pausedUntil(webhookId) ?? Number.POSITIVE_INFINITY);
    }
    return first;
  }

  /** A webhook's fair share of its host's slots: the limit divided among the webhooks with work there. */
  #share(lane: HostLane): number {
    return Math.max(1, Math.floor(this.limits.perHost / Math.max(1, lane.webhooks.size)));
  }

  #rotate(lane: HostLane): void {
    const first = lane.webhooks.keys().next();
    if (first.done) return;
    const webhook = lane.webhooks.get(first.value)!;
    lane.webhooks.delete(first.value);
    lane.webhooks.set(first.value, webhook);
  }

  /** Webhooks with nothing waiting or sending leave their host's turn, and empty hosts go. */
  #forgetIdle(lane: HostLane, host: string): void {
    for (const [webhookId, webhook] of lane.webhooks) {
      if (webhook.sending === 0 && webhook.waiting.length === 0) lane.webhooks.delete(webhookId);
    }
    if (lane.webhooks.size === 0 && lane.sending === 0) this.#hosts.delete(host);
  }

  #host(host: string): HostLane {
    let lane = this.#hosts.get(host);
    if (!lane) {
      lane = { sending: 0, webhooks: new Map() };
      this.#hosts.set(host, lane);
    }
    return lane;
  }

  #webhookLane(lane: HostLane, webhookId: string): WebhookLane {
    let webhook = lane.webhooks.get(webhookId);
    if (!webhook) {
      webhook = { waiting: [], sending: 0 };
      lane.webhooks.set(webhookId, webhook);
    }
    return webhook;
  }
}
