/**
 * The event stream while three `helpdesk serve` processes write to one PostgreSQL database, with
 * the real program: their transactions commit concurrently, so an event's place in commit order
 * is not the order its number was taken in (docs/api.md, "The event stream"). A stream is read
 * from one process, dropped half-way and resumed by Last-Event-ID on another, then again on the
 * third. Everything committed must arrive exactly once, and each ticket's events in the order of
 * its changes.
 */
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/databases.js';
import { freePort, spawnHelpdesk, type HelpdeskProcess } from '../helpers/processes.js';
import { openSse, type SseMessage } from '../helpers/sse.js';
import { waitFor } from '../helpers/wait.js';

const TOKEN = 'stream-writers-admin-token-0123456789';
const WRITERS_PER_PROCESS = 4;
const CHANGES_PER_WRITER = 60;

async function startApi(database: TestDatabase): Promise<HelpdeskProcess & { base: string }> {
  const port = await freePort();
  const api = spawnHelpdesk('serve', {
    HELPDESK_DATABASE_URL: database.url,
    HELPDESK_ADMIN_TOKEN: TOKEN,
    HELPDESK_PORT: String(port),
    HELPDESK_SERVE_WORKER: 'false',
    HELPDESK_LOG_LEVEL: 'warn',
    HELPDESK_RATE_LIMIT: '1000000',
    HELPDESK_SECRET_KEY: Buffer.alloc(32, 3).toString('base64'),
  });
  const base = `http://127.0.0.1:${port}`;
  await waitFor(`the API to answer (output: ${api.output()})`, () => fetch(`${base}/healthz`).then((r) => r.ok, () => false), 30_000);
  return { ...api, base };
}

const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };

const postgresMissing = !inject('postgresAvailable');
describe.skipIf(postgresMissing)(`the event stream with three processes writing [postgres${postgresMissing ? ': SKIPPED, PostgreSQL not reachable' : ''}]`, () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  });

  it('resumed by id on another process, misses nothing and repeats nothing, each ticket in the order of its changes', { timeout: 180_000 }, async () => {
    const database = await createTestDatabase('postgres');
    cleanups.push(() => database.drop());
    const apis = await Promise.all([startApi(database), startApi(database), startApi(database)]);
    for (const api of apis) cleanups.push(async () => api.child.exitCode === null && api.child.kill('SIGKILL'));

    // A few tickets exist before the stream starts: their creations are not part of it.
    const tickets: string[] = [];
    for (let i = 0; i < 10; i += 1) {
      const response = await fetch(`${apis[i % 3]!.base}/helpdesk/api/v1/tickets`, { method: 'POST', headers, body: JSON.stringify({ ticket: { subject: `seed ${i}` } }) });
      tickets.push(((await response.json()) as { ticket: { id: string } }).ticket.id);
    }

    const received: SseMessage[] = [];
    let stream = await openSse(apis[0]!.base, '/helpdesk/api/v1/events/stream', { key: TOKEN });
    expect(stream.status).toBe(200);

    // Writers on all three processes at once: creations, and updates of shared tickets, so that
    // one ticket's changes come from different processes and wait on each other's row locks.
    let written = 0;
    const writer = async (process: number, seed: number) => {
      const base = `${apis[process]!.base}/helpdesk/api/v1`;
      for (let i = 0; i < CHANGES_PER_WRITER; i += 1) {
        const pick = (seed * 31 + i * 17) % 10;
        if (pick < 3) {
          const response = await fetch(`${base}/tickets`, { method: 'POST', headers, body: JSON.stringify({ ticket: { subject: `w${process}.${seed}.${i}` } }) });
          expect(response.status).toBe(201);
          tickets.push(((await response.json()) as { ticket: { id: string } }).ticket.id);
        } else {
          const ticket = tickets[(seed * 7 + i * 13) % tickets.length]!;
          const change = pick < 6 ? { priority: ['low', 'normal', 'high', 'urgent'][i % 4] } : pick < 9 ? { tags: [`t${i}`, `w${process}`] } : { status: i % 2 === 0 ? 'pending' : 'open' };
          const response = await fetch(`${base}/tickets/${ticket}`, { method: 'PUT', headers, body: JSON.stringify({ ticket: change }) });
          expect(response.status).toBe(200);
          await response.arrayBuffer();
        }
        written += 1;
      }
    };
    const writing = Promise.all(apis.flatMap((_, process) => Array.from({ length: WRITERS_PER_PROCESS }, (__, seed) => writer(process, seed))));

    // Half-way, the stream is dropped and resumed on the second process; later on the third.
    const total = apis.length * WRITERS_PER_PROCESS * CHANGES_PER_WRITER;
    for (const [next, threshold] of [
      [1, total / 3],
      [2, (2 * total) / 3],
    ] as const) {
      await waitFor(`${threshold} changes written`, () => written >= threshold, 60_000);
      await stream.waitForMessages(1);
      stream.close();
      received.push(...stream.messages);
      stream = await openSse(apis[next]!.base, '/helpdesk/api/v1/events/stream', { key: TOKEN, headers: { 'last-event-id': received.at(-1)!.id } });
      expect(stream.status).toBe(200);
    }
    await writing;

    // Everything committed since the stream started, from the feed.
    const feed: { id: string; event: string; data: { ticket: { id: string; version: number } } }[] = [];
    let cursor: string | null = null;
    do {
      const response = await fetch(`${apis[0]!.base}/helpdesk/api/v1/events?limit=100${cursor ? `&cursor=${cursor}` : ''}`, { headers });
      const page = (await response.json()) as { events: typeof feed; nextCursor: string | null };
      feed.push(...page.events);
      cursor = page.nextCursor;
    } while (cursor !== null);
    const seeded = new Set(tickets.slice(0, 10).map((id) => `ticket.created ${id}`));
    const expected = feed.filter((e) => !seeded.has(`${e.event} ${e.data.ticket.id}`));
    // An update that restates a ticket's values makes no event: most changes do make one.
    expect(expected.length).toBeGreaterThan(total / 2);

    await stream.waitForMessages(expected.length - received.length, 60_000);
    received.push(...stream.messages);
    stream.close();

    const ids = received.map((m) => m.id);
    expect(new Set(ids).size, 'no event repeated').toBe(ids.length);
    expect([...ids].sort(), 'every event committed since the stream started, and nothing else').toEqual(expected.map((e) => e.id).sort());
    // Each ticket's changes in order: versions never go back, and a ticket's events arrive in
    // the order of its changes (the events of one change share a version).
    const lastVersion = new Map<string, number>();
    for (const message of received) {
      const { id, version } = (JSON.parse(message.data) as { data: { ticket: { id: string; version: number } } }).data.ticket;
      expect(version, `${message.event} of ${id}`).toBeGreaterThanOrEqual(lastVersion.get(id) ?? 0);
      lastVersion.set(id, version);
    }
  });
});
