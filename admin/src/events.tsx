/**
 * The event feed (docs/console.md, "Events"): every ticket change's events, newest first, from
 * `GET /events`, filtered by type, ticket and time, a page at a time; each event's payload from
 * `GET /events/:id`; and, with *Follow live*, new events from `GET /events/stream` put on top as
 * they commit, the stream resumed after the last one received when its connection drops.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { FEED_EVENT_TYPES as EVENT_TYPES, type FeedEvent } from './api.js';
import { followEvents, type FollowState } from './live-events.js';
import { ColumnHeads, FieldError, FormError, formatTime, hashQuery, LoadState, localInputToIso, relativeTime, useSession } from './ui.js';

const PAGE_SIZE = 50;
const TICKET_ID = /^tkt_[A-Za-z0-9]{1,60}$/;
const COLUMNS = ['Time', 'Event', 'Ticket', 'Version', 'Payload'];

/** The filters as the form holds them: times as `datetime-local` values (local time). */
interface Filter {
  types: string[];
  ticketId: string;
  since: string;
  until: string;
}

const NO_FILTER: Filter = { types: [], ticketId: '', since: '', until: '' };

/** `#/events?ticketId=tkt_…&type=ticket.updated`: how another page opens the feed already filtered. */
function filterFromHash(): Filter {
  const query = hashQuery();
  const types = query.getAll('type').filter((type) => (EVENT_TYPES as readonly string[]).includes(type));
  const ticketId = query.get('ticketId') ?? '';
  return { ...NO_FILTER, types, ticketId: TICKET_ID.test(ticketId) ? ticketId : '' };
}

function listQuery(filter: Filter, cursor: string | null): string {
  const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
  for (const type of filter.types) params.append('type', type);
  if (filter.ticketId) params.set('ticketId', filter.ticketId);
  const since = localInputToIso(filter.since);
  if (since) params.set('since', since);
  const until = localInputToIso(filter.until);
  if (until) params.set('until', until);
  if (cursor) params.set('cursor', cursor);
  return params.toString();
}

/** The feed's own order: timestamp, then id, both descending. */
const newestFirst = (a: FeedEvent, b: FeedEvent) => (a.timestamp === b.timestamp ? b.id.localeCompare(a.id) : b.timestamp.localeCompare(a.timestamp));

/** `events` with `more` added, each event once (a live event may also come in a page), newest first. */
function merged(events: FeedEvent[], more: FeedEvent[]): FeedEvent[] {
  const known = new Set(events.map((event) => event.id));
  const added = more.filter((event) => !known.has(event.id) && known.add(event.id));
  return added.length === 0 ? events : [...events, ...added].sort(newestFirst);
}

/** The ticket an event is about, and the version its change made: every ticket event's `data.ticket`. */
function ticketOf(event: FeedEvent): { id: string | null; version: number | null } {
  const ticket = (event.data as { ticket?: { id?: unknown; version?: unknown } }).ticket;
  return { id: typeof ticket?.id === 'string' ? ticket.id : null, version: typeof ticket?.version === 'number' ? ticket.version : null };
}

interface List {
  events: FeedEvent[];
  nextCursor: string | null;
  /** Counts the first pages loaded: a new one (new filters, a retry) restarts following from its top. */
  generation: number;
}

export function EventsPage() {
  const { api, key } = useSession();
  const [filter, setFilter] = useState<Filter>(filterFromHash);
  const [draft, setDraft] = useState<Filter>(filter);
  const [draftErrors, setDraftErrors] = useState<{ ticketId?: string; until?: string }>({});
  const [list, setList] = useState<List | null>(null);
  const [listError, setListError] = useState<string | null>(null);
  const [reload, setReload] = useState(0);
  const [loadingMore, setLoadingMore] = useState(false);
  const [open, setOpen] = useState<string | null>(null);
  const [following, setFollowing] = useState(false);
  const [followState, setFollowState] = useState<FollowState | null>(null);
  // The filters fold away to leave the page to the list; open when one is on.
  const [showFilters, setShowFilters] = useState(false);
  /** The ids that came from the stream, marked in the list. */
  const [arrived, setArrived] = useState<ReadonlySet<string>>(new Set());
  // The follower reads the list's top when it starts, without restarting at each prepended event.
  const listRef = useRef<List | null>(null);
  listRef.current = list;
  const firstPages = useRef(0);
  /** The event a refused resume named, once caught up from: refused again, following stops. */
  const restartedAfter = useRef<string | null>(null);

  const filterKey = listQuery(filter, null);
  useEffect(() => {
    let current = true;
    setList(null);
    setListError(null);
    api<{ events: FeedEvent[]; nextCursor: string | null }>('GET', `/events?${filterKey}`).then(
      (page) => current && setList({ events: page.events, nextCursor: page.nextCursor, generation: ++firstPages.current }),
      (error: unknown) => current && setListError((error as Error).message),
    );
    return () => {
      current = false;
    };
  }, [filterKey, reload]);

  const loadMore = async () => {
    if (!list?.nextCursor) return;
    setLoadingMore(true);
    try {
      const page = await api<{ events: FeedEvent[]; nextCursor: string | null }>('GET', `/events?${listQuery(filter, list.nextCursor)}`);
      setList((before) => before && { ...before, events: merged(before.events, page.events), nextCursor: page.nextCursor });
      setListError(null);
    } catch (error) {
      setListError((error as Error).message);
    } finally {
      setLoadingMore(false);
    }
  };

  const generation = list?.generation ?? 0;
  useEffect(() => {
    // Following starts from a loaded first page: after its newest event, so nothing is missed between the two.
    if (!following || generation === 0) return;
    const stop = new AbortController();
    const ticketId = filter.ticketId;
    const add = (events: FeedEvent[]) => setList((before) => before && { ...before, events: merged(before.events, events) });
    void followEvents({
      key,
      types: filter.types,
      after: listRef.current?.events[0]?.id ?? null,
      signal: stop.signal,
      onState: (state) => {
        if (stop.signal.aborted) return;
        if (state.kind === 'failed' && state.status === 400 && state.after !== null && restartedAfter.current !== state.after) {
          // The event to resume after is no longer kept (pruned while the page was away): catch
          // up from the list, as the API advises, and follow again from its newest event.
          restartedAfter.current = state.after;
          setFollowState({ kind: 'connecting' });
          setReload((n) => n + 1);
          return;
        }
        setFollowState(state);
        if (state.kind === 'failed') setFollowing(false);
      },
      onEvent: (event) => {
        // The stream filters by type only; the ticket filter is applied here.
        if (stop.signal.aborted || (ticketId && ticketOf(event).id !== ticketId)) return;
        setArrived((before) => new Set(before).add(event.id));
        add([event]);
      },
      onOpen: (resumedAfter) => {
        // Opened at the present, not after a known event: what committed between the list's
        // load and this moment is in no stream, so the first page is read again and merged.
        if (resumedAfter !== null) return;
        api<{ events: FeedEvent[] }>('GET', `/events?${filterKey}`).then(
          (page) => !stop.signal.aborted && add(page.events),
          () => undefined,
        );
      },
    });
    return () => stop.abort();
  }, [following, generation]);

  const toggleFollowing = (on: boolean) => {
    setFollowState(null);
    setFollowing(on);
  };

  const apply = (event: Event) => {
    event.preventDefault();
    const ticketId = draft.ticketId.trim();
    const errors: { ticketId?: string; until?: string } = {};
    // The API refuses a malformed id with 400: said here, next to the field, before asking.
    if (ticketId !== '' && !TICKET_ID.test(ticketId)) errors.ticketId = 'must be a ticket id: tkt_ followed by letters and digits';
    const since = localInputToIso(draft.since);
    const until = localInputToIso(draft.until);
    if (since && until && until <= since) errors.until = 'must be after Since';
    setDraftErrors(errors);
    if (Object.keys(errors).length > 0) return;
    // Nothing after `until` can arrive: following a closed window would show nothing, so it stops.
    if (draft.until) toggleFollowing(false);
    setOpen(null);
    setFilter({ ...draft, ticketId });
  };
  const clear = () => {
    setDraft(NO_FILTER);
    setDraftErrors({});
    setFilter(NO_FILTER);
  };

  const activeFilters = [filter.types.length > 0, filter.ticketId, filter.since, filter.until].filter(Boolean).length;
  return (
    <section aria-labelledby="events-title">
      <div class="title-row">
        <h1 id="events-title">Events</h1>
        <label class="check follow-toggle">
          <input type="checkbox" checked={following} disabled={filter.until !== ''} aria-describedby="follow-state" onChange={(e) => toggleFollowing(e.currentTarget.checked)} />
          Follow live
        </label>
      </div>
      <p class="hint">Every change of every ticket, newest first, as webhooks receive them: kept for the retention period, whether or not a webhook was subscribed.</p>
      <FollowStatus following={following} state={followState} untilSet={filter.until !== ''} />
      <details class="tool" open={showFilters || activeFilters > 0} onToggle={(e) => setShowFilters(e.currentTarget.open)}>
        <summary>Filters{activeFilters > 0 ? ` (${activeFilters} on)` : ''}</summary>
        <form class="event-filters" onSubmit={apply} aria-label="Filter events" noValidate>
          <fieldset>
            <legend>Types</legend>
            <p class="hint">None ticked: every type.</p>
            {EVENT_TYPES.map((type) => (
              <label class="check" key={type}>
                <input
                  type="checkbox"
                  checked={draft.types.includes(type)}
                  onChange={(e) => setDraft({ ...draft, types: e.currentTarget.checked ? EVENT_TYPES.filter((t) => t === type || draft.types.includes(t)) : draft.types.filter((t) => t !== type) })}
                />
                {type}
              </label>
            ))}
          </fieldset>
          <div class="filters">
            <div class="field">
              <label for="events-ticket">Ticket id</label>
              <input
                id="events-ticket"
                class="ticket-id-input"
                placeholder="tkt_…"
                spellcheck={false}
                autocomplete="off"
                value={draft.ticketId}
                onInput={(e) => setDraft({ ...draft, ticketId: e.currentTarget.value })}
                {...(draftErrors.ticketId ? { 'aria-invalid': 'true' as const, 'aria-describedby': 'events-ticket-error' } : {})}
              />
              <FieldError id="events-ticket-error" message={draftErrors.ticketId} />
            </div>
            <div class="field">
              <label for="events-since">Since</label>
              <input id="events-since" type="datetime-local" value={draft.since} onChange={(e) => setDraft({ ...draft, since: e.currentTarget.value })} />
            </div>
            <div class="field">
              <label for="events-until">Until</label>
              <input
                id="events-until"
                type="datetime-local"
                value={draft.until}
                onChange={(e) => setDraft({ ...draft, until: e.currentTarget.value })}
                {...(draftErrors.until ? { 'aria-invalid': 'true' as const, 'aria-describedby': 'events-until-error' } : {})}
              />
              <FieldError id="events-until-error" message={draftErrors.until} />
            </div>
          </div>
          <p class="hint">Since is inclusive and Until exclusive, both in this browser's time zone.</p>
          <div class="actions">
            <button type="submit" class="primary">
              Apply filters
            </button>
            <button type="button" onClick={clear}>
              Clear
            </button>
          </div>
        </form>
      </details>
      {list === null ? (
        <LoadState error={listError} retry={() => setReload((n) => n + 1)} />
      ) : (
        <>
          <FormError message={listError} />
          {list.events.length === 0 ? (
            <p>{activeFilters > 0 ? 'No event matches these filters.' : 'No events yet: create or change a ticket and its events show here.'}</p>
          ) : (
            <table class="stack events">
              <caption class="visually-hidden">Events, newest first</caption>
              <ColumnHeads names={COLUMNS} hidden={['Payload']} />
              <tbody>
                {list.events.map((event) => (
                  <EventRow key={event.id} event={event} live={arrived.has(event.id)} open={open === event.id} onToggle={() => setOpen(open === event.id ? null : event.id)} />
                ))}
              </tbody>
            </table>
          )}
          {list.nextCursor && (
            <div class="actions">
              <button type="button" onClick={loadMore} disabled={loadingMore}>
                {loadingMore ? 'Loading…' : 'Load more'}
              </button>
            </div>
          )}
          {!list.nextCursor && list.events.length > 0 && <p class="hint">That is every kept event{activeFilters > 0 ? ' matching these filters' : ''}.</p>}
        </>
      )}
    </section>
  );
}

/** What following is doing, in a line under the title; a refusal as an alert. */
function FollowStatus({ following, state, untilSet }: { following: boolean; state: FollowState | null; untilSet: boolean }) {
  let text: string | null = null;
  let alert = false;
  if (state?.kind === 'failed') {
    text = `Following stopped. ${state.message}`;
    alert = true;
  } else if (!following) {
    text = untilSet ? 'Follow live is off while Until is set: no new event falls before it.' : null;
  } else if (state === null || state.kind === 'connecting') {
    text = 'Connecting…';
  } else if (state.kind === 'live') {
    text = `Live: new events appear at the top as they happen.${state.resumed > 0 ? ` Resumed ${state.resumed === 1 ? 'once' : `${state.resumed} times`} after the connection dropped, missing nothing.` : ''}`;
  } else {
    text = `Reconnecting… ${state.why} Trying again in ${Math.round(state.retryInMs / 1000)} s${state.resumeAfter ? `, after ${state.resumeAfter}` : ''}.`;
  }
  return (
    <div id="follow-state" class={`follow-state follow-${alert ? 'failed' : (state?.kind ?? 'off')}`} role={alert ? 'alert' : 'status'} aria-live="polite">
      {text && <p>{text}</p>}
    </div>
  );
}

function EventRow({ event, live, open, onToggle }: { event: FeedEvent; live: boolean; open: boolean; onToggle: () => void }) {
  const ticket = ticketOf(event);
  return (
    <>
      <tr
        data-event-id={event.id}
        class="event-row"
        onClick={(e) => {
          // The row opens its payload; its link and button do their own thing.
          if (!(e.target as Element).closest('a, button')) onToggle();
        }}
      >
        <td data-label="Time">
          <time dateTime={event.timestamp} title={relativeTime(event.timestamp)}>
            {formatTime(event.timestamp)}
          </time>
        </td>
        <td data-label="Event">
          {event.event}
          {live && <span class="marker">live</span>}
        </td>
        <td data-label="Ticket" class="ticket-cell">
          {ticket.id ? (
            <a href={`#/tickets/${ticket.id}`}>
              <code>{ticket.id}</code>
            </a>
          ) : (
            '—'
          )}
        </td>
        <td data-label="Version">{ticket.version ?? '—'}</td>
        <td class="row-actions">
          <button type="button" aria-expanded={open} aria-controls={`event-${event.id}`} onClick={onToggle}>
            {open ? 'Hide payload' : 'Payload'}
          </button>
        </td>
      </tr>
      {open && (
        <tr class="detail-row">
          <td colSpan={COLUMNS.length} id={`event-${event.id}`}>
            <EventPayload eventId={event.id} />
          </td>
        </tr>
      )}
    </>
  );
}

/** An event as `GET /events/:id` gives it: asked once, since an event never changes. */
function EventPayload({ eventId }: { eventId: string }) {
  const { api } = useSession();
  const [event, setEvent] = useState<FeedEvent | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [round, setRound] = useState(0);
  useEffect(() => {
    let current = true;
    setError(null);
    api<{ event: FeedEvent }>('GET', `/events/${eventId}`).then(
      (answer) => current && setEvent(answer.event),
      (caught: unknown) => current && setError((caught as Error).message),
    );
    return () => {
      current = false;
    };
  }, [eventId, round]);
  if (!event) return <LoadState error={error} retry={() => setRound((n) => n + 1)} />;
  const { id, ...payload } = event;
  return (
    <div class="event-panel">
      <p>
        <span class="label">Event id</span> <code class="wrap-anywhere">{id}</code>
      </p>
      <p class="hint">The payload, as a webhook subscribed to {event.event} receives it (signed) and as the stream sends it.</p>
      <pre class="event-payload">{JSON.stringify(payload, null, 2)}</pre>
    </div>
  );
}
