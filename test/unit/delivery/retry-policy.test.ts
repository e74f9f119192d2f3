import { describe, expect, it } from 'vitest';
import { DEFAULT_RETRY_SCHEDULE_SECONDS } from '../../../src/config.js';
import { nextRetryDelayMs, parseRetryAfter, RETRY_AFTER_CAP_SECONDS } from '../../../src/delivery/retry-policy.js';

describe('retry policy', () => {
  it('follows the default schedule: 10 attempts, the last retry 24 h after the ninth', () => {
    const middle = () => 0.5; // no jitter
    const delays = Array.from({ length: 10 }, (_, i) => nextRetryDelayMs(DEFAULT_RETRY_SCHEDULE_SECONDS, i + 1, middle));
    expect(delays).toEqual([5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400].map((s) => s * 1000).concat([null as never]));
  });

  it('applies at most ±20% jitter', () => {
    expect(nextRetryDelayMs([10], 1, () => 0)).toBe(8000);
    expect(nextRetryDelayMs([10], 1, () => 0.999999)).toBeCloseTo(12000, -1);
  });

  it('takes Retry-After as a floor, capped at 10 hours, without adding an attempt', () => {
    expect(nextRetryDelayMs([5], 1, () => 0.5, 60)).toBe(60_000);
    expect(nextRetryDelayMs([5], 1, () => 0.5, 1)).toBe(5_000);
    expect(nextRetryDelayMs([5], 1, () => 0.5, 10 ** 9)).toBe(RETRY_AFTER_CAP_SECONDS * 1000);
    expect(nextRetryDelayMs([5], 2, () => 0.5, 60)).toBeNull();
  });

  it('parses Retry-After as seconds or an HTTP date', () => {
    const now = Date.parse('2025-01-15T10:30:00.000Z');
    expect(parseRetryAfter('120', now)).toBe(120);
    expect(parseRetryAfter('Wed, 15 Jan 2025 10:31:00 GMT', now)).toBe(60);
    expect(parseRetryAfter('soon', now)).toBeNull();
    expect(parseRetryAfter(undefined, now)).toBeNull();
  });
});
