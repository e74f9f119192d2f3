// Catching up from the event feed: one ticket whose delivery showed a version gap, or every
// ticket after downtime (docs/delivery.md, "Reconciliation").
import { isTicketEvent } from './ticket-events.mjs';

export class Reconciler {
  #store;
  #api;
  #marginMs;
  #log;
  /** Gap fills under way, by ticket: deliveries of one ticket that arrive together share one. */
  #filling = new Map();
  #catchingUp = null;

  constructor({ store, api, marginMs, log }) {
    this.#store = store;
    this.#api = api;
    this.#marginMs = marginMs;
    this.#log = log;
  }

  get catchingUp() {
    return this.#catchingUp !== null;
  }

  /**
   * Brings one ticket up to at least `version`: its events from the feed, newest first, back to
   * the copy's version, applied oldest first; if the feed no longer has them all (older than the
   * server's retention), the ticket itself (a 404: it was deleted).
   */
  fillGap(ticketId, version) {
    const running = this.#filling.get(ticketId);
    if (running) return running.then(() => this.#fillIfBehind(ticketId, version));
    const fill = this.#fill(ticketId, version).finally(() => this.#filling.delete(ticketId));
    this.#filling.set(ticketId, fill);
    return fill;
  }

  #fillIfBehind(ticketId, version) {
    const known = this.#store.state(ticketId);
    if (known?.deleted || (known?.version ?? 0) >= version) return Promise.resolve();
    return this.fillGap(ticketId, version);
  }

  async #fill(ticketId, version) {
    const from = this.#store.state(ticketId)?.version ?? 0;
    const events = [];
    for await (const page of this.#api.eventPages({ ticketId })) {
      events.push(...page.filter(isTicketEvent));
      // Newest first: once an event at or below the copy's version shows, the rest is older.
      if (page.some((event) => event.data.ticket.version <= from)) break;
    }
    const reached = this.#store.applyChain(ticketId, events);
    if (reached >= version) {
      this.#store.count('gapsFromFeed');
      this.#log(`gap filled from the feed: ${ticketId} ${from} -> ${reached === Infinity ? 'deleted' : reached}`);
      return;
    }
    const ticket = await this.#api.ticket(ticketId);
    this.#store.applySnapshot(ticketId, ticket, version);
    this.#store.count('gapsFromTicket');
    this.#log(`gap filled from GET /tickets/${ticketId} (the feed had ${events.length} events): ${from} -> ${ticket === null ? 'deleted' : ticket.version}`);
  }

  /**
   * Every ticket event since the newest the receiver saw (less the margin), or since the oldest
   * delivery it did not answer 2xx, applied ticket by ticket in version order. Overlap with what
   * it has is harmless: those events are stale. Nothing to do for a receiver that never saw an
   * event: it learns of tickets as their events come (a gap then fills the ticket).
   */
  catchUp() {
    this.#catchingUp ??= this.#catchUp().finally(() => (this.#catchingUp = null));
    return this.#catchingUp;
  }

  async #catchUp() {
    const start = this.#store.catchUpSince(this.#marginMs);
    if (start === null) return;
    const byTicket = new Map();
    let read = 0;
    for await (const page of this.#api.eventPages({ since: start.since })) {
      for (const event of page.filter(isTicketEvent)) {
        read += 1;
        const events = byTicket.get(event.data.ticket.id) ?? [];
        events.push(event);
        byTicket.set(event.data.ticket.id, events);
      }
    }
    for (const [ticketId, events] of byTicket) {
      const newest = Math.max(...events.map((event) => event.data.ticket.version));
      // A window that starts after the copy's version leaves a gap: the ticket's own feed fills it.
      if (this.#store.applyChain(ticketId, events) < newest) await this.fillGap(ticketId, newest);
    }
    this.#store.clearMissed(start.upTo);
    this.#store.count('catchUps');
    this.#store.count('catchUpEventsRead', read);
    this.#log(`caught up from the feed since ${start.since}: ${read} events read, ${byTicket.size} tickets`);
  }
}
