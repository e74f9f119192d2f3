// The receiver's durable copy of the tickets: one SQLite file (better-sqlite3). Every change to
// the copy is written in one transaction together with what makes it safe to repeat: the
// delivery's `webhook-id` (de-duplication), the ticket's version (stale events), the time of the
// newest event seen (where the catch-up after downtime starts) and the counters. The receiver
// answers 2xx only after that transaction has committed.
import Database from 'better-sqlite3';
import { applyEvent, classify, isTicketEvent } from './ticket-events.mjs';

/** What the receiver counts, kept in the file so that the figures survive its restarts. */
export const COUNTERS = Object.freeze([
  'deliveries', // signed deliveries answered 2xx: the sum of the five below
  'applied', // applied as they came (one version above the copy, or a whole ticket past a gap)
  'stale', // at or below the copy's version: dropped
  'duplicates', // a webhook-id already answered 2xx: dropped
  'gapFilled', // more than one version above the copy: the changes between were fetched first
  'ignored', // not a ticket event (webhook.test)
  'jumped', // of `applied`: a whole-ticket event that closed a gap by itself
  'gapsFromFeed', // gaps filled from GET /events?ticketId=
  'gapsFromTicket', // gaps the feed could not fill (past retention): GET /tickets/:id instead
  'feedEventsApplied', // changes applied from the feed (gaps and catch-ups)
  'catchUps', // catch-ups from the feed completed (on start, and for refused deliveries)
  'catchUpEventsRead', // events those catch-ups read
  'refused', // answered 503 by the fault injection (--refuse-rate)
  'rejected', // bad or missing signature: answered 401
  'failed', // answered 503 because a gap could not be filled (the API was unreachable)
]);

const SCHEMA = `
  create table if not exists tickets (
    id text primary key,
    version integer not null,
    -- 1 for a deleted ticket: its tombstone keeps late events stale.
    deleted integer not null default 0,
    ticket text
  );
  -- Deliveries answered 2xx, by webhook-id: a retry of one is a duplicate.
  create table if not exists messages (id text primary key, received_at text not null);
  -- Deliveries answered with something else than 2xx: the server may give up on them, so the
  -- next catch-up starts no later than the oldest (see catchUpSince).
  create table if not exists missed (seq integer primary key autoincrement, message_id text not null unique, event_at text not null, recorded_at text not null);
  create table if not exists counters (name text primary key, value integer not null);
  create table if not exists settings (name text primary key, value text not null);
`;

export class TicketStore {
  #db;
  #statements;

  constructor(path) {
    this.#db = new Database(path);
    this.#db.pragma('journal_mode = WAL');
    // FULL: a 2xx is a promise that the change is kept, even across a power cut, not only a crash.
    this.#db.pragma('synchronous = FULL');
    this.#db.exec(SCHEMA);
    const db = this.#db;
    this.#statements = {
      ticket: db.prepare('select version, deleted, ticket from tickets where id = ?'),
      saveTicket: db.prepare(
        'insert into tickets (id, version, deleted, ticket) values (@id, @version, @deleted, @ticket) on conflict (id) do update set version = excluded.version, deleted = excluded.deleted, ticket = excluded.ticket',
      ),
      liveTickets: db.prepare('select ticket from tickets where deleted = 0 order by id'),
      message: db.prepare('select 1 from messages where id = ?'),
      saveMessage: db.prepare('insert into messages (id, received_at) values (?, ?)'),
      pruneMessages: db.prepare('delete from messages where received_at < ?'),
      saveMissed: db.prepare('insert into missed (message_id, event_at, recorded_at) values (?, ?, ?) on conflict (message_id) do nothing'),
      forgetMissed: db.prepare('delete from missed where message_id = ?'),
      oldestMissed: db.prepare('select min(event_at) as at, max(seq) as seq from missed'),
      missedBefore: db.prepare('select 1 from missed where recorded_at < ? limit 1'),
      clearMissed: db.prepare('delete from missed where seq <= ?'),
      count: db.prepare('insert into counters (name, value) values (?, ?) on conflict (name) do update set value = value + excluded.value'),
      counters: db.prepare('select name, value from counters'),
      setting: db.prepare('select value from settings where name = ?'),
      saveSetting: db.prepare('insert into settings (name, value) values (?, ?) on conflict (name) do update set value = excluded.value'),
    };
    this.receive = this.#db.transaction(this.#receive.bind(this));
    this.applyChain = this.#db.transaction(this.#applyChain.bind(this));
    this.applySnapshot = this.#db.transaction(this.#applySnapshot.bind(this));
  }

  /** `{version, deleted, ticket}` of the copy, or null for a ticket never seen. */
  state(ticketId) {
    const row = this.#statements.ticket.get(ticketId);
    return row === undefined ? null : { version: row.version, deleted: row.deleted === 1, ticket: row.ticket === null ? null : JSON.parse(row.ticket) };
  }

  /**
   * One verified delivery, in one transaction: de-duplicated, classified, applied and recorded.
   * Returns the outcome: `duplicate`, `stale`, `applied`, `ignored`, `gapFilled` (stale only
   * because its gap was just filled: `afterGapFill`), or `gap` (nothing written: the caller
   * fills the gap and calls again).
   */
  #receive(messageId, payload, afterGapFill = false) {
    if (this.#statements.message.get(messageId) !== undefined) {
      this.count('duplicates');
      this.count('deliveries');
      this.#statements.forgetMissed.run(messageId);
      return 'duplicate';
    }
    let outcome;
    if (!isTicketEvent(payload)) outcome = 'ignored';
    else {
      const known = this.state(payload.data.ticket.id);
      const verdict = classify(known, payload);
      if (verdict === 'gap') return 'gap';
      if (verdict === 'stale') outcome = afterGapFill ? 'gapFilled' : 'stale';
      else {
        this.#apply(known, payload);
        outcome = 'applied';
        if (verdict === 'jump') this.count('jumped');
      }
      this.#sawEventAt(payload.timestamp);
    }
    this.#statements.saveMessage.run(messageId, new Date().toISOString());
    this.#statements.forgetMissed.run(messageId);
    this.count(outcome);
    this.count('deliveries');
    return outcome;
  }

  /**
   * Events of one ticket from the feed, applied oldest version first, in one transaction, up to
   * the first that cannot be applied (a difference past a version the feed does not have).
   * Returns the copy's version afterwards.
   */
  #applyChain(ticketId, events) {
    const ordered = events.filter((event) => event.data.ticket.id === ticketId).sort((a, b) => a.data.ticket.version - b.data.ticket.version);
    let known = this.state(ticketId);
    for (const event of ordered) {
      const verdict = classify(known, event);
      if (verdict === 'stale') continue;
      if (verdict === 'gap') break;
      this.#apply(known, event);
      this.#sawEventAt(event.timestamp);
      this.count('feedEventsApplied');
      known = this.state(ticketId);
    }
    return known?.deleted ? Number.POSITIVE_INFINITY : (known?.version ?? 0);
  }

  /** The ticket as `GET /tickets/:id` gave it, or its deletion (null: a 404), if newer than the copy. */
  #applySnapshot(ticketId, ticket, deletedAtLeast) {
    const known = this.state(ticketId);
    if (known?.deleted) return;
    if (ticket === null) {
      this.#statements.saveTicket.run({ id: ticketId, version: Math.max(deletedAtLeast, known?.version ?? 0), deleted: 1, ticket: null });
    } else if (ticket.version > (known?.version ?? 0)) {
      this.#statements.saveTicket.run({ id: ticketId, version: ticket.version, deleted: 0, ticket: JSON.stringify(ticket) });
    }
  }

  #apply(known, payload) {
    const next = applyEvent(known?.ticket ?? null, payload);
    this.#statements.saveTicket.run({ id: payload.data.ticket.id, version: next.version, deleted: next.deleted ? 1 : 0, ticket: next.ticket === null ? null : JSON.stringify(next.ticket) });
  }

  #sawEventAt(timestamp) {
    // ISO times of one format: text order is time order.
    const last = this.lastEventAt();
    if (last === null || timestamp > last) this.#statements.saveSetting.run('lastEventAt', timestamp);
  }

  /** The newest event time seen, from a delivery or the feed; null before the first. */
  lastEventAt() {
    return this.#statements.setting.get('lastEventAt')?.value ?? null;
  }

  /** A delivery answered with something else than 2xx: the server might give up on it. */
  recordMissed(messageId, eventAt) {
    this.#statements.saveMissed.run(messageId, eventAt, new Date().toISOString());
  }

  /**
   * Where a catch-up must start to cover every event this receiver may not have: the newest event
   * it saw minus the margin (events that committed a little after their time), and no later than
   * the oldest delivery it did not answer 2xx. `upTo` marks the missed deliveries it covers.
   */
  catchUpSince(marginMs) {
    const last = this.lastEventAt();
    const missed = this.#statements.oldestMissed.get();
    const candidates = [];
    if (last !== null) candidates.push(Date.parse(last) - marginMs);
    if (missed.at !== null) candidates.push(Date.parse(missed.at) - marginMs);
    if (candidates.length === 0) return null;
    return { since: new Date(Math.min(...candidates)).toISOString(), upTo: missed.seq ?? 0 };
  }

  /**
   * Whether some delivery was not answered 2xx, before `before` (ISO) if given, and neither a
   * retry nor a catch-up has covered it since.
   */
  hasMissed(before = null) {
    if (before !== null) return this.#statements.missedBefore.get(before) !== undefined;
    return this.#statements.oldestMissed.get().at !== null;
  }

  /** After a catch-up that started when `upTo` was the last missed delivery recorded. */
  clearMissed(upTo) {
    this.#statements.clearMissed.run(upTo);
  }

  /** Forgets webhook-ids answered before `before` (ISO): the server retries for days, not forever. */
  pruneMessages(before) {
    return this.#statements.pruneMessages.run(before).changes;
  }

  count(name, by = 1) {
    this.#statements.count.run(name, by);
  }

  counters() {
    const values = Object.fromEntries(COUNTERS.map((name) => [name, 0]));
    for (const row of this.#statements.counters.all()) values[row.name] = row.value;
    return values;
  }

  /** The copy: every ticket not deleted, by id. */
  tickets() {
    return this.#statements.liveTickets.all().map((row) => JSON.parse(row.ticket));
  }

  close() {
    this.#db.close();
  }
}
