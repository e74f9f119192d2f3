/**
 * Circuit breakers, one per key (the worker keys them by webhook: docs/delivery.md, "Circuit
 * breaker"). When at least 70% of the attempts of the last five minutes (counted in 5 s buckets)
 * failed, and there were at least 10, the key is paused for 30 s: its deliveries stay in the
 * queue and spend none of their retries. Then one delivery probes it: success closes the
 * breaker, failure pauses it again. An admin's act goes out while it is paused and serves as a
 * probe too: its success ends the pause, its failure changes nothing.
 */
export const BREAKER_STATES = ['closed', 'open', 'half_open'] as const;
export type BreakerState = (typeof BREAKER_STATES)[number];

export interface BreakerPolicy {
  windowMs: number;
  minimumAttempts: number;
  failureRatio: number;
  pauseMs: number;
}

export const DEFAULT_BREAKER_POLICY: BreakerPolicy = Object.freeze({
  windowMs: 5 * 60 * 1000,
  minimumAttempts: 10,
  failureRatio: 0.7,
  pauseMs: 30 * 1000,
});

/**
 * The window is counted in this many buckets, oldest first, rather than one entry per attempt:
 * at a thousand attempts a second, a five-minute list of outcomes would hold hundreds of
 * thousands of objects per host and be filtered on every attempt, growing memory and CPU
 * through a long drain.
 */
const BUCKETS_PER_WINDOW = 60;

interface Bucket {
  start: number;
  attempts: number;
  failures: number;
}

interface TargetHealth {
  /** Attempt counts in the window, oldest bucket first, and their sums. */
  buckets: Bucket[];
  attempts: number;
  failures: number;
  state: BreakerState;
  openUntil: number;
  probing: boolean;
  /** When the outstanding probe was let through: older attempts' outcomes are not the probe's. */
  probeStartedAt: number;
  /** The window's counts when it last opened: why it is paused. */
  openedWith: { attempts: number; failures: number } | null;
}

/** A breaker as an operator sees it: its state, until when it pauses, and why. */
export interface BreakerStatus {
  state: BreakerState;
  /** When the pause ends (or, half-open, when the probe out may be given up); null when closed. */
  pausedUntil: number | null;
  /** The window's attempts and failures when it opened; null when closed. */
  openedWith: { attempts: number; failures: number } | null;
}

export class CircuitBreakers {
  readonly #targets = new Map<string, TargetHealth>();

  constructor(
    private readonly now: () => number,
    private readonly policy: BreakerPolicy = DEFAULT_BREAKER_POLICY,
  ) {}

  #health(target: string): TargetHealth {
    let health = this.#targets.get(target);
    if (!health) {
      health = { buckets: [], attempts: 0, failures: 0, state: 'closed', openUntil: 0, probing: false, probeStartedAt: 0, openedWith: null };
      this.#targets.set(target, health);
    }
    return health;
  }

  /** The state now; an open breaker whose pause is over becomes half-open. */
  state(target: string): BreakerState {
    const health = this.#targets.get(target);
    if (!health) return 'closed';
    if (health.state === 'open' && this.now() >= health.openUntil) health.state = 'half_open';
    return health.state;
  }

  /** May an attempt to this target start now? In half-open state, only one (the probe). */
  tryAcquire(target: string): boolean {
    const state = this.state(target);
    if (state === 'closed') return true;
    if (state === 'open') return false;
    const health = this.#health(target);
    if (health.probing) return false;
    health.probing = true;
    health.probeStartedAt = this.now();
    return true;
  }

  /** When a paused target may be tried again, or null if it is not paused. */
  pausedUntil(target: string): number | null {
    const health = this.#targets.get(target);
    if (!health) return null;
    const state = this.state(target);
    if (state === 'open') return health.openUntil;
    if (state === 'half_open' && health.probing) return this.now() + this.policy.pauseMs;
    return null;
  }

  /**
   * The outcome of an attempt that started at `startedAt`. While the breaker is open or
   * half-open only the probe's outcome counts: attempts that were already in flight when it
   * opened neither close it early nor extend the pause. An admin's act (`adminAct`) that
   * succeeds closes it.
   */
  record(target: string, failed: boolean, startedAt: number = this.now(), adminAct = false): void {
    const health = this.#health(target);
    const now = this.now();
    if (health.state === 'half_open' || health.state === 'open') {
      if (adminAct && !failed) {
        health.state = 'closed';
        health.probing = false;
        health.openedWith = null;
        forget(health);
        return;
      }
      if (!health.probing || startedAt < health.probeStartedAt) return;
      health.probing = false;
      if (failed) {
        health.state = 'open';
        health.openUntil = now + this.policy.pauseMs;
      } else {
        health.state = 'closed';
        health.openedWith = null;
        forget(health);
      }
      return;
    }
    this.#count(health, failed, now);
    if (health.attempts >= this.policy.minimumAttempts && health.failures / health.attempts >= this.policy.failureRatio) {
      health.state = 'open';
      health.openUntil = now + this.policy.pauseMs;
      health.openedWith = { attempts: health.attempts, failures: health.failures };
      forget(health);
    }
  }

  /** Adds one outcome to the current bucket, after dropping the buckets that left the window. */
  #count(health: TargetHealth, failed: boolean, now: number): void {
    const bucketMs = this.policy.windowMs / BUCKETS_PER_WINDOW;
    const since = now - this.policy.windowMs;
    while (health.buckets.length > 0 && health.buckets[0]!.start + bucketMs <= since) {
      const gone = health.buckets.shift()!;
      health.attempts -= gone.attempts;
      health.failures -= gone.failures;
    }
    const start = Math.floor(now / bucketMs) * bucketMs;
    let current = health.buckets.at(-1);
    if (current?.start !== start) {
      current = { start, attempts: 0, failures: 0 };
      health.buckets.push(current);
    }
    current.attempts += 1;
    health.attempts += 1;
    if (failed) {
      current.failures += 1;
      health.failures += 1;
    }
  }

  /** How many buckets the target's window holds (bounded by BUCKETS_PER_WINDOW + 1). */
  windowSize(target: string): number {
    return this.#targets.get(target)?.buckets.length ?? 0;
  }

  /** One key's state, pause and the reason for it. */
  status(target: string): BreakerStatus {
    const state = this.state(target);
    if (state === 'closed') return { state, pausedUntil: null, openedWith: null };
    const health = this.#targets.get(target)!;
    return { state, pausedUntil: this.pausedUntil(target), openedWith: health.openedWith };
  }

  /** Every target's state, for metrics. */
  states(): Map<string, BreakerState> {
    return new Map([...this.#targets.keys()].map((target) => [target, this.state(target)]));
  }
}

function forget(health: TargetHealth): void {
  health.buckets = [];
  health.attempts = 0;
  health.failures = 0;
}
