/**
 * In-process wake-up: a committed change that queued deliveries pokes the worker so that a new
 * event is sent at once rather than at the next poll.
 */
export class DeliveryWakeup {
  readonly #listeners = new Set<() => void>();

  notify(): void {
    for (const listener of this.#listeners) listener();
  }

  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
