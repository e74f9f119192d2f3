import type { EventType } from './event-types.js';

/**
 * The exact body sent to receivers and signed (docs/api.md, "Events and payloads"):
 * `{"event", "timestamp", "data"}`. It is built once, when the event is recorded, and stored as
 * these bytes: every attempt sends and signs the same body.
 */
export function eventPayload(type: EventType, timestamp: string, data: unknown): string {
  return JSON.stringify({ event: type, timestamp, data });
}
