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

describe('reference receiver: the store', () => {
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
