/**
 * docs/api.md, "Tickets" and "Events and payloads" (the events a change makes), read back from the events table. A
 * catch-all webhook (the worker is not started, so nothing is sent) gives every event a delivery
 * whose `seq` is the queue order, which is the order the events were made in.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Clock } from '../../../src/shared/time.js';
import { describeEachDialect } from '../../helpers/dialects.js';
import { startTestServer, type ApiResponse, type TestServer } from '../../helpers/server.js';

const ALL_EVENTS = ['ticket.created', 'ticket.updated', 'ticket.deleted', 'ticket.assignment.changed', 'ticket.resolved'];
const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/**
 * Real time, but never the same millisecond twice: each request gets its own timestamp, so an
 * unchanged `updatedAt` really means "not touched", and "newest first" has one right answer.
 */
function strictlyIncreasingClock(): Clock {
  let last = 0;
  return { now: () => (last = Math.max(Date.now(), last + 1)) };
}

interface StoredEvent {
  type: string;
  ticketId: string | null;
  createdAt: string;
  payload: { event: string; timestamp: string; data: Record<string, unknown> };
}

/** The editable part of a ticket, for restating it whole in a PUT. */
function editable(ticket: Record<string, unknown>): Record<string, unknown> {
  const { id: _id, version: _version, createdAt: _createdAt, updatedAt: _updatedAt, ...rest } = ticket;
  return rest;
}

function expectError(response: ApiResponse, status: number, code: string): void {
  expect(response.status, JSON.stringify(response.body)).toBe(status);
  expect(response.body.error.code).toBe(code);
}

function expectValidation(response: ApiResponse, path: string): void {
  expectError(response, 400, 'validation_failed');
  expect(response.body.error.details.map((d: { path: string }) => d.path)).toContain(path);
}

describeEachDialect('tickets', (dialect) => {
  let server: TestServer;
  let catchAllWebhookId: string;
  let agent: { key: string; userId: string };
  let otherAgent: { key: string; userId: string };

  beforeAll(async () => {
    server = await startTestServer(dialect, { startWorker: false, runtime: { clock: strictlyIncreasingClock() } });
    const webhook = await server.request('POST', '/webhooks', {
      body: { webhook: { name: 'catch-all', targetUrl: 'https://127.0.0.1:9/never-called', events: ALL_EVENTS } },
    });
    expect(webhook.status).toBe(201);
    catchAllWebhookId = webhook.body.webhook.id;
    agent = await server.keyFor('agent');
    otherAgent = await server.keyFor('agent');
  });
  afterAll(async () => {
    await server?.close();
  });

  const db = () => server.runtime.database.db;

  /** The events of a ticket in the order they were made. */
  async function eventsOf(ticketId: string): Promise<StoredEvent[]> {
    const rows = await db().selectFrom('events').selectAll().where('ticket_id', '=', ticketId).execute();
    const deliveries = await db()
      .selectFrom('deliveries')
      .select(['event_id', 'seq'])
      .where('webhook_id', '=', catchAllWebhookId)
      .where('event_id', 'in', rows.length > 0 ? rows.map((r) => r.id) : [''])
      .execute();
    const seqOf = new Map(deliveries.map((d) => [d.event_id, Number(d.seq)]));
    // Every event was queued for the catch-all webhook in the same transaction.
    expect(seqOf.size).toBe(rows.length);
    return rows
      .sort((a, b) => seqOf.get(a.id)! - seqOf.get(b.id)!)
      .map((row) => {
        const payload = JSON.parse(row.payload);
        expect(Object.keys(payload).sort()).toEqual(['data', 'event', 'timestamp']);
        expect(payload.event).toBe(row.type);
        expect(payload.timestamp).toBe(row.created_at);
        return { type: row.type, ticketId: row.ticket_id, createdAt: row.created_at, payload };
      });
  }

  async function countEvents(): Promise<number> {
    const row = await db().selectFrom('events').select((eb) => eb.fn.countAll<number | string>().as('n')).executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async function countTickets(): Promise<number> {
    const row = await db().selectFrom('tickets').select((eb) => eb.fn.countAll<number | string>().as('n')).executeTakeFirstOrThrow();
    return Number(row.n);
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tickets are arbitrary JSON here
  async function createTicket(fields: Record<string, unknown> = {}, key?: string): Promise<any> {
    const response = await server.request('POST', '/tickets', { body: { ticket: { subject: 'Printer on fire', ...fields } }, ...(key === undefined ? {} : { key }) });
    expect(response.status, JSON.stringify(response.body)).toBe(201);
    return response.body.ticket;
  }

  async function put(id: string, fields: Record<string, unknown>, key?: string): Promise<ApiResponse> {
    return server.request('PUT', `/tickets/${id}`, { body: { ticket: fields }, ...(key === undefined ? {} : { key }) });
  }

  /** Every ticket a query lists, following nextCursor to the end. */
  async function listAll(query: string): Promise<{ id: string; createdAt: string; status: string; assigneeId: string | null }[]> {
    const items = [];
    let cursor: string | null = null;
    do {
      const params = new URLSearchParams(query);
      params.set('limit', '100');
      if (cursor !== null) params.set('cursor', cursor);
      const path = `/tickets?${params.toString()}`;
      const response = await server.request('GET', path);
      expect(response.status, JSON.stringify(response.body)).toBe(200);
      items.push(...response.body.tickets);
      cursor = response.body.nextCursor;
    } while (cursor !== null);
    return items;
  }

  describe('create', () => {
    it('creates a ticket with the defaults and exactly one ticket.created event', async () => {
      const response = await server.request('POST', '/tickets', { body: { ticket: { subject: 'Printer on fire' } } });
      expect(response.status).toBe(201);
      expect(Object.keys(response.body)).toEqual(['ticket']);
      const ticket = response.body.ticket;
      expect(ticket).toEqual({
        id: expect.stringMatching(/^tkt_[A-Za-z0-9_-]{14,}$/),
        subject: 'Printer on fire',
        description: '',
        status: 'open',
        priority: 'normal',
        assigneeId: null,
        requesterEmail: null,
        tags: [],
        customFields: {},
        version: 1,
        createdAt: expect.stringMatching(ISO_MS),
        updatedAt: expect.stringMatching(ISO_MS),
      });
      expect(ticket.updatedAt).toBe(ticket.createdAt);
      expect((await server.request('GET', `/tickets/${ticket.id}`)).body).toEqual({ ticket });

      const events = await eventsOf(ticket.id);
      expect(events).toEqual([{ type: 'ticket.created', ticketId: ticket.id, createdAt: ticket.createdAt, payload: { event: 'ticket.created', timestamp: ticket.createdAt, data: { ticket } } }]);
    });

    it('keeps every field given', async () => {
      const fields = {
        subject: 'VPN down',
        description: 'Since 9am',
        status: 'pending',
        priority: 'urgent',
        assigneeId: agent.userId,
        requesterEmail: 'customer@example.com',
        tags: ['vpn', 'network'],
        customFields: { tier: 'gold', seats: 12, vip: true },
      };
      const ticket = await createTicket(fields);
      expect(ticket).toEqual({ ...fields, id: ticket.id, version: 1, createdAt: ticket.createdAt, updatedAt: ticket.createdAt });
      expect((await server.request('GET', `/tickets/${ticket.id}`)).body.ticket).toEqual(ticket);
    });

    it('treats customFields: null on create as absent', async () => {
      const ticket = await createTicket({ customFields: null });
      expect(ticket.customFields).toEqual({});
      expect((await server.request('GET', `/tickets/${ticket.id}`)).body.ticket.customFields).toEqual({});
      const [created] = await eventsOf(ticket.id);
      expect(created!.payload.data).toEqual({ ticket });
    });

    it('accepts a subject of exactly 250 characters', async () => {
      const ticket = await createTicket({ subject: 's'.repeat(250) });
      expect(ticket.subject).toHaveLength(250);
    });

    it('makes only ticket.created for a ticket created resolved and assigned', async () => {
      const ticket = await createTicket({ status: 'resolved', assigneeId: agent.userId });
      expect(ticket.status).toBe('resolved');
      expect(ticket.assigneeId).toBe(agent.userId);
      const events = await eventsOf(ticket.id);
      expect(events.map((e) => e.type)).toEqual(['ticket.created']);
      expect(events[0]!.payload.data).toEqual({ ticket });
    });

    it('rejects an invalid ticket with 400 naming the field, and creates nothing', async () => {
      const ticketsBefore = await countTickets();
      const eventsBefore = await countEvents();
      const cases: [Record<string, unknown>, string][] = [
        [{ subject: '' }, 'ticket.subject'],
        [{ subject: 's'.repeat(251) }, 'ticket.subject'],
        [{}, 'ticket.subject'],
        [{ subject: 42 }, 'ticket.subject'],
        [{ subject: 'x', status: 'done' }, 'ticket.status'],
        [{ subject: 'x', status: 'Open' }, 'ticket.status'],
        [{ subject: 'x', priority: 'critical' }, 'ticket.priority'],
        [{ subject: 'x', title: 'typo' }, 'ticket.title'],
        [{ subject: 'x', tags: 'x' }, 'ticket.tags'],
        [{ subject: 'x', tags: ['ok', 1] }, 'ticket.tags.1'],
        [{ subject: 'x', customFields: { nested: { deep: 1 } } }, 'ticket.customFields.nested'],
        [{ subject: 'x', customFields: { list: ['a'] } }, 'ticket.customFields.list'],
        [{ subject: 'x', customFields: 'tier=gold' }, 'ticket.customFields'],
        [{ subject: 'x', assigneeId: 'usr_000000000000000000000000' }, 'ticket.assigneeId'],
        [{ subject: 'x', assigneeId: 12 }, 'ticket.assigneeId'],
        [{ subject: 'x', requesterEmail: 'not-an-email' }, 'ticket.requesterEmail'],
        [{ subject: 'x', description: null }, 'ticket.description'],
      ];
      for (const [ticket, path] of cases) {
        expectValidation(await server.request('POST', '/tickets', { body: { ticket } }), path);
      }
      expectValidation(await server.request('POST', '/tickets', { body: { subject: 'not wrapped' } }), 'ticket');
      expect(await countTickets()).toBe(ticketsBefore);
      expect(await countEvents()).toBe(eventsBefore);
    });
  });

  describe('update', () => {
    it('changes only the fields given and moves updatedAt forward', async () => {
      const before = await createTicket({ description: 'keep me', tags: ['a'], customFields: { tier: 'gold' } });
      const response = await put(before.id, { priority: 'high' });
      expect(response.status).toBe(200);
      const after = response.body.ticket;
      expect(after).toEqual({ ...before, priority: 'high', version: 2, updatedAt: after.updatedAt });
      expect(after.updatedAt > before.updatedAt).toBe(true);
      expect(after.createdAt).toBe(before.createdAt);
      expect((await server.request('GET', `/tickets/${before.id}`)).body.ticket).toEqual(after);
    });

    it('merges customFields key by key, and a key set to null is removed', async () => {
      const ticket = await createTicket({ customFields: { tier: 'gold', region: 'eu' } });
      const merged = await put(ticket.id, { customFields: { tier: 'platinum', seats: 5 } });
      expect(merged.status).toBe(200);
      expect(merged.body.ticket.customFields).toEqual({ tier: 'platinum', region: 'eu', seats: 5 });

      const removed = await put(ticket.id, { customFields: { region: null } });
      expect(removed.status).toBe(200);
      expect(removed.body.ticket.customFields).toEqual({ tier: 'platinum', seats: 5 });
      expect((await server.request('GET', `/tickets/${ticket.id}`)).body.ticket.customFields).toEqual({ tier: 'platinum', seats: 5 });

      const updates = (await eventsOf(ticket.id)).filter((e) => e.type === 'ticket.updated').map((e) => e.payload.data);
      expect(updates).toEqual([
        { ticket: { id: ticket.id, version: 2, updatedFields: { customFields: { from: { tier: 'gold', seats: null }, to: { tier: 'platinum', seats: 5 } } } } },
        { ticket: { id: ticket.id, version: 3, updatedFields: { customFields: { from: { region: 'eu' }, to: { region: null } } } } },
      ]);
    });

    it('returns the ticket untouched, same updatedAt, and writes no event when nothing changes', async () => {
      const ticket = await createTicket({ tags: ['x', 'y'], customFields: { tier: 'gold' }, assigneeId: agent.userId, requesterEmail: 'r@example.com' });
      const eventsBefore = await eventsOf(ticket.id);
      const restatements = [
        {},
        { subject: ticket.subject },
        { tags: ['x', 'y'] },
        { customFields: {} },
        { customFields: { tier: 'gold' } },
        { customFields: { neverSet: null } },
        { assigneeId: agent.userId, requesterEmail: 'r@example.com', status: 'open' },
        editable(ticket),
      ];
      for (const fields of restatements) {
        const response = await put(ticket.id, fields);
        expect(response.status, JSON.stringify(fields)).toBe(200);
        expect(response.body.ticket).toEqual(ticket);
      }
      expect((await server.request('GET', `/tickets/${ticket.id}`)).body.ticket).toEqual(ticket);
      expect(await eventsOf(ticket.id)).toEqual(eventsBefore);
    });

    it('lists in updatedFields only the fields whose value changed, never updatedAt', async () => {
      const ticket = await createTicket({ subject: 'Same', tags: ['a'], customFields: { tier: 'gold', region: 'eu' } });
      const response = await put(ticket.id, {
        subject: 'Same',
        priority: 'high',
        tags: ['a', 'b'],
        requesterEmail: 'who@example.com',
        customFields: { tier: 'platinum', region: 'eu', beta: true, ghost: null },
      });
      expect(response.status).toBe(200);
      const after = response.body.ticket;
      const events = await eventsOf(ticket.id);
      expect(events.map((e) => e.type)).toEqual(['ticket.created', 'ticket.updated']);
      expect(events[1]!.payload).toEqual({
        event: 'ticket.updated',
        timestamp: after.updatedAt,
        data: {
          ticket: {
            id: ticket.id,
            version: 2,
            updatedFields: {
              priority: { from: 'normal', to: 'high' },
              requesterEmail: { from: null, to: 'who@example.com' },
              tags: { from: ['a'], to: ['a', 'b'] },
              customFields: { from: { tier: 'gold', beta: null }, to: { tier: 'platinum', beta: true } },
            },
          },
        },
      });
    });

    it('orders ticket.updated, ticket.assignment.changed, ticket.resolved, all with one timestamp', async () => {
      const ticket = await createTicket();
      const response = await put(ticket.id, { status: 'resolved', assigneeId: agent.userId, priority: 'urgent' });
      expect(response.status).toBe(200);
      const after = response.body.ticket;
      expect(after).toMatchObject({ status: 'resolved', assigneeId: agent.userId, priority: 'urgent' });

      const events = (await eventsOf(ticket.id)).slice(1);
      expect(events.map((e) => e.payload)).toEqual([
        {
          event: 'ticket.updated',
          timestamp: after.updatedAt,
          data: {
            ticket: {
              id: ticket.id,
              version: 2,
              updatedFields: {
                status: { from: 'open', to: 'resolved' },
                priority: { from: 'normal', to: 'urgent' },
                assigneeId: { from: null, to: agent.userId },
              },
            },
          },
        },
        { event: 'ticket.assignment.changed', timestamp: after.updatedAt, data: { ticket: after, assignment: { from: null, to: agent.userId } } },
        { event: 'ticket.resolved', timestamp: after.updatedAt, data: { ticket: after } },
      ]);
      expect(new Set(events.map((e) => e.createdAt))).toEqual(new Set([after.updatedAt]));
    });

    it('makes ticket.assignment.changed for a reassignment and an unassignment, and no ticket.resolved', async () => {
      const ticket = await createTicket({ assigneeId: agent.userId });
      const reassigned = (await put(ticket.id, { assigneeId: otherAgent.userId })).body.ticket;
      const unassigned = (await put(ticket.id, { assigneeId: null })).body.ticket;
      expect(unassigned.assigneeId).toBeNull();
      const events = (await eventsOf(ticket.id)).slice(1);
      expect(events.map((e) => e.type)).toEqual(['ticket.updated', 'ticket.assignment.changed', 'ticket.updated', 'ticket.assignment.changed']);
      expect(events[1]!.payload.data).toEqual({ ticket: reassigned, assignment: { from: agent.userId, to: otherAgent.userId } });
      expect(events[3]!.payload.data).toEqual({ ticket: unassigned, assignment: { from: otherAgent.userId, to: null } });
      expect(events[2]!.payload.data).toEqual({ ticket: { id: ticket.id, version: 3, updatedFields: { assigneeId: { from: otherAgent.userId, to: null } } } });
    });

    it('makes ticket.resolved only when the status changes to resolved', async () => {
      const ticket = await createTicket();
      expect((await put(ticket.id, { status: 'pending' })).status).toBe(200);
      expect((await put(ticket.id, { status: 'resolved' })).status).toBe(200);
      // Already resolved: another change is an update, not a second resolution.
      expect((await put(ticket.id, { priority: 'low' })).status).toBe(200);
      expect((await put(ticket.id, { status: 'resolved' })).status).toBe(200);
      expect((await put(ticket.id, { status: 'open' })).status).toBe(200);
      const types = (await eventsOf(ticket.id)).map((e) => e.type);
      expect(types).toEqual(['ticket.created', 'ticket.updated', 'ticket.updated', 'ticket.resolved', 'ticket.updated', 'ticket.updated']);
    });

    it('lets the status move freely between the four non-final values', async () => {
      const ticket = await createTicket();
      for (const status of ['pending', 'on_hold', 'resolved', 'open', 'on_hold', 'pending', 'open']) {
        const response = await put(ticket.id, { status });
        expect(response.status).toBe(200);
        expect(response.body.ticket.status).toBe(status);
      }
    });

    it('rejects an invalid update with 400, changes nothing and writes no event', async () => {
      const ticket = await createTicket({ customFields: { tier: 'gold' } });
      const eventsBefore = await countEvents();
      const cases: [Record<string, unknown>, string][] = [
        [{ assigneeId: 'usr_000000000000000000000000' }, 'ticket.assigneeId'],
        // A valid change beside an invalid one is not applied either.
        [{ priority: 'high', assigneeId: 'usr_000000000000000000000000' }, 'ticket.assigneeId'],
        [{ priority: 'high', requesterEmail: 'nope' }, 'ticket.requesterEmail'],
        [{ status: 'done' }, 'ticket.status'],
        [{ subject: '' }, 'ticket.subject'],
        [{ subject: 's'.repeat(251) }, 'ticket.subject'],
        [{ tags: 'x' }, 'ticket.tags'],
        [{ customFields: { nested: { a: 1 } } }, 'ticket.customFields.nested'],
        [{ id: 'tkt_other' }, 'ticket.id'],
        [{ createdAt: '2020-01-01T00:00:00.000Z' }, 'ticket.createdAt'],
        [{ priority: 'high', colour: 'red' }, 'ticket.colour'],
      ];
      for (const [fields, path] of cases) {
        expectValidation(await put(ticket.id, fields), path);
      }
      expect((await server.request('GET', `/tickets/${ticket.id}`)).body.ticket).toEqual(ticket);
      expect(await countEvents()).toBe(eventsBefore);
    });
  });

  describe('closed tickets', () => {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tickets are arbitrary JSON here
    async function closedTicket(): Promise<any> {
      const ticket = await createTicket({ tags: ['billing'], customFields: { tier: 'gold' }, assigneeId: agent.userId });
      const response = await put(ticket.id, { status: 'closed' });
      expect(response.status).toBe(200);
      return response.body.ticket;
    }

    it('refuses with 409 any change but tags, changing nothing and writing no event', async () => {
      const ticket = await closedTicket();
      const eventsBefore = await eventsOf(ticket.id);
      const changes = [
        { status: 'open' },
        { status: 'resolved' },
        { subject: 'Reopened?' },
        { description: 'more' },
        { priority: 'urgent' },
        { assigneeId: otherAgent.userId },
        { assigneeId: null },
        { requesterEmail: 'late@example.com' },
        { customFields: { tier: 'platinum' } },
        { customFields: { tier: null } },
        { customFields: { extra: 1 } },
        // Tags alone would be allowed; with another change the whole request is refused.
        { tags: ['billing', 'late'], priority: 'low' },
      ];
      for (const fields of changes) {
        expectError(await put(ticket.id, fields), 409, 'conflict');
      }
      expect((await server.request('GET', `/tickets/${ticket.id}`)).body.ticket).toEqual(ticket);
      expect(await eventsOf(ticket.id)).toEqual(eventsBefore);
    });

    it('accepts restating the current values of a closed ticket, as a no-op', async () => {
      const ticket = await closedTicket();
      const eventsBefore = await eventsOf(ticket.id);
      for (const fields of [editable(ticket), { status: 'closed' }, { subject: ticket.subject, customFields: { tier: 'gold', absent: null } }, {}]) {
        const response = await put(ticket.id, fields);
        expect(response.status, JSON.stringify(fields)).toBe(200);
        expect(response.body.ticket).toEqual(ticket);
      }
      expect(await eventsOf(ticket.id)).toEqual(eventsBefore);
    });

    it('allows a tags-only change on a closed ticket, restated values beside it included', async () => {
      const ticket = await closedTicket();
      const response = await put(ticket.id, { ...editable(ticket), tags: ['billing', 'refunded'] });
      expect(response.status).toBe(200);
      const after = response.body.ticket;
      expect(after).toEqual({ ...ticket, tags: ['billing', 'refunded'], version: ticket.version + 1, updatedAt: after.updatedAt });
      expect(after.updatedAt > ticket.updatedAt).toBe(true);
      const last = (await eventsOf(ticket.id)).slice(-1);
      expect(last.map((e) => e.payload)).toEqual([
        { event: 'ticket.updated', timestamp: after.updatedAt, data: { ticket: { id: ticket.id, version: after.version, updatedFields: { tags: { from: ['billing'], to: ['billing', 'refunded'] } } } } },
      ]);
    });

    it('still deletes a closed ticket', async () => {
      const ticket = await closedTicket();
      expect((await server.request('DELETE', `/tickets/${ticket.id}`)).status).toBe(204);
      expectError(await server.request('GET', `/tickets/${ticket.id}`), 404, 'not_found');
      const last = (await eventsOf(ticket.id)).slice(-1)[0]!;
      expect(last.type).toBe('ticket.deleted');
      expect(last.payload.data).toEqual({ ticket: { ...ticket, version: ticket.version + 1 } });
    });
  });

  describe('delete', () => {
    it('answers 204, the ticket is gone, and ticket.deleted carries the ticket as it was', async () => {
      const created = await createTicket({ tags: ['t'], customFields: { tier: 'gold' }, assigneeId: agent.userId });
      const last = (await put(created.id, { priority: 'high', status: 'pending' })).body.ticket;
      const response = await server.request('DELETE', `/tickets/${created.id}`);
      expect(response.status).toBe(204);
      expect(response.body).toBeUndefined();
      expectError(await server.request('GET', `/tickets/${created.id}`), 404, 'not_found');
      expect(await db().selectFrom('tickets').select('id').where('id', '=', created.id).execute()).toEqual([]);

      const events = await eventsOf(created.id);
      expect(events.map((e) => e.type)).toEqual(['ticket.created', 'ticket.updated', 'ticket.deleted']);
      const deleted = events[2]!;
      // The ticket as it was, at the version the deletion makes.
      expect(deleted.payload.data).toEqual({ ticket: { ...last, version: 3 } });
      expect(deleted.payload.timestamp).toMatch(ISO_MS);
      expect(deleted.payload.timestamp > last.updatedAt).toBe(true);
    });

    it('answers 404 to a second delete and writes no second event', async () => {
      const ticket = await createTicket();
      expect((await server.request('DELETE', `/tickets/${ticket.id}`)).status).toBe(204);
      expectError(await server.request('DELETE', `/tickets/${ticket.id}`), 404, 'not_found');
      expectError(await put(ticket.id, { priority: 'high' }), 404, 'not_found');
      expect((await eventsOf(ticket.id)).map((e) => e.type)).toEqual(['ticket.created', 'ticket.deleted']);
    });
  });

  describe('unknown ids', () => {
    it('answers 404 not_found to GET, PUT and DELETE of an unknown ticket, and writes no event', async () => {
      const eventsBefore = await countEvents();
      for (const id of ['tkt_000000000000000000000000', 'whatever']) {
        expectError(await server.request('GET', `/tickets/${id}`), 404, 'not_found');
        expectError(await put(id, { priority: 'high' }), 404, 'not_found');
        expectError(await server.request('DELETE', `/tickets/${id}`), 404, 'not_found');
      }
      expect(await countEvents()).toBe(eventsBefore);
    });
  });

  describe('list', () => {
    it('lists tickets newest first, page by page', async () => {
      const made: string[] = [];
      for (let i = 0; i < 5; i += 1) made.push((await createTicket({ subject: `page ${i}` })).id);
      const first = await server.request('GET', '/tickets?limit=2');
      expect(first.status).toBe(200);
      expect(Object.keys(first.body).sort()).toEqual(['nextCursor', 'tickets']);
      expect(first.body.tickets.map((t: { id: string }) => t.id)).toEqual([made[4], made[3]]);
      const second = await server.request('GET', `/tickets?limit=2&cursor=${encodeURIComponent(first.body.nextCursor)}`);
      expect(second.body.tickets.map((t: { id: string }) => t.id)).toEqual([made[2], made[1]]);

      const all = await listAll('');
      expect(all.length).toBe(await countTickets());
      expect(new Set(all.map((t) => t.id)).size).toBe(all.length);
      const sorted = [...all].sort((a, b) => (a.createdAt === b.createdAt ? (a.id < b.id ? 1 : -1) : a.createdAt < b.createdAt ? 1 : -1));
      expect(all.map((t) => t.id)).toEqual(sorted.map((t) => t.id));
    });

    it('filters by status', async () => {
      const pending = await createTicket({ status: 'pending' });
      const onHold = await createTicket({ status: 'on_hold' });
      const open = await createTicket();
      const listed = await listAll('status=pending');
      expect(listed.length).toBeGreaterThan(0);
      for (const ticket of listed) expect(ticket.status).toBe('pending');
      const ids = listed.map((t) => t.id);
      expect(ids).toContain(pending.id);
      expect(ids).not.toContain(onHold.id);
      expect(ids).not.toContain(open.id);
      expect((await listAll('status=on_hold')).map((t) => t.id)).toContain(onHold.id);
    });

    it('filters by assignee, and by none for unassigned', async () => {
      const assignee = await server.keyFor('agent');
      const first = await createTicket({ assigneeId: assignee.userId });
      const elsewhere = await createTicket({ assigneeId: agent.userId });
      const unassigned = await createTicket();
      const second = await createTicket({ assigneeId: assignee.userId, status: 'pending' });
      const movedAway = await createTicket({ assigneeId: assignee.userId });
      expect((await put(movedAway.id, { assigneeId: null })).status).toBe(200);

      expect((await listAll(`assigneeId=${assignee.userId}`)).map((t) => t.id)).toEqual([second.id, first.id]);
      expect((await listAll(`assigneeId=${assignee.userId}&status=pending`)).map((t) => t.id)).toEqual([second.id]);
      expect(await listAll(`assigneeId=${assignee.userId}&status=closed`)).toEqual([]);

      const none = await listAll('assigneeId=none');
      for (const ticket of none) expect(ticket.assigneeId).toBeNull();
      const noneIds = none.map((t) => t.id);
      expect(noneIds).toContain(unassigned.id);
      expect(noneIds).toContain(movedAway.id);
      expect(noneIds).not.toContain(first.id);
      expect(noneIds).not.toContain(elsewhere.id);
    });

    it('rejects an unknown query parameter, a bad status and a bad limit with 400', async () => {
      expectValidation(await server.request('GET', '/tickets?state=open'), 'state');
      expectValidation(await server.request('GET', '/tickets?assignee=none'), 'assignee');
      for (const query of ['status=done', 'status=', 'status=OPEN', 'limit=0', 'limit=101', 'limit=abc', 'cursor=garbage']) {
        expectError(await server.request('GET', `/tickets?${query}`), 400, 'validation_failed');
      }
    });
  });

  describe('roles', () => {
    it('lets an agent create, read, list, update and delete tickets', async () => {
      const created = await server.request('POST', '/tickets', { key: agent.key, body: { ticket: { subject: 'by an agent' } } });
      expect(created.status).toBe(201);
      const id = created.body.ticket.id;
      expect((await server.request('GET', `/tickets/${id}`, { key: agent.key })).status).toBe(200);
      const listed = await server.request('GET', '/tickets?limit=100', { key: agent.key });
      expect(listed.status).toBe(200);
      expect(listed.body.tickets.map((t: { id: string }) => t.id)).toContain(id);
      const updated = await put(id, { status: 'resolved', assigneeId: agent.userId }, agent.key);
      expect(updated.status).toBe(200);
      expect((await server.request('DELETE', `/tickets/${id}`, { key: agent.key })).status).toBe(204);
      expect((await eventsOf(id)).map((e) => e.type)).toEqual(['ticket.created', 'ticket.updated', 'ticket.assignment.changed', 'ticket.resolved', 'ticket.deleted']);
    });
  });

  describe('custom field names', () => {
    it('reports added and removed keys that share a name with Object.prototype members as null on the missing side', async () => {
      const ticket = await createTicket({ customFields: { constructor: 'acme' } });
      expect(ticket.customFields).toEqual({ constructor: 'acme' });
      const added = await put(ticket.id, { customFields: { toString: 'x', hasOwnProperty: 1 } });
      expect(added.status).toBe(200);
      expect(added.body.ticket.customFields).toEqual({ constructor: 'acme', toString: 'x', hasOwnProperty: 1 });
      const removed = await put(ticket.id, { customFields: { constructor: null } });
      expect(removed.body.ticket.customFields).toEqual({ toString: 'x', hasOwnProperty: 1 });
      const updates = (await eventsOf(ticket.id)).filter((e) => e.type === 'ticket.updated').map((e) => e.payload.data);
      // Typed loosely: TypeScript reads these key names as Object's own members.
      const expected: unknown[] = [
        { ticket: { id: ticket.id, version: 2, updatedFields: { customFields: { from: { toString: null, hasOwnProperty: null }, to: { toString: 'x', hasOwnProperty: 1 } } } } },
        { ticket: { id: ticket.id, version: 3, updatedFields: { customFields: { from: { constructor: 'acme' }, to: { constructor: null } } } } },
      ];
      expect(updates).toEqual(expected);
    });
  });

  describe('concurrency', () => {
    it('loses no concurrent change: every PUT is applied, and each event starts from the state the previous one left', async () => {
      const ticket = await createTicket();
      const patches: Record<string, unknown>[] = [
        { priority: 'high' },
        { description: 'from a second tab' },
        { tags: ['vip'] },
        { requesterEmail: 'someone@example.com' },
        { assigneeId: agent.userId },
        ...Array.from({ length: 6 }, (_, i) => ({ customFields: { [`k${i}`]: i } })),
      ];
      const responses = await Promise.all(patches.map((patch) => put(ticket.id, patch)));
      expect(responses.map((r) => r.status)).toEqual(patches.map(() => 200));

      const final = (await server.request('GET', `/tickets/${ticket.id}`)).body.ticket;
      expect(final).toMatchObject({
        priority: 'high',
        description: 'from a second tab',
        tags: ['vip'],
        requesterEmail: 'someone@example.com',
        assigneeId: agent.userId,
        customFields: { k0: 0, k1: 1, k2: 2, k3: 3, k4: 4, k5: 5 },
      });

      // Replaying the events in queue order must reproduce the ticket: no "from" is stale.
      const state: Record<string, unknown> = { ...ticket, customFields: { ...ticket.customFields } };
      const updates = (await eventsOf(ticket.id)).filter((e) => e.type === 'ticket.updated');
      expect(updates).toHaveLength(patches.length);
      // One version per change, in the order the changes committed, with no gap and no repeat.
      expect(updates.map((update) => (update.payload.data.ticket as { version: number }).version)).toEqual(patches.map((_, i) => i + 2));
      expect(final.version).toBe(patches.length + 1);
      for (const update of updates) {
        const changes = (update.payload.data.ticket as { updatedFields: Record<string, { from: unknown; to: unknown }> }).updatedFields;
        for (const [field, change] of Object.entries(changes)) {
          if (field === 'customFields') {
            const fields = state.customFields as Record<string, unknown>;
            for (const [key, from] of Object.entries(change.from as Record<string, unknown>)) expect(fields[key] ?? null).toEqual(from);
            for (const [key, to] of Object.entries(change.to as Record<string, unknown>)) {
              if (to === null) delete fields[key];
              else fields[key] = to;
            }
          } else {
            expect(state[field]).toEqual(change.from);
            state[field] = change.to;
          }
        }
      }
      expect({ ...state, updatedAt: final.updatedAt, version: final.version }).toEqual(final);
    });

    it('deletes a ticket once when several deletes race: one 204, the rest 404, one ticket.deleted', async () => {
      const ticket = await createTicket();
      const responses = await Promise.all(Array.from({ length: 4 }, () => server.request('DELETE', `/tickets/${ticket.id}`)));
      expect(responses.map((r) => r.status).sort()).toEqual([204, 404, 404, 404]);
      expect((await eventsOf(ticket.id)).map((e) => e.type)).toEqual(['ticket.created', 'ticket.deleted']);
    });
  });

  describe('versions', () => {
    /** The version each event of a ticket carries, in the order the events were made. */
    async function versionsOf(ticketId: string): Promise<[string, number][]> {
      return (await eventsOf(ticketId)).map((event) => [event.type, (event.payload.data.ticket as { version: number }).version]);
    }

    it('starts at 1, goes up by one per change that changes something, and is shared by the events of one change', async () => {
      const ticket = await createTicket();
      expect(ticket.version).toBe(1);
      const first = await put(ticket.id, { priority: 'high' });
      expect(first.body.ticket.version).toBe(2);
      const unchanged = await put(ticket.id, { priority: 'high', subject: ticket.subject });
      expect(unchanged.body.ticket.version).toBe(2);
      const several = await put(ticket.id, { assigneeId: agent.userId, status: 'resolved' });
      expect(several.body.ticket.version).toBe(3);
      expect((await server.request('GET', `/tickets/${ticket.id}`)).body.ticket.version).toBe(3);
      expect((await listAll('')).find((t) => t.id === ticket.id)).toMatchObject({ version: 3 });
      expect(await versionsOf(ticket.id)).toEqual([
        ['ticket.created', 1],
        ['ticket.updated', 2],
        ['ticket.updated', 3],
        ['ticket.assignment.changed', 3],
        ['ticket.resolved', 3],
      ]);
    });

    it('gives ticket.deleted the version the deletion makes, one more than the last', async () => {
      const ticket = await createTicket();
      await put(ticket.id, { tags: ['a'] });
      expect((await server.request('DELETE', `/tickets/${ticket.id}`)).status).toBe(204);
      const events = await eventsOf(ticket.id);
      expect(events.at(-1)!.payload.data.ticket).toEqual({ ...ticket, tags: ['a'], version: 3, updatedAt: expect.stringMatching(ISO_MS) });
      expect(await versionsOf(ticket.id)).toEqual([
        ['ticket.created', 1],
        ['ticket.updated', 2],
        ['ticket.deleted', 3],
      ]);
    });

    it('is read-only: a version sent on create or update is a 400 naming it, and changes nothing', async () => {
      const created = await server.request('POST', '/tickets', { body: { ticket: { subject: 'x', version: 7 } } });
      expectValidation(created, 'ticket.version');
      const ticket = await createTicket();
      const before = await countEvents();
      expectValidation(await put(ticket.id, { version: 5 }), 'ticket.version');
      expectValidation(await put(ticket.id, { version: ticket.version, priority: 'low' }), 'ticket.version');
      expect((await server.request('GET', `/tickets/${ticket.id}`)).body.ticket).toEqual(ticket);
      expect(await countEvents()).toBe(before);
    });

    it('gives concurrent changes to one ticket distinct versions with no gap, and ticket.updated events carrying each once', async () => {
      const ticket = await createTicket();
      const responses = await Promise.all(Array.from({ length: 24 }, (_, i) => put(ticket.id, { customFields: { [`n${i}`]: i } })));
      expect(responses.map((r) => r.status)).toEqual(responses.map(() => 200));
      const answered = responses.map((r) => r.body.ticket.version as number).sort((a, b) => a - b);
      expect(answered).toEqual(Array.from({ length: 24 }, (_, i) => i + 2));
      expect((await versionsOf(ticket.id)).map(([, version]) => version)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
    });
  });

  describe('updatedAt order', () => {
    let frozen: TestServer;
    let clockMs = Date.parse('2025-01-15T10:30:00.000Z');

    beforeAll(async () => {
      // A clock that stands still (two changes in one millisecond) or is stepped back.
      frozen = await startTestServer(dialect, { startWorker: false, runtime: { clock: { now: () => clockMs } } });
    });
    afterAll(async () => {
      await frozen?.close();
    });

    it('moves updatedAt forward on every change, even within one millisecond or after a clock step back', async () => {
      const created = await frozen.request('POST', '/tickets', { body: { ticket: { subject: 'same millisecond' } } });
      expect(created.status).toBe(201);
      const id = created.body.ticket.id;
      const stamps = [created.body.ticket.updatedAt as string];
      for (const priority of ['high', 'low']) {
        const response = await frozen.request('PUT', `/tickets/${id}`, { body: { ticket: { priority } } });
        expect(response.status).toBe(200);
        stamps.push(response.body.ticket.updatedAt);
      }
      clockMs -= 3_600_000;
      const stepped = await frozen.request('PUT', `/tickets/${id}`, { body: { ticket: { priority: 'urgent' } } });
      stamps.push(stepped.body.ticket.updatedAt);
      for (let i = 1; i < stamps.length; i += 1) expect(stamps[i]! > stamps[i - 1]!, stamps.join(' ')).toBe(true);

      // Events keep one timestamp per request, the ticket's new updatedAt.
      const rows = await frozen.runtime.database.db.selectFrom('events').select(['type', 'created_at']).where('ticket_id', '=', id).where('type', '=', 'ticket.updated').execute();
      expect(rows.map((r) => r.created_at).sort()).toEqual(stamps.slice(1));

      // A delete in that same millisecond still comes after the last change.
      expect((await frozen.request('DELETE', `/tickets/${id}`)).status).toBe(204);
      const deleted = await frozen.runtime.database.db.selectFrom('events').select('created_at').where('ticket_id', '=', id).where('type', '=', 'ticket.deleted').executeTakeFirstOrThrow();
      expect(deleted.created_at > stamps[stamps.length - 1]!).toBe(true);
    });
  });

  describe('atomicity', () => {
    /**
     * Makes writing an event fail inside the change's transaction, by hiding the events table,
     * then puts it back: the change itself must be rolled back with it.
     */
    async function withEventsUnwritable(run: () => Promise<void>): Promise<void> {
      await db().schema.alterTable('events').renameTo('events_hidden').execute();
      try {
        await run();
      } finally {
        await db().schema.alterTable('events_hidden').renameTo('events').execute();
      }
    }

    it('rolls a change back when its events cannot be written: never a change without its events', async () => {
      const ticket = await createTicket({ customFields: { tier: 'gold' } });
      const ticketsBefore = await countTickets();
      const eventsBefore = await eventsOf(ticket.id);

      await withEventsUnwritable(async () => {
        expectError(await server.request('POST', '/tickets', { body: { ticket: { subject: 'never stored' } } }), 500, 'internal');
        expectError(await put(ticket.id, { priority: 'urgent', status: 'resolved' }), 500, 'internal');
        expectError(await server.request('DELETE', `/tickets/${ticket.id}`), 500, 'internal');
      });

      expect(await countTickets()).toBe(ticketsBefore);
      expect(await db().selectFrom('tickets').select('id').where('subject', '=', 'never stored').execute()).toEqual([]);
      expect((await server.request('GET', `/tickets/${ticket.id}`)).body.ticket).toEqual(ticket);
      expect(await eventsOf(ticket.id)).toEqual(eventsBefore);

      // And the server is fine afterwards.
      const after = await put(ticket.id, { priority: 'urgent' });
      expect(after.status).toBe(200);
      expect((await eventsOf(ticket.id)).map((e) => e.type)).toEqual(['ticket.created', 'ticket.updated']);
    });
  });
});
