/**
 * Rate limiting per API key: a token bucket per key, in this process. A key may send `burst`
 * requests at once and `perSecond` on average; each request takes a token and the bucket refills
 * continuously. Every authenticated response says where the key stands (`RateLimit-Limit`,
 * `RateLimit-Remaining`, `RateLimit-Reset`, after the IETF RateLimit header fields draft), and a
 * refused one is a 429 with `Retry-After`, before the request does anything.
 *
 * The buckets live in memory: with several API processes, each one limits on its own, so a key
 * gets the limit once per process. There is one bucket per key used since the process started
 * (a revoked key's stays until a restart), so the memory it takes is bounded by the keys made.
 */
import type { RateLimitPolicy } from '../config.js';
import type { Clock } from '../shared/time.js';

export interface RateLimitVerdict {
  readonly allowed: boolean;
  /** The bucket's size. */
  readonly limit: number;
  /** Whole tokens left after this request. */
  readonly remaining: number;
  /** Seconds until the bucket is full again. */
  readonly resetSeconds: number;
  /** When refused: seconds until one token is back. */
  readonly retryAfterSeconds: number;
}

interface Bucket {
  tokens: number;
  /** When `tokens` was last brought up to date (ms). */
  at: number;
}

export class RateLimiter {
  readonly #policy: RateLimitPolicy;
  readonly #clock: Clock;
  readonly #buckets = new Map<string, Bucket>();

  constructor(policy: RateLimitPolicy, clock: Clock) {
    this.#policy = policy;
    this.#clock = clock;
  }

  /** Takes one token from the key's bucket, if it has one. */
  take(key: string): RateLimitVerdict {
    const { perSecond, burst } = this.#policy;
    const now = this.#clock.now();
    const bucket = this.#buckets.get(key) ?? { tokens: burst, at: now };
    bucket.tokens = Math.min(burst, bucket.tokens + (Math.max(0, now - bucket.at) / 1000) * perSecond);
    bucket.at = now;
    this.#buckets.set(key, bucket);
    const allowed = bucket.tokens >= 1;
    if (allowed) bucket.tokens -= 1;
    return {
      allowed,
      limit: burst,
      remaining: Math.floor(bucket.tokens),
      resetSeconds: Math.ceil((burst - bucket.tokens) / perSecond),
      retryAfterSeconds: allowed ? 0 : Math.max(1, Math.ceil((1 - bucket.tokens) / perSecond)),
    };
  }
}
