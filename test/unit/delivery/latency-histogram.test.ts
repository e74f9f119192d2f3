import { describe, expect, it } from 'vitest';
import { LATENCY_ABSOLUTE_PRECISION_MS, LATENCY_BOUNDS_MS, LATENCY_RELATIVE_PRECISION, latencyBucketOf, latencyQuantile } from '../../../src/delivery/latency-histogram.js';
import { seededRandom } from '../../helpers/random.js';

function histogramOf(durations: readonly number[]): Map<number, number> {
  const counts = new Map<number, number>();
  for (const duration of durations) counts.set(latencyBucketOf(duration), (counts.get(latencyBucketOf(duration)) ?? 0) + 1);
  return counts;
}

function nearestRank(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!;
}

describe('latency histogram', () => {
  it('has rising whole-millisecond bounds, every bucket narrower than the documented precision, far past the longest attempt', () => {
    for (const [i, bound] of LATENCY_BOUNDS_MS.entries()) {
      const lower = i === 0 ? 0 : LATENCY_BOUNDS_MS[i - 1]!;
      expect(Number.isInteger(bound) && bound > lower).toBe(true);
      expect(bound - lower).toBeLessThanOrEqual(Math.max(LATENCY_ABSOLUTE_PRECISION_MS, LATENCY_RELATIVE_PRECISION * lower));
    }
    expect(LATENCY_BOUNDS_MS.at(-1)).toBeGreaterThan(60 * 60 * 1000);
  });

  it('files a duration by the first bound above it', () => {
    expect(latencyBucketOf(0)).toBe(0);
    expect(latencyBucketOf(1)).toBe(1);
    expect(latencyBucketOf(LATENCY_BOUNDS_MS[10]! - 1)).toBe(10);
    expect(latencyBucketOf(LATENCY_BOUNDS_MS[10]!)).toBe(11);
    expect(latencyBucketOf(10 ** 9)).toBe(LATENCY_BOUNDS_MS.length);
  });

  it('interpolates inside the bucket as histogram_quantile does, and gives null for no durations', () => {
    expect(latencyQuantile(new Map(), 0.5)).toBeNull();
    expect(latencyQuantile(new Map([[3, 0]]), 0.5)).toBeNull();
    // Four durations in [100, 108): the median's rank 2 is half way through the bucket.
    const bucket = latencyBucketOf(100);
    expect([LATENCY_BOUNDS_MS[bucket - 1], LATENCY_BOUNDS_MS[bucket]]).toEqual([91, 108]);
    expect(latencyQuantile(new Map([[bucket, 4]]), 0.5)).toBe(91 + (108 - 91) * 0.5);
    // Past the last bound there is no upper end: the last bound.
    expect(latencyQuantile(new Map([[LATENCY_BOUNDS_MS.length, 2]]), 0.95)).toBe(LATENCY_BOUNDS_MS.at(-1));
  });

  it('estimates p50 and p95 of random latencies within the documented precision', () => {
    const random = seededRandom(42);
    for (let round = 0; round < 200; round += 1) {
      const scale = 10 ** (random() * 4);
      const durations = Array.from({ length: 1 + Math.floor(random() * 500) }, () => Math.floor(scale * (0.2 + random() * random() * 5)));
      const histogram = histogramOf(durations);
      for (const q of [0.5, 0.95]) {
        const truth = nearestRank(durations, q);
        const estimate = latencyQuantile(histogram, q)!;
        expect({ round, q, off: Math.abs(estimate - truth) <= Math.max(LATENCY_ABSOLUTE_PRECISION_MS, LATENCY_RELATIVE_PRECISION * truth) }).toEqual({ round, q, off: true });
      }
    }
  });
});
