/** The token bucket on its own, with a clock that only moves when told. */
import { describe, expect, it } from 'vitest';
import { RateLimiter } from '../../../src/http/rate-limit.js';

function limiterAt(policy: { perSecond: number; burst: number }) {
  const clock = { ms: 1_000_000, now: () => clock.ms };
  return { limiter: new RateLimiter(policy, clock), clock };
}

describe('rate limiter', () => {
  it('lets a burst through, refuses the next request and says when to come back', () => {
    const { limiter } = limiterAt({ perSecond: 2, burst: 3 });
    expect([1, 2, 3].map(() => limiter.take('k').remaining)).toEqual([2, 1, 0]);
    const refused = limiter.take('k');
    expect(refused).toEqual({ allowed: false, limit: 3, remaining: 0, resetSeconds: 2, retryAfterSeconds: 1 });
  });

  it('refills continuously at the sustained rate, never above the burst', () => {
    const { limiter, clock } = limiterAt({ perSecond: 2, burst: 3 });
    for (let i = 0; i < 3; i += 1) limiter.take('k');
    clock.ms += 499;
    expect(limiter.take('k').allowed).toBe(false);
    clock.ms += 1; // 500 ms: one token back
    expect(limiter.take('k')).toMatchObject({ allowed: true, remaining: 0 });
    clock.ms += 60_000;
    expect(limiter.take('k')).toMatchObject({ allowed: true, remaining: 2, resetSeconds: 1 });
  });

  it('keeps one bucket per key', () => {
    const { limiter } = limiterAt({ perSecond: 1, burst: 1 });
    expect(limiter.take('a').allowed).toBe(true);
    expect(limiter.take('a').allowed).toBe(false);
    expect(limiter.take('b').allowed).toBe(true);
  });

  it('asks a slow rate to wait the whole time a token takes', () => {
    const { limiter } = limiterAt({ perSecond: 0.1, burst: 1 });
    limiter.take('k');
    expect(limiter.take('k')).toMatchObject({ allowed: false, retryAfterSeconds: 10, resetSeconds: 10 });
  });
});
