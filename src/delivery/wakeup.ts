/**
 * Wake-ups: a committed change that queued deliveries pokes the worker so that a new event is
 * sent at once rather than at the next poll. In this process directly; in other processes (on
 * PostgreSQL) through the database's notification channel.
 */
import type { NotificationChannel } from '../db/notifications.js';

export class DeliveryWakeup {
  readonly #listeners = new Set<() => void>();
  readonly #channel: NotificationChannel | null;

  constructor(channel: NotificationChannel | null = null) {
    this.#channel = channel;
  }

  /** Deliveries were queued (call after the commit). */
  notify(): void {
    this.wakeLocal();
    this.#channel?.publish();
  }

  /** Wakes this process's worker only: another process queued deliveries. */
  wakeLocal(): void {
    for (const listener of this.#listeners) listener();
  }

  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
