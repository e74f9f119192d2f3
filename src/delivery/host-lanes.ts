/**
 * A worker's lanes: per target host, the claims waiting for one of its slots (first in, first
 * out) and the count of its attempts on the wire. A host that hangs holds its own slots and no
 * more; the global limit bounds the attempts on the wire across hosts. A slot is free as soon as
 * the receiver answered, so the next claim of the lane starts without a trip to the database.
 */
import type { Clock } from '../shared/time.js';
import type { CircuitBreakers } from './circuit-breaker.js';
import type { ClaimedDelivery } from './deliveries.repository.js';
import type { DeliveryTarget } from './webhook-directory.js';

/** A claimed delivery with what is needed to send it. */
export interface Claim {
  readonly delivery: ClaimedDelivery;
  readonly target: DeliveryTarget;
  /** `host[:port]` of the target URL: the unit of concurrency and of the circuit breaker. */
  readonly host: string;
  /** When this worker took the lease: a claim left waiting too long goes back unsent. */
  readonly claimedAt: number;
}

export interface LaneLimits {
  /** Attempts on the wire to one host. */
  readonly perHost: number;
  /** Attempts on the wire across every host. */
  readonly global: number;
  /**
   * How long a claim may wait in its lane. Its target (URL, secrets, active) was read when it
   * was claimed; past this it goes back to the queue and is read afresh when claimed again.
   */
  readonly maxWaitMs: number;
}

interface Lane {
  waiting: Claim[];
  sending: number;
}

export class HostLanes {
  readonly #lanes = new Map<string, Lane>();
  #sendingTotal = 0;

  constructor(
    private readonly limits: LaneLimits,
    private readonly breakers: CircuitBreakers,
    private readonly clock: Clock,
  ) {}

  /** Queues a claim behind the others of its host. */
  enqueue(claim: Claim): void {
    this.#lane(claim.host).waiting.push(claim);
  }

  /**
   * The waiting claims of one host that may start now, in claim order: as many as its free
   * slots, the global limit and its breaker allow. Each one taken holds its slots until
   * `answered`. Also the ids to hand back unsent: a paused host's waiting claims, and claims that
   * waited longer than `maxWaitMs`.
   */
  take(host: string): { start: Claim[]; giveBack: string[] } {
    const lane = this.#lane(host);
    const start: Claim[] = [];
    const giveBack: string[] = [];
    while (lane.waiting.length > 0 && lane.sending < this.limits.perHost && this.#sendingTotal < this.limits.global) {
      const claim = lane.waiting[0]!;
      if (this.clock.now() - claim.claimedAt > this.limits.maxWaitMs) {
        giveBack.push(lane.waiting.shift()!.delivery.id);
        continue;
      }
      if (!this.breakers.tryAcquire(host)) {
        giveBack.push(...lane.waiting.splice(0).map((c) => c.delivery.id));
        break;
      }
      start.push(lane.waiting.shift()!);
      lane.sending += 1;
      this.#sendingTotal += 1;
    }
    return { start, giveBack };
  }

  /**
   * An attempt to `host` has its answer: its slots are free. True when the global limit was
   * reached before, so that other hosts' waiting claims may start now (only a freed global slot
   * can start them: walking every lane on every answer would cost a loop over all hosts per
   * delivery).
   */
  answered(host: string): boolean {
    const globalWasFull = this.#sendingTotal >= this.limits.global;
    this.#lane(host).sending -= 1;
    this.#sendingTotal -= 1;
    return globalWasFull;
  }

  /** The hosts with claims waiting. */
  waitingHosts(): string[] {
    return [...this.#lanes].filter(([, lane]) => lane.waiting.length > 0).map(([host]) => host);
  }

  /** Empties every lane (shutdown) and returns the ids of the claims that were waiting. */
  drain(): string[] {
    return [...this.#lanes.values()].flatMap((lane) => lane.waiting.splice(0).map((claim) => claim.delivery.id));
  }

  /**
   * Whether the host takes no more claims for now: its lane holds two rounds of its slots
   * (sending and waiting), or its breaker paused it.
   */
  isSaturated(host: string): boolean {
    const lane = this.#lanes.get(host);
    return (lane !== undefined && lane.sending + lane.waiting.length >= 2 * this.limits.perHost) || this.breakers.pausedUntil(host) !== null;
  }

  /** When the first of the paused hosts may be tried again; +Infinity when none is paused. */
  nextPauseEnd(): number {
    return Math.min(...[...this.#lanes.keys()].map((host) => this.breakers.pausedUntil(host) ?? Number.POSITIVE_INFINITY));
  }

  #lane(host: string): Lane {
    let lane = this.#lanes.get(host);
    if (!lane) {
      lane = { waiting: [], sending: 0 };
      this.#lanes.set(host, lane);
    }
    return lane;
  }
}
