/**
 * The reference receiver's rules (examples/reference-receiver/): where an event stands against
 * the copy, what applying it makes, and its store's transactions on a real SQLite file. The
 * whole receiver against the real server is test/e2e/reference-receiver.test.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

// Plain .mjs without declarations: typed here by what the tests use.
interface Payload {
  event: string;
  timestamp: string;
  data: { ticket: Record<string, unknown> & { id: string; version: number } };
}
interface Known {
  version: number;
  deleted: boolean;
  ticket: Record<string, unknown> | null;
}
interface TicketEvents {
  classify(known: { version: number; deleted: boolean } | null, payload: Payload): 'stale' | 'next' | 'jump' | 'gap';
  applyEvent(ticket: Record<string, unknown> | null, payload: Payload): { ticket: Record<string, unknown> | null; version: number; deleted: boolean };
}
interface Store {
  receive(messageId: string, payload: unknown, afterGapFill?: boolean): string;
  applyChain(ticketId: string, events: Payload[]): number;
  applySnapshot(ticketId: string, ticket: Record<string, unknown> | null, deletedAtLeast: number): void;
  state(ticketId: string): Known | null;
  recordMissed(messageId: string, eventAt: string): void;
  catchUpSince(marginMs: number): { since: string; upTo: number } | null;
  clearMissed(upTo: number): void;
  hasMissed(): boolean;
  lastEventAt(): string | null;
  counters(): Record<string, number>;
  tickets(): Record<string, unknown>[];
  close(): void;
}

const modulePath = (name: string) => new URL(`../../../examples/reference-receiver/${name}`, import.meta.url).href;
const { classify, applyEvent } = (await import(modulePath('ticket-events.mjs'))) as TicketEvents;
const { TicketStore } = (await import(modulePath('ticket-store.mjs'))) as { TicketStore: new (path: string) => Store };
interface FeedApi {
  eventPages(filter: { ticketId?: string; since?: string }): AsyncGenerator<Payload[]>;
  ticket(id: string): Promise<Record<string, unknown> | null>;
}
interface Reconciler {
  fillGap(ticketId: string, version: number): Promise<void>;
  catchUp(): Promise<void>;
}
const { Reconciler } = (await import(modulePath('reconciler.mjs'))) as {
  Reconciler: new (options: { store: Store; api: FeedApi; marginMs: number; log: (line: string) => void }) => Reconciler;
};

const base = {
  id: 'tkt_1',
  subject: 'Printer on fire',
  description: '',
  status: 'open',
  priority: 'normal',
  assigneeId: null,
  requesterEmail: null,
  tags: ['a'],
  customFields: { tier: 'gold', seats: 3 },
  version: 1,
  createdAt: '2026-01-01T00:00:00.000Z',
  updatedAt: '2026-01-01T00:00:00.000Z',
};
const at = (second: number) => `2026-01-01T00:00:${String(second).padStart(2, '0')}.000Z`;
const created = (ticket = base): Payload => ({ event: 'ticket.created', timestamp: ticket.createdAt, data: { ticket } });
const updated = (version: number, updatedFields: Record<string, { from: unknown; to: unknown }>, id = 'tkt_1'): Payload => ({
  event: 'ticket.updated',
  timestamp: at(version),
  data: { ticket: { id, version, updatedFields } },
});
const whole = (event: string, ticket: Record<string, unknown> & { id: string; version: number }): Payload => ({ event, timestamp: at(ticket.version), data: { ticket } });

describe('reference receiver: an event against the copy', () => {
  it('is stale at or below the version applied, and after a deletion whatever its version', () => {
    expect(classify({ version: 3, deleted: false }, updated(3, {}))).toBe('stale');
    expect(classify({ version: 3, deleted: false }, updated(2, {}))).toBe('stale');
    expect(classify({ version: 4, deleted: true }, whole('ticket.resolved', { ...base, version: 9 }))).toBe('stale');
  });

  it('is the next change one version above, and a gap further up unless it carries the whole ticket', () => {
    expect(classify(null, created())).toBe('next');
    expect(classify({ version: 3, deleted: false }, updated(4, {}))).toBe('next');
    expect(classify({ version: 3, deleted: false }, updated(5, {}))).toBe('gap');
    expect(classify(null, updated(2, {}))).toBe('gap');
    expect(classify({ version: 3, deleted: false }, whole('ticket.assignment.changed', { ...base, version: 6 }))).toBe('jump');
    expect(classify({ version: 3, deleted: false }, whole('ticket.deleted', { ...base, version: 7 }))).toBe('jump');
  });

  it('applies an update field by field: custom fields key by key (null removes), tags whole, updatedAt the change time', () => {
    const next = applyEvent(base, updated(2, {
      status: { from: 'open', to: 'pending' },
      assigneeId: { from: null, to: 'usr_9' },
      tags: { from: ['a'], to: ['a', 'b'] },
      customFields: { from: { tier: 'gold', seats: 3, ['__proto__']: null }, to: { tier: null, seats: 4, ['__proto__']: 'odd' } },
    }));
    expect(next.ticket).toEqual({ ...base, status: 'pending', assigneeId: 'usr_9', tags: ['a', 'b'], customFields: { seats: 4, ['__proto__']: 'odd' }, version: 2, updatedAt: at(2) });
    expect(Object.getPrototypeOf(next.ticket!.customFields)).toBe(Object.prototype);
    expect(base.customFields).toEqual({ tier: 'gold', seats: 3 });
  });

  it('takes a whole-ticket event as it is, and a deletion as a tombstone', () => {
    const resolved = { ...base, status: 'resolved', version: 5 };
    expect(applyEvent(base, whole('ticket.resolved', resolved))).toEqual({ ticket: resolved, version: 5, deleted: false });
    expect(applyEvent(base, whole('ticket.deleted', { ...base, version: 2 }))).toEqual({ ticket: null, version: 2, deleted: true });
  });
});

const dirs: string[] = [];
const stores: Store[] = [];
const open = (dir = mkdtempSync(join(tmpdir(), 'reference-receiver-'))) => {
  if (!dirs.includes(dir)) dirs.push(dir);
  const store = new TicketStore(join(dir, 'copy.db'));
  stores.push(store);
  return { store, dir };
};
afterEach(() => {
  for (const store of stores.splice(0)) store.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('reference receiver: the store', () => {

  it('applies, drops duplicates by webhook-id and stale events by version, and keeps it all across a reopen', () => {
    const { store, dir } = open();
    expect(store.receive('msg_1', created())).toBe('applied');
    expect(store.receive('msg_1', created())).toBe('duplicate');
    expect(store.receive('msg_2', updated(2, { subject: { from: base.subject, to: 'Fixed' } }))).toBe('applied');
    expect(store.receive('msg_3', whole('ticket.resolved', { ...base, subject: 'Fixed', version: 2, updatedAt: at(2) }))).toBe('stale');
    expect(store.receive('msg_4', { event: 'webhook.test', timestamp: at(9), data: { webhook: { id: 'whk_1', name: 'x' } } })).toBe('ignored');
    store.close();
    stores.length = 0;
    const reopened = open(dir).store;
    expect(reopened.receive('msg_2', updated(2, {}))).toBe('duplicate');
    expect(reopened.tickets()).toEqual([{ ...base, subject: 'Fixed', version: 2, updatedAt: at(2) }]);
    expect(reopened.lastEventAt()).toBe(at(2));
    expect(reopened.counters()).toMatchObject({ deliveries: 6, applied: 2, stale: 1, duplicates: 2, ignored: 1 });
  });

  it('writes nothing for a gap, and after the chain from the feed counts the delivery as gap-filled', () => {
    const { store } = open();
    store.receive('msg_1', created());
    const gapEvent = updated(4, { priority: { from: 'high', to: 'low' } });
    expect(store.receive('msg_4', gapEvent)).toBe('gap');
    expect(store.state('tkt_1')!.version).toBe(1);
    // The feed, newest first and two events sharing a version: applied in version order.
    const feed = [gapEvent, whole('ticket.assignment.changed', { ...base, priority: 'high', assigneeId: 'usr_2', version: 3, updatedAt: at(3) }), updated(3, { priority: { from: 'normal', to: 'high' }, assigneeId: { from: null, to: 'usr_2' } }), updated(2, { priority: { from: 'normal', to: 'normal' } })];
    expect(store.applyChain('tkt_1', feed)).toBe(4);
    expect(store.receive('msg_4', gapEvent, true)).toBe('gapFilled');
    expect(store.tickets()).toEqual([{ ...base, priority: 'low', assigneeId: 'usr_2', version: 4, updatedAt: at(4) }]);
  });

  it('stops a chain at a version the feed lacks, and takes a snapshot or a 404 instead', () => {
    const { store } = open();
    store.receive('msg_1', created());
    expect(store.applyChain('tkt_1', [updated(3, { subject: { from: 'x', to: 'y' } })])).toBe(1);
    store.applySnapshot('tkt_1', { ...base, subject: 'y', version: 3 }, 3);
    expect(store.state('tkt_1')).toMatchObject({ version: 3, deleted: false });
    store.applySnapshot('tkt_1', null, 5);
    expect(store.state('tkt_1')).toMatchObject({ version: 5, deleted: true, ticket: null });
    expect(store.receive('msg_9', whole('ticket.resolved', { ...base, version: 9 }))).toBe('stale');
    expect(store.tickets()).toEqual([]);
  });

  it('starts a catch-up at the newest event seen less the margin, or earlier for a delivery not answered 2xx', () => {
    const { store } = open();
    expect(store.catchUpSince(1000)).toBeNull();
    store.receive('msg_1', { event: 'ticket.created', timestamp: at(30), data: { ticket: { ...base, createdAt: at(30), updatedAt: at(30) } } });
    expect(store.catchUpSince(10_000)).toEqual({ since: at(20), upTo: 0 });
    store.recordMissed('msg_0', at(5));
    store.recordMissed('msg_2', at(40));
    const start = store.catchUpSince(1000)!;
    expect(start.since).toBe(at(4));
    store.recordMissed('msg_3', at(41));
    store.clearMissed(start.upTo);
    expect(store.catchUpSince(1000)!.since).toBe(at(29));
    // A missed delivery answered 2xx on a retry is no longer missed.
    expect(store.receive('msg_3', updated(2, { subject: { from: base.subject, to: 'z' } }))).toBe('applied');
    expect(store.hasMissed()).toBe(false);
  });
});

/** The feed as the server pages it (newest first, 100 a page), over events the test holds; it counts the pages read. */
function feedOf(events: Payload[], tickets: Record<string, Record<string, unknown> | null> = {}) {
  const reads: string[] = [];
  const api: FeedApi = {
    async *eventPages(filter) {
      const matching = events
        .filter((event) => (filter.ticketId === undefined || event.data.ticket.id === filter.ticketId) && (filter.since === undefined || event.timestamp >= filter.since))
        .sort((a, b) => b.timestamp.localeCompare(a.timestamp) || b.data.ticket.version - a.data.ticket.version);
      for (let i = 0; i < matching.length || i === 0; i += 100) {
        reads.push(`${filter.ticketId ?? 'all'} page ${i / 100 + 1}`);
        yield matching.slice(i, i + 100);
      }
    },
    async ticket(id) {
      reads.push(`ticket ${id}`);
      return tickets[id] ?? null;
    },
  };
  return { api, reads };
}

const history = (id: string, versions: number) => [
  { event: 'ticket.created', timestamp: at(0), data: { ticket: { ...base, id } } },
  ...Array.from({ length: versions - 1 }, (_, i) => ({ ...updated(i + 2, { subject: { from: `s${i + 1}`, to: `s${i + 2}` } }, id), timestamp: new Date(Date.parse(at(0)) + (i + 2) * 1000).toISOString() })),
];

describe('reference receiver: catching up from the feed', () => {
  it('fills a gap from the ticket\'s feed, reading newest first only back to the version it has', async () => {
    const { store } = open();
    const events = history('tkt_1', 250);
    store.applyChain('tkt_1', events.slice(0, 240));
    const { api, reads } = feedOf(events);
    await new Reconciler({ store, api, marginMs: 0, log: () => undefined }).fillGap('tkt_1', 250);
    expect(reads).toEqual(['tkt_1 page 1']);
    expect(store.state('tkt_1')).toMatchObject({ version: 250, ticket: { subject: 's250' } });
    expect(store.counters()).toMatchObject({ gapsFromFeed: 1, feedEventsApplied: 250 });
  });

  it('takes the ticket itself when the feed no longer reaches back (retention), and a 404 as its deletion', async () => {
    const { store } = open();
    const events = history('tkt_1', 6);
    store.applyChain('tkt_1', events.slice(0, 1));
    const now = { ...base, subject: 's6', version: 6 };
    const { api, reads } = feedOf(events.slice(4), { tkt_1: now });
    const reconciler = new Reconciler({ store, api, marginMs: 0, log: () => undefined });
    await reconciler.fillGap('tkt_1', 6);
    expect(reads).toEqual(['tkt_1 page 1', 'ticket tkt_1']);
    expect(store.state('tkt_1')).toMatchObject({ version: 6, deleted: false, ticket: now });

    store.applyChain('tkt_2', history('tkt_2', 1));
    await new Reconciler({ store, api: feedOf([]).api, marginMs: 0, log: () => undefined }).fillGap('tkt_2', 3);
    expect(store.state('tkt_2')).toMatchObject({ version: 3, deleted: true });
    expect(store.counters()).toMatchObject({ gapsFromTicket: 2 });
  });

  it('reads the feed once for deliveries of one ticket that find the same gap together', async () => {
    const { store } = open();
    const events = history('tkt_1', 5);
    store.applyChain('tkt_1', events.slice(0, 1));
    const { api, reads } = feedOf(events);
    const reconciler = new Reconciler({ store, api, marginMs: 0, log: () => undefined });
    await Promise.all([reconciler.fillGap('tkt_1', 4), reconciler.fillGap('tkt_1', 5), reconciler.fillGap('tkt_1', 3)]);
    expect(reads).toEqual(['tkt_1 page 1']);
    expect(store.state('tkt_1')!.version).toBe(5);
  });

  it('catches up every ticket since the newest event seen less the margin, filling a ticket whose window starts past its copy', async () => {
    const { store } = open();
    const one = history('tkt_1', 30);
    const two = history('tkt_2', 30);
    store.applyChain('tkt_1', one.slice(0, 20));
    store.applyChain('tkt_2', two.slice(0, 5));
    store.recordMissed('msg_1', one[25]!.timestamp);
    expect(store.lastEventAt()).toBe(one[19]!.timestamp);
    const { api, reads } = feedOf([...one, ...two]);
    await new Reconciler({ store, api, marginMs: 3000, log: () => undefined }).catchUp();
    // From the 17th version on (the 20th's time less 3 s): tkt_2's window starts at its 17th, so its own feed fills 6..16.
    expect(reads).toEqual(['all page 1', 'tkt_2 page 1']);
    expect(store.state('tkt_1')).toMatchObject({ version: 30, ticket: { subject: 's30' } });
    expect(store.state('tkt_2')).toMatchObject({ version: 30, ticket: { subject: 's30' } });
    expect(store.hasMissed()).toBe(false);
    expect(store.counters()).toMatchObject({ catchUps: 1, catchUpEventsRead: 28, gapsFromFeed: 1 });
  });
});
