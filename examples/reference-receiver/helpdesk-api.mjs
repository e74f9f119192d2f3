// The two reads of the Helpdesk API a receiver needs to catch up (docs/api.md, "The event feed"
// and "Tickets"): the event feed, newest first, page by page, and one ticket.
import { TICKET_EVENT_TYPES } from './ticket-events.mjs';

const PAGE_SIZE = 100;
const REQUEST_TIMEOUT_MS = 15_000;

export class HelpdeskApi {
  #base;
  #key;

  /** `url`: the server, e.g. http://127.0.0.1:8080; `key`: an admin API key (the feed is admin only). */
  constructor(url, key) {
    this.#base = `${url.replace(/\/+$/, '')}/helpdesk/api/v1`;
    this.#key = key;
  }

  async #get(path) {
    const response = await fetch(`${this.#base}${path}`, {
      headers: { authorization: `Bearer ${this.#key}`, accept: 'application/json' },
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const text = await response.text();
    if (response.status === 404) return null;
    if (!response.ok) throw new Error(`GET ${path}: ${response.status} ${text.slice(0, 300)}`);
    return JSON.parse(text);
  }

  /**
   * Pages of ticket events, newest first (`{ticketId?, since?}`), one page per iteration, each
   * an array of payloads `{event, timestamp, data}` (the feed's `id` is left out: the version is
   * what places an event).
   */
  async *eventPages(filter) {
    let cursor = null;
    do {
      const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
      for (const type of TICKET_EVENT_TYPES) query.append('type', type);
      if (filter.ticketId !== undefined) query.set('ticketId', filter.ticketId);
      if (filter.since !== undefined) query.set('since', filter.since);
      if (cursor !== null) query.set('cursor', cursor);
      const page = await this.#get(`/events?${query}`);
      if (page === null) throw new Error('GET /events: 404 (a server without the event feed?)');
      yield page.events.map(({ event, timestamp, data }) => ({ event, timestamp, data }));
      cursor = page.nextCursor;
    } while (cursor !== null);
  }

  /** The ticket as it is now, or null when the server has no such ticket (deleted). */
  async ticket(id) {
    const body = await this.#get(`/tickets/${encodeURIComponent(id)}`);
    return body === null ? null : body.ticket;
  }
}
