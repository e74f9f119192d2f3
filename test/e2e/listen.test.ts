/**
 * `helpdesk listen`, the real program against a real `helpdesk serve`, on both databases: every
 * event arrives at a plain-HTTP receiver on localhost, once, in order, verified by the
 * standardwebhooks library with the secret listen printed; a SIGKILLed and restarted server loses
 * and repeats nothing; bad keys, an unreachable server and bad flags each say so and exit as
 * documented (docs/configuration.md, "listen and trigger"); Ctrl-C exits 0.
 */
import { Webhook as StandardWebhook } from 'standardwebhooks';
import { afterAll, afterEach, beforeAll, expect, inject, it } from 'vitest';
import { HELPDESK_VERSION } from '../../src/config.js';
import { callApi, CLIENT_TEST_TOKEN, readFeed, startPlainReceiver, startServe, stopProcess, type FeedEvent, type PlainReceiver, type PlainRequest, type ServeProcess } from '../helpers/client-commands.js';
import { createTestDatabase, type TestDatabase } from '../helpers/databases.js';
import { describeEachDialect } from '../helpers/dialects.js';
import { freePort, spawnHelpdesk, type HelpdeskProcess } from '../helpers/processes.js';
import { startReceiver } from '../helpers/receiver.js';
import { waitFor } from '../helpers/wait.js';

const READY_LINE = /^Ready\. Signing secret: (whsec_[A-Za-z0-9+/]{43}=)\n/;
const EVENT_LINE = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d {2}(\S+) +(tkt_\w+) {2}(evt_\w+) {2}--> (.*)$/;

/** The events a ticket's documented order allows at one version (docs/api.md, "Events and payloads"). */
const ORDER_WITHIN_A_CHANGE = ['ticket.created', 'ticket.updated', 'ticket.assignment.changed', 'ticket.resolved', 'ticket.deleted'];

function startListen(args: string[], env: Record<string, string> = {}): HelpdeskProcess {
  return spawnHelpdesk(['listen', ...args], env);
}

async function readySecret(listen: HelpdeskProcess): Promise<string> {
  const match = await waitFor(`listen to print its Ready line (output: ${listen.output()})`, () => {
    if (listen.child.exitCode !== null) throw new Error(`listen exited: ${listen.output()}`);
    return READY_LINE.exec(listen.stdout());
  });
  return match[1]!;
}

function eventLines(stdout: string): RegExpExecArray[] {
  return stdout.split('\n').flatMap((line) => {
    const match = EVENT_LINE.exec(line);
    return match ? [match] : [];
  });
}

/** Verifies every request with the printed secret; each payload must be the feed's event, byte for byte in meaning. */
function verifiedEvents(requests: PlainRequest[], secret: string): { id: string; payload: { event: string; timestamp: string; data: FeedEvent['data'] } }[] {
  const verifier = new StandardWebhook(secret);
  return requests.map((request) => ({ id: request.headers['webhook-id']!, payload: verifier.verify(request.body, request.headers) as never }));
}

/** Within each ticket, arrivals follow its changes: versions never go back, and one change's events keep their documented order. */
function expectEachTicketInOrder(arrived: { payload: { event: string; data: FeedEvent['data'] } }[]): void {
  const last = new Map<string, { version: number; rank: number }>();
  for (const { payload } of arrived) {
    const ticket = payload.data.ticket;
    const rank = ORDER_WITHIN_A_CHANGE.indexOf(payload.event);
    const before = last.get(ticket.id);
    if (before) expect(ticket.version > before.version || (ticket.version === before.version && rank > before.rank), `${payload.event} v${ticket.version} of ${ticket.id} after v${before.version}`).toBe(true);
    last.set(ticket.id, { version: ticket.version, rank });
  }
}

describeEachDialect('helpdesk listen', (dialect) => {
  let database: TestDatabase;
  let server: ServeProcess;
  const cleanups: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    database = await createTestDatabase(dialect);
    server = await startServe(database);
  }, 60_000);
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  afterAll(async () => {
    if (server) await stopProcess(server);
    if (database) await database.drop();
  });

  async function receiver(status?: (request: PlainRequest, index: number) => number): Promise<PlainReceiver> {
    const started = await startPlainReceiver(status);
    cleanups.push(() => started.close());
    return started;
  }
  function listen(args: string[], env?: Record<string, string>): HelpdeskProcess {
    const started = startListen(args, env);
    cleanups.push(() => stopProcess(started));
    return started;
  }

  it('forwards every event, signed with the secret it printed first, once and in order; --events narrows the types', async () => {
    // The second request is answered 500: listen prints it and moves on.
    const everything = await receiver((_request, index) => (index === 1 ? 500 : 200));
    const narrowed = await receiver();
    const all = listen(['--forward-to', everything.url, '--url', server.base], { HELPDESK_API_KEY: CLIENT_TEST_TOKEN });
    const some = listen(['--forward-to', narrowed.url, '--url', server.base, '--api-key', CLIENT_TEST_TOKEN, '--events', 'ticket.resolved,ticket.deleted']);
    const secret = await readySecret(all);
    const narrowedSecret = await readySecret(some);
    expect(secret).not.toBe(narrowedSecret);

    const since = new Date().toISOString();
    const user = await callApi(server.base, 'POST', '/users', { user: { name: 'Listen Agent', email: `listen-${dialect}@example.com`, role: 'agent' } });
    expect(user.status).toBe(201);
    const tickets: string[] = [];
    for (let i = 0; i < 3; i += 1) {
      const created = await callApi(server.base, 'POST', '/tickets', { ticket: { subject: `listen ${i}` } });
      expect(created.status).toBe(201);
      tickets.push(created.body.ticket.id);
      expect((await callApi(server.base, 'PUT', `/tickets/${created.body.ticket.id}`, { ticket: { assigneeId: user.body.user.id, status: 'resolved' } })).status).toBe(200);
    }
    expect((await callApi(server.base, 'DELETE', `/tickets/${tickets[0]}`)).status).toBe(204);

    const feed = (await readFeed(server.base, `&since=${encodeURIComponent(since)}`)).reverse();
    expect(feed).toHaveLength(3 * 4 + 1);
    const requests = await everything.waitForRequests(feed.length);
    const arrived = verifiedEvents(requests, secret);
    // Exactly the feed's events, each once, each with its own id as webhook-id and its exact payload.
    expect(arrived.map((a) => a.id).sort()).toEqual(feed.map((e) => e.id).sort());
    expect(new Set(arrived.map((a) => a.id)).size).toBe(arrived.length);
    const byId = new Map(feed.map((e) => [e.id, e]));
    for (const { id, payload } of arrived) {
      const event = byId.get(id)!;
      expect(payload).toEqual({ event: event.event, timestamp: event.timestamp, data: event.data });
    }
    // One writer, one change after another: commit order is the order of their timestamps.
    const timestamps = arrived.map((a) => a.payload.timestamp);
    expect(timestamps).toEqual([...timestamps].sort());
    expectEachTicketInOrder(arrived);
    for (const request of requests) {
      expect(request.headers['content-type']).toBe('application/json');
      expect(request.headers['user-agent']).toBe(`Helpdesk-Webhooks/${HELPDESK_VERSION}`);
      expect(request.headers['x-helpdesk-event']).toBe(JSON.parse(request.body).event);
    }

    // One line per event, in the order forwarded, with the receiver's answer.
    await waitFor('a line for every event', () => eventLines(all.stdout()).length >= feed.length);
    const lines = eventLines(all.stdout());
    expect(lines.map((line) => line[3])).toEqual(arrived.map((a) => a.id));
    expect(lines.map((line) => line[1])).toEqual(arrived.map((a) => a.payload.event));
    expect(lines.map((line) => line[2])).toEqual(arrived.map((a) => a.payload.data.ticket.id));
    expect(lines.map((line) => /^(\d{3}) \(\d+ ms\)$/.exec(line[4]!)?.[1])).toEqual(arrived.map((_, index) => (index === 1 ? '500' : '200')));
    expect(all.stdout().split('\n')[0]).toMatch(/^Ready\. Signing secret: whsec_/);

    const wanted = feed.filter((e) => e.event === 'ticket.resolved' || e.event === 'ticket.deleted');
    const narrowedArrivals = verifiedEvents(await narrowed.waitForRequests(wanted.length), narrowedSecret);
    expect(narrowedArrivals.map((a) => a.id)).toEqual(wanted.map((e) => e.id));
    // Nothing else comes: the last change made is the deletion, the last event it wants.
    expect(narrowed.requests).toHaveLength(wanted.length);
    expect(all.stderr()).toBe('');
  });

  it('forwards over https to a receiver trusted through NODE_EXTRA_CA_CERTS, as Node does; without it the line says tls and listen goes on', async () => {
    const secure = await startReceiver();
    cleanups.push(() => secure.close());
    const trusting = listen(['--forward-to', secure.url('/hook'), '--url', server.base, '--api-key', CLIENT_TEST_TOKEN], { NODE_EXTRA_CA_CERTS: inject('tls').caPath });
    const distrusting = listen(['--forward-to', secure.url('/hook'), '--url', server.base, '--api-key', CLIENT_TEST_TOKEN]);
    const secret = await readySecret(trusting);
    await readySecret(distrusting);
    const created = await callApi(server.base, 'POST', '/tickets', { ticket: { subject: 'over https' } });
    expect(created.status).toBe(201);
    const [request] = await secure.waitForRequests(1);
    expect(new StandardWebhook(secret).verify(request!.body, request!.headers)).toMatchObject({ event: 'ticket.created', data: { ticket: { id: created.body.ticket.id } } });
    await waitFor('the failed forward line', () => eventLines(distrusting.stdout()).find((line) => line[2] === created.body.ticket.id));
    expect(eventLines(distrusting.stdout()).find((line) => line[2] === created.body.ticket.id)![4]).toMatch(/^failed: tls, .*certificate.*\(\d+ ms\)$/);
    expect(secure.requests).toHaveLength(1);
    expect(distrusting.child.exitCode).toBeNull();
  });

  it('exits 0 on Ctrl-C (SIGINT) and on SIGTERM', async () => {
    const target = await receiver();
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      const running = listen(['--forward-to', target.url, '--url', server.base, '--api-key', CLIENT_TEST_TOKEN]);
      await readySecret(running);
      running.child.kill(signal);
      expect(await running.exited, `${signal}: ${running.output()}`).toEqual({ code: 0, signal: null });
    }
  });

  it('exits 1 with the setting to fix for a wrong key (401), an agent key (403) and an unreachable server', async () => {
    const target = await receiver();
    const wrong = listen(['--forward-to', target.url, '--url', server.base, '--api-key', 'hdk_not-a-key-of-this-server']);
    expect(await wrong.exited).toEqual({ code: 1, signal: null });
    expect(wrong.stdout()).toBe('');
    expect(wrong.stderr()).toBe(`helpdesk listen: the server at ${server.base} does not accept this API key (401 unauthorized): set --api-key or HELPDESK_API_KEY to an admin key of that server\n`);

    const agent = await callApi(server.base, 'POST', '/users', { user: { name: 'Agent', email: `agent-key-${dialect}@example.com`, role: 'agent' } });
    const key = await callApi(server.base, 'POST', '/api-keys', { apiKey: { name: 'agent', userId: agent.body.user.id } });
    expect(key.status).toBe(201);
    const forbidden = listen(['--forward-to', target.url, '--url', server.base], { HELPDESK_API_KEY: key.body.apiKey.key });
    expect(await forbidden.exited).toEqual({ code: 1, signal: null });
    expect(forbidden.stderr()).toBe(`helpdesk listen: this API key is not an admin's (403 forbidden from ${server.base}): set --api-key or HELPDESK_API_KEY to an admin key\n`);

    const nobody = `http://127.0.0.1:${await freePort()}`;
    const unreachable = listen(['--forward-to', target.url, '--url', nobody, '--api-key', CLIENT_TEST_TOKEN]);
    expect(await unreachable.exited).toEqual({ code: 1, signal: null });
    expect(unreachable.stderr()).toMatch(new RegExp(`^helpdesk listen: cannot reach the Helpdesk server at ${nobody}: connect ECONNREFUSED 127\\.0\\.0\\.1:\\d+ .*--url chooses the server\\)\\n$`));
    expect(target.requests).toHaveLength(0);
  });

  it('exits 1 when it cannot resume without missing events: the server came back without the last event it received', async () => {
    const first = await createTestDatabase(dialect);
    const second = await createTestDatabase(dialect);
    cleanups.push(() => first.drop(), () => second.drop());
    let serving = await startServe(first);
    cleanups.push(() => stopProcess(serving));
    const target = await receiver();
    const running = listen(['--forward-to', target.url, '--url', serving.base, '--api-key', CLIENT_TEST_TOKEN]);
    await readySecret(running);
    const created = await callApi(serving.base, 'POST', '/tickets', { ticket: { subject: 'the last one received' } });
    const [request] = await target.waitForRequests(1);
    const lastReceived = request!.headers['webhook-id']!;
    // The same address, another database: the event listen would resume after is not there.
    await stopProcess(serving);
    serving = await startServe(second, serving.port);
    expect(await running.exited, running.output()).toEqual({ code: 1, signal: null });
    expect(running.stderr()).toMatch(
      new RegExp(`^helpdesk listen: the server no longer keeps ${lastReceived}, the last event listen received \\(400 validation_failed: .+\\), so it cannot resume without missing events: start listen again to follow new events\\n$`),
    );
    expect(created.status).toBe(201);
  });

  it('exits 2 on bad flags, saying which', async () => {
    const cases: { args: string[]; message: RegExp }[] = [
      { args: ['--api-key', CLIENT_TEST_TOKEN], message: /^helpdesk listen: listen needs --forward-to <url>/ },
      { args: ['--forward-to', 'ftp://localhost/x', '--api-key', CLIENT_TEST_TOKEN], message: /^helpdesk listen: --forward-to must be an http or https URL.*not "ftp:\/\/localhost\/x"/ },
      { args: ['--forward-to', 'not a url', '--api-key', CLIENT_TEST_TOKEN], message: /^helpdesk listen: --forward-to must be an http or https URL/ },
      {
        args: ['--forward-to', 'http://localhost:9/x', '--api-key', CLIENT_TEST_TOKEN, '--events', 'ticket.created,ticket.exploded'],
        message: /^helpdesk listen: --events .*"ticket\.exploded" is not one; the types are ticket\.created, ticket\.updated, ticket\.deleted, ticket\.assignment\.changed, ticket\.resolved\n/,
      },
      { args: ['--forward-to', 'http://localhost:9/x', '--api-key', CLIENT_TEST_TOKEN, '--colour', 'blue'], message: /^error: unknown option '--colour'\n\(run "helpdesk listen --help" for its options\)\n$/ },
      { args: ['--forward-to', 'http://localhost:9/x', '--api-key', CLIENT_TEST_TOKEN, '--secret', 'hunter2'], message: /^helpdesk listen: --secret must look like a signing secret/ },
      { args: ['--forward-to', 'http://localhost:9/x'], message: /^helpdesk listen: listen needs an API key: pass --api-key <key> or set HELPDESK_API_KEY\n/ },
    ];
    const help = listen(['--help']);
    const runs = cases.map(({ args }) => listen([...args, '--url', server.base]));
    expect(await help.exited).toEqual({ code: 0, signal: null });
    expect(help.stdout()).toMatch(/^Usage: helpdesk listen \[options\]\n/);
    for (const [index, { args, message }] of cases.entries()) {
      const run = runs[index]!;
      expect(await run.exited, args.join(' ')).toEqual({ code: 2, signal: null });
      expect(run.stderr(), args.join(' ')).toMatch(message);
      expect(run.stdout()).toBe('');
    }
  });

  it('resumes after the server is SIGKILLed and restarted under it: every committed event arrives exactly once', { timeout: 120_000 }, async () => {
    const own = await createTestDatabase(dialect);
    cleanups.push(() => own.drop());
    let serving = await startServe(own);
    cleanups.push(() => stopProcess(serving));
    const target = await receiver();
    const running = listen(['--forward-to', target.url, '--url', serving.base, '--api-key', CLIENT_TEST_TOKEN]);
    const secret = await readySecret(running);

    // One writer keeps changing tickets through the kill and the restart; a request that fails
    // while the server is down may or may not have committed, so the feed, not the writer, says
    // what was committed.
    let writing = true;
    let answered = 0;
    const writer = (async () => {
      const tickets: string[] = [];
      for (let i = 0; writing; i += 1) {
        try {
          if (i % 3 === 0 || tickets.length === 0) {
            const created = await callApi(serving.base, 'POST', '/tickets', { ticket: { subject: `resume ${i}` } });
            if (created.status === 201) tickets.push(created.body.ticket.id);
          } else {
            await callApi(serving.base, 'PUT', `/tickets/${tickets[i % tickets.length]}`, { ticket: { priority: ['low', 'high', 'urgent'][i % 3] } });
          }
          answered += 1;
        } catch {
          // The server is down: try again until it is back, without spinning a core on it.
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }
    })();

    await target.waitForRequests(20);
    serving.child.kill('SIGKILL');
    await serving.exited;
    const answeredBeforeRestart = answered;
    serving = await startServe(own, serving.port);
    await waitFor('the writer to get answers from the restarted server', () => answered >= answeredBeforeRestart + 20, 30_000);
    writing = false;
    await writer;

    const feed = (await readFeed(serving.base)).reverse();
    await waitFor(`all ${feed.length} events at the receiver (${target.requests.length} so far)`, () => target.requests.length >= feed.length, 30_000);
    const arrived = verifiedEvents(target.requests, secret);
    expect(arrived).toHaveLength(feed.length);
    expect(new Set(arrived.map((a) => a.id)).size).toBe(feed.length);
    expect(arrived.map((a) => a.id).sort()).toEqual(feed.map((e) => e.id).sort());
    expectEachTicketInOrder(arrived);

    const output = running.stdout();
    expect(output).toMatch(/\nLost the connection to http:\/\/127\.0\.0\.1:\d+ \(.+\); reconnecting in 0\.5 s\n/);
    const resumed = /\nReconnected to http:\/\/127\.0\.0\.1:\d+; resumed after (evt_\w+)\n/.exec(output);
    expect(resumed, output).not.toBeNull();
    // It resumed after the last event it had received before the connection was lost.
    const beforeLoss = eventLines(output.slice(0, resumed!.index));
    expect(resumed![1]).toBe(beforeLoss.at(-1)![3]);
    expect(running.child.exitCode).toBeNull();
  });
});
