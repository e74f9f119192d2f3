/**
 * Attempt latency as a histogram, so that percentiles can be had from a grouped SQL count on
 * both databases (SQLite has no percentile function) and from a bounded number of rows however
 * many attempts there were.
 *
 * Bucket `i` holds the durations `[LATENCY_BOUNDS_MS[i - 1], LATENCY_BOUNDS_MS[i])` (from 0 for
 * the first); the bucket after the last bound holds anything longer. The bounds grow by 2^(1/4),
 * rounded to whole milliseconds (durations are whole milliseconds), up to 2^22 ms (70 minutes),
 * far past an attempt's 15 s limit (docs/delivery.md), so the last bucket stays empty.
 */
export const LATENCY_BOUNDS_MS: readonly number[] = Object.freeze([...new Set(Array.from({ length: 89 }, (_, k) => Math.round(2 ** (k / 4))))]);

/**
 * An estimate is off by less than the width of the bucket the true value lies in: at most 20 %
 * of the value, or 4 ms for values under 20 ms (docs/api.md, "Activity").
 */
export const LATENCY_RELATIVE_PRECISION = 0.2;
export const LATENCY_ABSOLUTE_PRECISION_MS = 4;

/** The bucket a duration falls in: the index of the first bound above it. */
export function latencyBucketOf(durationMs: number): number {
  const index = LATENCY_BOUNDS_MS.findIndex((bound) => durationMs < bound);
  return index === -1 ? LATENCY_BOUNDS_MS.length : index;
}

/**
 * The q-quantile (0 < q <= 1) of the durations counted per bucket, interpolated linearly inside
 * the bucket that holds the rank `q × total`, as Prometheus' histogram_quantile does; null with
 * no durations. A rank in the bucket past the last bound gives that bound: it has no upper end.
 */
export function latencyQuantile(counts: ReadonlyMap<number, number>, q: number): number | null {
  let total = 0;
  for (const count of counts.values()) total += count;
  if (total === 0) return null;
  const rank = q * total;
  let below = 0;
  for (const bucket of [...counts.keys()].sort((a, b) => a - b)) {
    const count = counts.get(bucket)!;
    if (count > 0 && below + count >= rank) {
      const lower = bucket === 0 ? 0 : LATENCY_BOUNDS_MS[bucket - 1]!;
      if (bucket >= LATENCY_BOUNDS_MS.length) return lower;
      return lower + ((LATENCY_BOUNDS_MS[bucket]! - lower) * (rank - below)) / count;
    }
    below += count;
  }
  return null;
}
