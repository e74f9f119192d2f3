import { AppError, type ErrorDetail } from '../errors.js';

/** The clock is injectable so that back-off and leases can be tested without sleeping. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** ISO 8601 UTC with milliseconds, the only time format of the API and the database. */
export function toIso(epochMs: number): string {
  return new Date(epochMs).toISOString();
}

/**
 * The time of a change to something stamped `previous`: now, but at least 1 ms later, so that
 * `updatedAt` moves forward even for two changes in one millisecond or after a clock step back
 * (receivers order a resource's events by it).
 */
export function nextChangeTime(clock: Clock, previous: string): string {
  return toIso(Math.max(clock.now(), Date.parse(previous) + 1));
}

/**
 * The instant an ISO 8601 UTC time names, normalised to milliseconds, or null. A string of the
 * right shape may still name no instant (`2025-13-45T10:30:00Z`) or roll over into another day
 * (`2025-02-30`, `T24:00:00`): both are null, never a silent shift.
 */
export function parseIsoInstant(value: string): string | null {
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) return null;
  const iso = new Date(ms).toISOString();
  return iso.slice(0, 19) === value.slice(0, 19) ? iso : null;
}

/** `since` and `until` as instants; every one that names no real time is a 400, all at once. */
export function parseTimeWindow(window: { since?: string; until?: string }): { since?: string; until?: string } {
  const details: ErrorDetail[] = [];
  const result: { since?: string; until?: string } = {};
  for (const key of ['since', 'until'] as const) {
    const value = window[key];
    if (value === undefined) continue;
    const instant = parseIsoInstant(value);
    if (instant === null) details.push({ path: key, message: 'must be a valid ISO 8601 UTC time' });
    else result[key] = instant;
  }
  if (details.length > 0) throw AppError.validation(details);
  return result;
}
