/** The clock is injectable so that back-off and leases can be tested without sleeping. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** ISO 8601 UTC with milliseconds, the only time format of the API and the database. */
export function toIso(epochMs: number): string {
  return new Date(epochMs).toISOString();
}
