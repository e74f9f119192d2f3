/**
 * The event feed (docs/api.md, "The event feed"): every change's events, listed newest first,
 * with no webhook subscribed; its filters and cursor; each event by id; who may read it; bad
 * queries refused; and retention pruning it like the delivery log.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import pino from 'pino';
import { RetentionPruner } from '../../../src/retention/retention.js';
import { describeEachDialect } from '../../helpers/dialects.js';
import { startTestServer, type ApiResponse, type TestServer } from '../../helpers/server.js';

interface FeedEvent {
  id: string;
  event: string;
  timestamp: string;
  data: { ticket: { id: string; version: number } };
}

function expectValidationFailed(response: ApiResponse, path: string): void {
  expect(response.status, JSON.stringify(response.body)).toBe(400);
  expect(response.body.error.code).toBe('validation_failed');
  expect((response.body.error.details as { path: string }[]).map((d) => d.path)).toContain(path);
}

describeEachDialect('the event feed', (dialect) => {
  let server: TestServer;
  let agentId: string;
  /** The events the changes below make, oldest first, as `type ticketId vVersion`. */
  const made: string[] = [];
  let firstTicket: string;
  let secondTicket: string;

  const key = (e: FeedEvent) => `${e.event} ${e.data.ticket.id} v${e.data.ticket.version}`;

  async function allPages(query: string, limit = 3): Promise<FeedEvent[]> {
    const events: FeedEvent[] = [];
    let cursor: string | null = null;
    do {
      const response = await server.request('GET', `/events?limit=${limit}${query}${cursor ? `&cursor=${cursor}` : ''}`);
      expect(response.status, JSON.stringify(response.body)).toBe(200);
      events.push(...(response.body.events as FeedEvent[]));
      cursor = response.body.nextCursor as string | null;
    } while (cursor !== null);
    return events;
  }

  beforeAll(async () => {
    server = await startTestServer(dialect);
    agentId = (await server.keyFor('agent')).userId;
    // No webhook exists: the feed keeps every event anyway.
    const first = await server.request('POST', '/tickets', { body: { ticket: { subject: 'Printer on fire' } } });
    firstTicket = first.body.ticket.id;
    made.push(`ticket.created ${firstTicket} v1`);
    await server.request('PUT', `/tickets/${firstTicket}`, { body: { ticket: { priority: 'urgent', assigneeId: agentId } } });
    made.push(`ticket.updated ${firstTicket} v2`, `ticket.assignment.changed ${firstTicket} v2`);
    await server.request('PUT', `/tickets/${firstTicket}`, { body: { ticket: { status: 'resolved' } } });
    made.push(`ticket.updated ${firstTicket} v3`, `ticket.resolved ${firstTicket} v3`);
    const second = await server.request('POST', '/tickets', { body: { ticket: { subject: 'Second' } } });
    secondTicket = second.body.ticket.id;
    made.push(`ticket.created ${secondTicket} v1`);
    await server.request('DELETE', `/tickets/${secondTicket}`);
    made.push(`ticket.deleted ${secondTicket} v2`);
    // A test event is one webhook's, not a change's: never in the feed.
    const webhook = await server.request('POST', '/webhooks', { body: { webhook: { name: 'w', targetUrl: 'https://example.com/hook', events: ['ticket.created'] } } });
    expect((await server.request('POST', `/webhooks/${webhook.body.webhook.id}/test`)).status).toBe(202);
  });

  afterAll(async () => {
    await server?.close();
  });

  it('lists every event of every change, newest first, each as its webhook payload with its id', async () => {
    const events = await allPages('');
    expect(events.map(key).sort()).toEqual([...made].sort());
    expect(new Set(events.map((e) => e.id)).size).toBe(events.length);
    for (let i = 1; i < events.length; i += 1) {
      const [newer, older] = [events[i - 1]!, events[i]!];
      expect(newer.timestamp > older.timestamp || (newer.timestamp === older.timestamp && newer.id > older.id)).toBe(true);
    }
    // Changes in order: the second ticket's deletion is the newest event, the first creation the oldest.
    expect(key(events[0]!)).toBe(`ticket.deleted ${secondTicket} v2`);
    expect(key(events.at(-1)!)).toBe(`ticket.created ${firstTicket} v1`);
    const update = events.find((e) => key(e) === `ticket.updated ${firstTicket} v2`)!;
    expect(update.data).toEqual({ ticket: { id: firstTicket, version: 2, updatedFields: { priority: { from: 'normal', to: 'urgent' }, assigneeId: { from: null, to: agentId } } } });
    const assignment = events.find((e) => e.event === 'ticket.assignment.changed')! as FeedEvent & { data: { assignment: unknown; ticket: { priority: string } } };
    expect(assignment.data.assignment).toEqual({ from: null, to: agentId });
    expect(assignment.data.ticket.priority).toBe('urgent');
  });

  it('returns each event by id, exactly as listed, and 404 for what the feed does not hold', async () => {
    const [latest] = await allPages('', 1).then((events) => events.slice(0, 1));
    const one = await server.request('GET', `/events/${latest!.id}`);
    expect(one.status).toBe(200);
    expect(one.body.event).toEqual(latest);
    expect((await server.request('GET', '/events/evt_0000000000000000000000000000')).status).toBe(404);
    expect((await server.request('GET', '/events/nope')).body.error.code).toBe('not_found');
  });

  it('filters by type (repeatable), ticket and time window, and pages through each without a gap or a repeat', async () => {
    const byType = await allPages('&type=ticket.created&type=ticket.deleted', 1);
    expect(byType.map(key).sort()).toEqual(made.filter((m) => m.startsWith('ticket.created') || m.startsWith('ticket.deleted')).sort());
    const oneType = await allPages('&type=ticket.resolved');
    expect(oneType.map(key)).toEqual([`ticket.resolved ${firstTicket} v3`]);
    const ofTicket = await allPages(`&ticketId=${firstTicket}`, 2);
    expect(ofTicket.map(key).sort()).toEqual(made.filter((m) => m.includes(firstTicket)).sort());
    const deleted = await allPages(`&ticketId=${secondTicket}&type=ticket.deleted`);
    expect(deleted.map(key)).toEqual([`ticket.deleted ${secondTicket} v2`]);

    const all = await allPages('');
    const resolvedAt = all.find((e) => e.event === 'ticket.resolved')!.timestamp;
    const since = await allPages(`&since=${resolvedAt}`);
    expect(since.length).toBeGreaterThan(0);
    expect(since.every((e) => e.timestamp >= resolvedAt)).toBe(true);
    expect(since.map(key)).toContain(`ticket.resolved ${firstTicket} v3`);
    const until = await allPages(`&until=${resolvedAt}`);
    expect(until.every((e) => e.timestamp < resolvedAt)).toBe(true);
    expect(since.length + until.length).toBe(all.length);
    expect(await allPages(`&since=${resolvedAt}&until=${resolvedAt}`)).toEqual([]);
  });

  it('refuses bad queries with 400 naming the parameter, and readers who are not admins', async () => {
    expectValidationFailed(await server.request('GET', '/events?type=webhook.test'), 'type.0');
    expectValidationFailed(await server.request('GET', '/events?type=ticket.created&type=ticket.nope'), 'type.1');
    expectValidationFailed(await server.request('GET', '/events?ticketId=whk_1'), 'ticketId');
    expectValidationFailed(await server.request('GET', '/events?since=2025-02-30T10:00:00Z'), 'since');
    expectValidationFailed(await server.request('GET', '/events?until=yesterday'), 'until');
    expectValidationFailed(await server.request('GET', '/events?limit=0'), 'limit');
    expectValidationFailed(await server.request('GET', '/events?cursor=nonsense'), 'cursor');
    expect((await server.request('GET', '/events?expand=payload')).status).toBe(400);
    const agent = await server.keyFor('agent');
    expect((await server.request('GET', '/events', { key: agent.key })).status).toBe(403);
    expect((await server.request('GET', `/events/${(await allPages(''))[0]!.id}`, { key: agent.key })).status).toBe(403);
    expect((await server.request('GET', '/events', { key: null })).status).toBe(401);
  });

  it('keeps events for the retention period, subscribed or not, and prunes them after it', async () => {
    const before = await allPages('');
    const now = Date.now();
    const pruner = (days: number) => new RetentionPruner({ db: server.runtime.database.db, clock: { now: () => now + days * 24 * 60 * 60 * 1000 }, logger: pino({ level: 'silent' }), retentionDays: 30 });
    await pruner(29).pruneOnce();
    expect((await allPages('')).map((e) => e.id).sort()).toEqual(before.map((e) => e.id).sort());
    // Past it, they go (no webhook was subscribed to them: nothing else kept them).
    await pruner(31).pruneOnce();
    expect(await allPages('')).toEqual([]);
  });
});
