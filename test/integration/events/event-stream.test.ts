/**
 * GET /events/stream (docs/api.md, "The event stream") over real sockets: events in commit order
 * from the moment of the request; resumed after an event by Last-Event-ID or ?after= with
 * nothing missed and nothing repeated, across a restart of the server too; heartbeats; the
 * limit on open streams (429); a client that stops reading dropped, and resuming; bad cursors
 * refused; and what /metrics counts.
 */
import { afterEach, expect, it } from 'vitest';
import { describeEachDialect } from '../../helpers/dialects.js';
import { createTestDatabase, type TestDatabase } from '../../helpers/databases.js';
import { ADMIN_TOKEN, startTestServer, type TestServer, type TestServerOptions } from '../../helpers/server.js';
import { openSse, type SseMessage, type SseStream } from '../../helpers/sse.js';
import { waitFor } from '../../helpers/wait.js';

const STREAM = '/helpdesk/api/v1/events/stream';

describeEachDialect('the event stream', (dialect) => {
  let server: TestServer | null = null;
  let database: TestDatabase | null = null;
  const streams: SseStream[] = [];

  async function start(options: TestServerOptions = {}): Promise<{ server: TestServer; base: string }> {
    database ??= await createTestDatabase(dialect);
    server = await startTestServer(dialect, { database, startWorker: false, ...options });
    await server.runtime.app.listen({ port: 0, host: '127.0.0.1' });
    const address = server.runtime.app.server.address() as { port: number };
    return { server, base: `http://127.0.0.1:${address.port}` };
  }

  async function open(base: string, path = STREAM, headers: Record<string, string> = {}, key = ADMIN_TOKEN): Promise<SseStream> {
    const stream = await openSse(base, path, { key, headers });
    streams.push(stream);
    return stream;
  }

  async function createTickets(count: number, subject = 'ticket'): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < count; i += 1) {
      const response = await server!.request('POST', '/tickets', { body: { ticket: { subject: `${subject} ${i}` } } });
      expect(response.status).toBe(201);
      ids.push(response.body.ticket.id as string);
    }
    return ids;
  }

  /** Every feed event, oldest first by the feed's own order (time, then id). */
  async function feedIds(): Promise<string[]> {
    const ids: string[] = [];
    let cursor: string | null = null;
    do {
      const response = await server!.request('GET', `/events?limit=100${cursor ? `&cursor=${cursor}` : ''}`);
      ids.push(...(response.body.events as { id: string }[]).map((e) => e.id));
      cursor = response.body.nextCursor as string | null;
    } while (cursor !== null);
    return ids.reverse();
  }

  async function metric(name: string): Promise<number> {
    const text = (await server!.runtime.app.inject({ method: 'GET', url: '/metrics' })).body;
    const line = text.split('\n').find((l) => l.startsWith(name));
    return line === undefined ? 0 : Number(line.split(' ').at(-1));
  }

  afterEach(async () => {
    for (const stream of streams.splice(0)) stream.close();
    await server?.close();
    server = null;
    await database?.drop();
    database = null;
  });

  it('sends the events committed after the request, in commit order, each as id, type and payload', async () => {
    const { base } = await start();
    await createTickets(2, 'before');
    const stream = await open(base);
    expect(stream.status).toBe(200);
    expect(stream.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(stream.headers['x-request-id']).toMatch(/^req_/);
    const [ticket] = await createTickets(1, 'after');
    await server!.request('PUT', `/tickets/${ticket}`, { body: { ticket: { status: 'resolved' } } });
    await server!.request('DELETE', `/tickets/${ticket}`);
    const messages = await stream.waitForMessages(4);
    expect(messages.map((m) => m.event)).toEqual(['ticket.created', 'ticket.updated', 'ticket.resolved', 'ticket.deleted']);
    expect(messages.map((m) => JSON.parse(m.data).data.ticket.version)).toEqual([1, 2, 2, 3]);
    for (const message of messages) {
      const event = (await server!.request('GET', `/events/${message.id}`)).body.event;
      const { id, ...payload } = event;
      expect(id).toBe(message.id);
      expect(JSON.parse(message.data)).toEqual(payload);
      expect(message.event).toBe(payload.event);
    }
    expect(stream.comments[0]).toBe('stream open');
  });

  it('resumes right after the event named by Last-Event-ID or ?after=, nothing missed and nothing repeated (the header wins)', async () => {
    const { base } = await start();
    const first = await open(base);
    await createTickets(6);
    const sent = await first.waitForMessages(6);
    first.close();
    await createTickets(3, 'while away');
    const all = await feedIds();
    expect(all.slice(-9, -3)).toEqual(sent.map((m) => m.id));

    const byHeader = await open(base, STREAM, { 'last-event-id': sent[2]!.id });
    const byQuery = await open(base, `${STREAM}?after=${sent[2]!.id}`);
    const headerWins = await open(base, `${STREAM}?after=${sent[4]!.id}`, { 'last-event-id': sent[2]!.id });
    const expected = all.slice(-6);
    for (const stream of [byHeader, byQuery, headerWins]) expect((await stream.waitForMessages(6)).map((m) => m.id)).toEqual(expected);
    await createTickets(1, 'later');
    for (const stream of [byHeader, byQuery, headerWins]) {
      const messages = await stream.waitForMessages(7);
      expect(messages.map((m) => m.id)).toEqual((await feedIds()).slice(-7));
    }
  });

  it('resumes across a restart of the server from the last event read', async () => {
    let { base } = await start();
    const before = await open(base);
    await createTickets(5);
    const read = await before.waitForMessages(5);
    await server!.close();
    await before.waitForEnd();
    expect(before.ended).toBe(true);
    ({ base } = await start());
    await createTickets(4, 'after the restart');
    const resumed = await open(base, STREAM, { 'last-event-id': read[3]!.id });
    const messages = await resumed.waitForMessages(5);
    const all = await feedIds();
    expect([...read.slice(0, 4), ...messages].map((m) => m.id)).toEqual(all);
  });

  it('narrows to the types asked for, and a resumed stream skips the others too', async () => {
    const { base } = await start();
    const stream = await open(base, `${STREAM}?type=ticket.deleted&type=ticket.resolved`);
    const ids = await createTickets(3);
    await server!.request('PUT', `/tickets/${ids[0]}`, { body: { ticket: { status: 'resolved' } } });
    await server!.request('DELETE', `/tickets/${ids[1]}`);
    const messages = await stream.waitForMessages(2);
    expect(messages.map((m) => `${m.event} ${JSON.parse(m.data).data.ticket.id}`)).toEqual([`ticket.resolved ${ids[0]}`, `ticket.deleted ${ids[1]}`]);
    await server!.request('DELETE', `/tickets/${ids[2]}`);
    expect((await stream.waitForMessages(3)).map((m) => m.event)).toEqual(['ticket.resolved', 'ticket.deleted', 'ticket.deleted']);
  });

  it('sends a heartbeat comment while nothing happens', async () => {
    const { base } = await start({ runtime: { eventStreams: { heartbeatMs: 100 } } });
    const stream = await open(base);
    await waitFor('two heartbeats', () => stream.comments.filter((c) => c === 'heartbeat').length >= 2);
    expect(stream.messages).toEqual([]);
  });

  it('refuses a stream past HELPDESK_EVENT_STREAMS with 429 and Retry-After, and counts streams in /metrics', async () => {
    const { base } = await start({ env: { HELPDESK_EVENT_STREAMS: '2' } });
    const a = await open(base);
    await open(base);
    const refused = await open(base);
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBe('5');
    expect(JSON.parse(refused.body).error.code).toBe('rate_limited');
    expect(JSON.parse(refused.body).error.message).toContain('HELPDESK_EVENT_STREAMS');
    expect(await metric('helpdesk_event_streams_open')).toBe(2);
    expect(await metric('helpdesk_event_streams_refused_total')).toBe(1);
    a.close();
    await waitFor('the closed stream to be counted', async () => (await metric('helpdesk_event_streams_open')) === 1);
    expect(await metric('helpdesk_event_streams_closed_total{reason="client"}')).toBe(1);
    const again = await open(base);
    expect(again.status).toBe(200);
    await createTickets(2);
    await again.waitForMessages(2);
    await waitFor('the events to be counted', async () => (await metric('helpdesk_event_stream_events_total')) >= 3);
  });

  it('refuses a cursor it does not keep, and callers who are not admins, before any stream starts', async () => {
    const { base } = await start();
    const unknownQuery = await open(base, `${STREAM}?after=evt_0000000000000000000000000000`);
    expect(unknownQuery.status).toBe(400);
    expect(JSON.parse(unknownQuery.body).error.details[0].path).toBe('after');
    const unknownHeader = await open(base, STREAM, { 'last-event-id': 'evt_0000000000000000000000000000' });
    expect(JSON.parse(unknownHeader.body).error.details[0].path).toBe('Last-Event-ID');
    const malformed = await open(base, STREAM, { 'last-event-id': 'tkt_1' });
    expect(malformed.status).toBe(400);
    expect((await open(base, `${STREAM}?type=webhook.test`)).status).toBe(400);
    expect((await open(base, `${STREAM}?since=2025-01-01T00:00:00Z`)).status).toBe(400);
    const agent = await server!.keyFor('agent');
    expect((await open(base, STREAM, {}, agent.key)).status).toBe(403);
    expect((await open(base, STREAM, {}, 'not-a-key')).status).toBe(401);
    expect(await metric('helpdesk_event_streams_open')).toBe(0);
  });

  it('drops a client that stops reading (the others go on), and the client resumes with nothing missed', async () => {
    const { base } = await start({ runtime: { eventStreams: { stallMs: 500 } } });
    const slow = await open(base);
    const fast = await open(base);
    slow.pause();
    // Large events (an update of the longest description carries it twice), so that the socket
    // buffers fill long before the loop ends: on Linux loopback they can grow to tcp_rmem's and
    // tcp_wmem's maximums (32 and 4 MiB here).
    const [ticket] = await createTickets(1);
    for (let i = 0; i < 800; i += 1) {
      const update = await server!.request('PUT', `/tickets/${ticket}`, { body: { ticket: { description: String(i % 10).repeat(65_536) } } });
      expect(update.status).toBe(200);
      if (i % 20 === 0 && (await metric('helpdesk_event_streams_closed_total{reason="slow"}')) === 1) break;
    }
    await waitFor('the slow stream to be dropped', async () => (await metric('helpdesk_event_streams_closed_total{reason="slow"}')) === 1);
    const written = (await feedIds()).length;
    // The stream that kept reading got everything and is still open.
    expect((await fast.waitForMessages(written)).length).toBe(written);
    expect(await metric('helpdesk_event_streams_open')).toBe(1);
    // The dropped client reads what reached it, then resumes after its last whole message.
    slow.resume();
    await slow.waitForEnd();
    const got: SseMessage[] = [...slow.messages];
    expect(got.length).toBeGreaterThan(0);
    expect(got.length).toBeLessThan(written);
    const resumed = await open(base, STREAM, { 'last-event-id': got.at(-1)!.id });
    const rest = await resumed.waitForMessages(written - got.length);
    expect([...got, ...rest].map((m) => m.id)).toEqual(fast.messages.map((m) => m.id));
  });
});
