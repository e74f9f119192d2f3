/**
 * When to try again, as data: the schedule lists the delay before each retry (seconds), each
 * with ±20% jitter so that receivers coming back from an outage are not hit in lockstep.
 * `Retry-After` on a 429 or 503 is a floor on the next delay, capped at 10 hours; it adds no
 * attempt.
 */
export const JITTER = 0.2;
export const RETRY_AFTER_CAP_SECONDS = 10 * 60 * 60;
export const RETRY_AFTER_STATUSES: ReadonlySet<number> = new Set([429, 503]);

/** Milliseconds until the next attempt after `attemptsMade` failed ones, or null when spent. */
export function nextRetryDelayMs(
  schedule: readonly number[],
  attemptsMade: number,
  random: () => number,
  retryAfterSeconds: number | null = null,
): number | null {
  const base = schedule[attemptsMade - 1];
  if (base === undefined) return null;
  const jittered = base * 1000 * (1 - JITTER + 2 * JITTER * random());
  if (retryAfterSeconds === null) return Math.round(jittered);
  return Math.round(Math.max(jittered, Math.min(retryAfterSeconds, RETRY_AFTER_CAP_SECONDS) * 1000));
}

/** `Retry-After` as seconds from now: delta-seconds or an HTTP date; null if absent or invalid. */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | null {
  if (value === undefined) return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return null;
  return Math.max(0, (date - nowMs) / 1000);
}
