/**
 * The reference receiver converges (examples/reference-receiver/; docs/reliability.md, "A
 * receiver that converges"), on SQLite and on PostgreSQL, with the real program and the receiver
 * each in its own process. 2,000 ticket changes of every kind (creations; updates of every field,
 * tags and custom fields included; assignments; resolutions; deletions) are written 8 at a time
 * while:
 * - the receiver refuses 10 % of deliveries (503, its fault injection);
 * - the receiver is SIGKILLed and stays down until deliveries have failed for good (their
 *   schedule spent on a closed port);
 * - then `helpdesk serve` is SIGKILLed, the receiver started again on the same file while the
 *   server is down (so its catch-up from the feed fails and is tried again, and deliveries
 *   resumed after the server's restart may race it and find version gaps), and the server
 *   started again;
 * - `helpdesk serve` is SIGKILLed again later, under full delivery flow (deliveries in flight:
 *   sent and not recorded come again as duplicates; leased ones wait for their lease), and
 *   started again.
 * The order of operations is by change count and by state polled, never by a sleep.
 * Then the receiver's copy (its SQLite file) must equal the server's tickets (GET /tickets, every
 * page) field for field, deleted tickets absent from both. Then a redelivery storm: a `recover` of
 * everything since the start and a redelivery of 200 delivered deliveries; every one the receiver
 * accepts must be dropped (duplicate or stale), and the copy must still be equal.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Agent, fetch as fetchTrusting } from 'undici';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { openDatabase } from '../../src/db/connection.js';
import { createTestDatabase, selectedDialects } from '../helpers/databases.js';
import { trackOpen } from '../helpers/leaks.js';
import { freePort, spawnHelpdesk, type Exit, type HelpdeskProcess } from '../helpers/processes.js';
import { seededRandom } from '../helpers/random.js';
import { waitFor } from '../helpers/wait.js';

const TOKEN = 'reference-receiver-admin-token-0123456789';
const CHANGES = 2_000;
const CONCURRENCY = 8;
const RECEIVER_KILLED_AT = 400;
/** The receiver comes back once this change is written and deliveries have failed for good. */
const RECEIVER_BACK_AFTER = 800;
const FAILED_WHILE_DOWN = 20;
const SERVER_KILLED_AGAIN_AT = 1_500;
const REDELIVERED = 200;
const TICKET_EVENTS = ['ticket.created', 'ticket.updated', 'ticket.assignment.changed', 'ticket.resolved', 'ticket.deleted'];

interface Ticket {
  id: string;
  version: number;
  [field: string]: unknown;
}

interface ReceiverStats {
  counters: Record<string, number>;
  catchingUp: boolean;
  missed: boolean;
}

interface ReceiverProcess {
  output(): string;
  kill(signal: NodeJS.Signals): void;
  exited: Promise<Exit>;
}

function spawnReceiver(args: string[]): ReceiverProcess {
  let output = '';
  const child = spawn(process.execPath, ['examples/reference-receiver/receiver.mjs', ...args], { env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const untrack = trackOpen(child, `reference receiver (pid ${child.pid})`);
  const exited = new Promise<Exit>((resolve) =>
    child.on('exit', (code, signal) => {
      untrack();
      resolve({ code, signal });
    }),
  );
  return { output: () => output, kill: (signal) => child.exitCode === null && child.signalCode === null && child.kill(signal), exited };
}

for (const dialect of selectedDialects()) {
  const unavailable = dialect === 'postgres' && !inject('postgresAvailable');
  describe.skipIf(unavailable)(`the reference receiver converges [${dialect}${unavailable ? ': SKIPPED, PostgreSQL not reachable' : ''}]`, () => {
    const cleanups: (() => Promise<unknown>)[] = [];
    afterAll(async () => {
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
    });

    it('keeps a copy equal to the server through refusals, its own SIGKILL, the server SIGKILLed and a redelivery storm', { timeout: 300_000 }, async () => {
      const runStart = new Date();
      const database = await createTestDatabase(dialect);
      cleanups.push(() => database.drop());
      const dir = mkdtempSync(join(tmpdir(), 'reference-receiver-e2e-'));
      cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
      const tls = inject('tls');
      writeFileSync(join(dir, 'cert.pem'), tls.cert);
      writeFileSync(join(dir, 'key.pem'), tls.key);
      const storePath = join(dir, 'copy.db');
      const [port, receiverPort] = [await freePort(), await freePort()];
      const origin = `http://127.0.0.1:${port}`;
      const base = `${origin}/helpdesk/api/v1`;

      // The server, started again on the same database after its SIGKILL.
      let server: HelpdeskProcess | null = null;
      const startServer = async () => {
        server = spawnHelpdesk('serve', {
          HELPDESK_DATABASE_URL: database.url,
          HELPDESK_ADMIN_TOKEN: TOKEN,
          HELPDESK_PORT: String(port),
          HELPDESK_ALLOW_PRIVATE_TARGETS: 'true',
          // Four attempts within about 0.6 s: a delivery to a receiver that is down fails for
          // good well within its downtime, and one the receiver refuses (10 %) fails for good
          // once in 10,000, which its catch-up of missed deliveries covers.
          HELPDESK_RETRY_SCHEDULE: '0.1,0.2,0.3',
          HELPDESK_DELIVERY_LEASE_SECONDS: '20',
          HELPDESK_RATE_LIMIT: '1000000',
          HELPDESK_LOG_LEVEL: 'warn',
          NODE_EXTRA_CA_CERTS: tls.caPath,
        });
        const current = server;
        await waitFor(`serve to answer (output: ${current.output()})`, () => fetch(`${origin}/healthz`).then((r) => r.ok, () => false), 20_000);
      };
      cleanups.push(async () => server?.child.exitCode === null && server.child.kill('SIGKILL'));
      await startServer();

      const call = async (method: string, path: string, body?: unknown) => {
        const response = await fetch(`${base}${path}`, {
          method,
          headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
        const text = await response.text();
        return { status: response.status, body: text === '' ? undefined : JSON.parse(text) };
      };

      const agents: string[] = [];
      for (let i = 0; i < 3; i += 1) {
        const user = await call('POST', '/users', { user: { name: `agent ${i}`, email: `agent${i}@example.com`, role: 'agent' } });
        expect(user.status).toBe(201);
        agents.push(user.body.user.id);
      }
      const created = await call('POST', '/webhooks', { webhook: { name: 'copy', targetUrl: `https://127.0.0.1:${receiverPort}/webhooks`, events: TICKET_EVENTS } });
      expect(created.status).toBe(201);
      const webhookId: string = created.body.webhook.id;

      // The receiver, started again on the same file after its SIGKILL.
      let receiver: ReceiverProcess | null = null;
      const startReceiverProcess = async () => {
        receiver = spawnReceiver([
          '--port', String(receiverPort),
          '--cert', join(dir, 'cert.pem'),
          '--key', join(dir, 'key.pem'),
          '--secret', created.body.webhook.signingSecret,
          '--api-url', origin,
          '--api-key', TOKEN,
          '--store', storePath,
          '--refuse-rate', '0.1',
          '--catch-up-margin-seconds', '10',
          '--catch-up-every-seconds', '5',
        ]);
        const current = receiver;
        await waitFor(`the receiver to listen (output: ${current.output()})`, () => current.output().includes('Listening on https://'), 20_000);
      };
      cleanups.push(async () => receiver?.kill('SIGKILL'));
      await startReceiverProcess();
      // The test process trusts the test CA only through its own agent (NODE_EXTRA_CA_CERTS is read at start).
      const trustingAgent = new Agent({ connect: { ca: tls.ca } });
      cleanups.push(() => trustingAgent.close());
      const receiverStats = async (): Promise<ReceiverStats> => (await fetchTrusting(`https://127.0.0.1:${receiverPort}/stats`, { dispatcher: trustingAgent })).json() as Promise<ReceiverStats>;

      const handle = openDatabase(loadConfig({ HELPDESK_DATABASE_URL: database.url }).database);
      cleanups.push(() => handle.close());
      const db = handle.db;
      const countDeliveries = async (where: 'failed' | 'unfinished') => {
        const row = await (where === 'failed'
          ? db.selectFrom('deliveries').where('status', '=', 'failed')
          : db.selectFrom('deliveries').where((eb) => eb.or([eb('status', '=', 'pending'), eb('next_attempt_at', 'is not', null)]))
        )
          .select((eb) => eb.fn.countAll<number | string>().as('n'))
          .executeTakeFirstOrThrow();
        return Number(row.n);
      };

      // The changes. Each picks a ticket created (and acknowledged) before it; a change the
      // server refuses (409 on a closed ticket, 404 on one deleted meanwhile) or that fails
      // because the server is down is not retried.
      const random = seededRandom(20261204);
      const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
      const live: string[] = [];
      const outcomes = { acknowledged: 0, refused: 0, unacknowledged: 0 };
      const customValue = () => pick<string | number | boolean | null>([`v${Math.floor(random() * 100)}`, Math.floor(random() * 1000) / 10, random() < 0.5, null]);
      const tags = () => Array.from({ length: Math.floor(random() * 4) }, () => pick(['vip', 'billing', 'bug', 'urgent', 'eu', 'us']));
      const nextChange = (i: number): { method: string; path: string; body?: unknown; ticketId?: string } => {
        const r = random();
        if (live.length < 20 || r < 0.25) {
          return {
            method: 'POST',
            path: '/tickets',
            body: { ticket: { subject: `ticket ${i}`, tags: tags(), customFields: { tier: pick(['gold', 'silver']), seats: Math.floor(random() * 50) }, priority: pick(['low', 'normal', 'high']), assigneeId: random() < 0.3 ? pick(agents) : null } },
          };
        }
        const ticketId = pick(live);
        const path = `/tickets/${ticketId}`;
        if (r < 0.29) return { method: 'DELETE', path, ticketId };
        if (r < 0.42) return { method: 'PUT', path, body: { ticket: { assigneeId: random() < 0.8 ? pick(agents) : null } }, ticketId };
        if (r < 0.5) return { method: 'PUT', path, body: { ticket: { status: 'resolved' } }, ticketId };
        const patch: Record<string, unknown> = {};
        const fields = Math.floor(random() * 3) + 1;
        for (let f = 0; f < fields; f += 1) {
          const field = pick(['subject', 'description', 'status', 'priority', 'requesterEmail', 'tags', 'customFields', 'customFields']);
          if (field === 'subject') patch.subject = `subject ${i}`;
          if (field === 'description') patch.description = random() < 0.2 ? '' : `description ${i}`;
          if (field === 'status') patch.status = random() < 0.03 ? 'closed' : pick(['open', 'pending', 'on_hold']);
          if (field === 'priority') patch.priority = pick(['low', 'normal', 'high', 'urgent']);
          if (field === 'requesterEmail') patch.requesterEmail = random() < 0.2 ? null : `requester${i}@example.com`;
          if (field === 'tags') patch.tags = tags();
          if (field === 'customFields') patch.customFields = { [pick(['tier', 'seats', 'region', 'sla', 'flag'])]: customValue(), ...(random() < 0.3 ? { [`k${i % 7}`]: customValue() } : {}) };
        }
        return { method: 'PUT', path, body: { ticket: patch }, ticketId };
      };
      const forget = (ticketId: string) => live.includes(ticketId) && live.splice(live.indexOf(ticketId), 1);
      const change = async (i: number) => {
        const { method, path, body, ticketId } = nextChange(i);
        try {
          const response = await call(method, path, body);
          if (response.status === 409 || response.status === 404) {
            outcomes.refused += 1;
            if (response.status === 404 && ticketId) forget(ticketId);
          } else if (response.status >= 200 && response.status < 300) {
            outcomes.acknowledged += 1;
            if (method === 'POST') live.push(response.body.ticket.id);
            if (method === 'DELETE') forget(ticketId!);
          } else outcomes.unacknowledged += 1;
        } catch {
          outcomes.unacknowledged += 1;
        }
      };

      // The faults, at set changes.
      let failedWhileDown = 0;
      let receiverBack: Promise<void> | null = null;
      let serverRestart: Promise<void> | null = null;
      let written = 0;
      const receiverDowntime = async (victim: ReceiverProcess) => {
        victim.kill('SIGKILL');
        await victim.exited;
        await waitFor('changes to go on while the receiver is down', () => written >= RECEIVER_BACK_AFTER, 120_000);
        failedWhileDown = await waitFor(`${FAILED_WHILE_DOWN} deliveries to fail for good while the receiver is down`, async () => {
          const failed = await countDeliveries('failed');
          return failed >= FAILED_WHILE_DOWN && failed;
        }, 60_000);
        const victimServer: HelpdeskProcess = server!;
        victimServer.child.kill('SIGKILL');
        serverRestart = victimServer.exited.then(async () => {
          await startReceiverProcess();
          await startServer();
        });
        await serverRestart;
      };
      let next = 0;
      const drive = async () => {
        for (let i = next++; i < CHANGES; i = next++) {
          if (i === RECEIVER_KILLED_AT) receiverBack = receiverDowntime(receiver!);
          if (i === SERVER_KILLED_AGAIN_AT) {
            await receiverBack;
            const victim: HelpdeskProcess = server!;
            victim.child.kill('SIGKILL');
            serverRestart = victim.exited.then(startServer);
          }
          if (serverRestart) await serverRestart;
          await change(i);
          written += 1;
        }
      };
      await Promise.all(Array.from({ length: CONCURRENCY }, drive));
      await receiverBack;
      const writesDone = Date.now();

      const serverTickets = async (): Promise<Ticket[]> => {
        const tickets: Ticket[] = [];
        let cursor: string | null = null;
        do {
          const page = await call('GET', `/tickets?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
          expect(page.status).toBe(200);
          tickets.push(...page.body.tickets);
          cursor = page.body.nextCursor;
        } while (cursor !== null);
        return tickets.sort((a, b) => a.id.localeCompare(b.id));
      };
      const copy = new Database(storePath, { readonly: true, fileMustExist: true });
      cleanups.push(async () => copy.close());
      const receiverTickets = (): Ticket[] => (copy.prepare('select ticket from tickets where deleted = 0 order by id').all() as { ticket: string }[]).map((row) => JSON.parse(row.ticket) as Ticket);
      const copyMatches = async () => sameTickets(await serverTickets(), receiverTickets());

      // Convergence: polled, with a deadline that allows for the leases the killed server held
      // (20 s) and a circuit breaker opened by the downtime (30 s).
      const converged = await waitFor('the copy to equal the server', async () => (await copyMatches()) && Date.now(), 120_000).catch(async (error: Error) => {
        const [expected, actual] = [await serverTickets(), receiverTickets()];
        const byId = new Map(actual.map((t) => [t.id, t]));
        const diff = expected.filter((t) => JSON.stringify(byId.get(t.id)) !== JSON.stringify(t)).slice(0, 3);
        throw new Error(`${error.message}: ${expected.length} on the server, ${actual.length} in the copy; first differences ${JSON.stringify(diff.map((t) => ({ server: t, copy: byId.get(t.id) ?? null })))}\nreceiver: ${receiver!.output().slice(-3000)}`);
      });
      const expected = await serverTickets();
      expect(receiverTickets()).toEqual(expected);
      expect(expected.length).toBeGreaterThan(100);

      // Everything delivered (or failed for good) before the storm.
      await waitFor('every delivery to be finished', async () => (await countDeliveries('unfinished')) === 0, 60_000);
      const before = await receiverStats();
      const failedBeforeStorm = await countDeliveries('failed');

      // The storm: every failed delivery recovered, 200 delivered ones redelivered.
      const stormStart = new Date().toISOString();
      const recovered = await call('POST', `/webhooks/${webhookId}/recover`, { since: runStart.toISOString() });
      expect(recovered.status).toBe(202);
      const succeeded = await db.selectFrom('deliveries').select('id').where('status', '=', 'succeeded').orderBy('id').execute();
      const chosen = Array.from({ length: REDELIVERED }, () => succeeded.splice(Math.floor(random() * succeeded.length), 1)[0]!.id);
      for (let i = 0; i < chosen.length; i += CONCURRENCY) {
        const answers = await Promise.all(chosen.slice(i, i + CONCURRENCY).map((id) => call('POST', `/webhooks/${webhookId}/deliveries/${id}/redeliver`)));
        expect(answers.map((a) => a.status)).toEqual(answers.map(() => 202));
      }
      await waitFor('the storm to be delivered', async () => (await countDeliveries('unfinished')) === 0, 60_000);
      const stormDelivered = await db
        .selectFrom('attempts')
        .where('attempted_at', '>=', stormStart)
        .where('status_code', '>=', 200)
        .where('status_code', '<', 300)
        .select((eb) => eb.fn.countAll<number | string>().as('n'))
        .executeTakeFirstOrThrow();
      const after = await receiverStats();
      const delta = (name: string) => after.counters[name]! - before.counters[name]!;

      // Every storm delivery the receiver accepted was dropped, and the copy did not move.
      expect(delta('deliveries')).toBe(Number(stormDelivered.n));
      expect(delta('applied')).toBe(0);
      expect(delta('duplicates') + delta('stale')).toBe(delta('deliveries'));
      expect(delta('duplicates')).toBeGreaterThan(0);
      expect(receiverTickets()).toEqual(await serverTickets());

      const totals = await db
        .selectFrom('deliveries')
        .select((eb) => [eb.fn.countAll<number | string>().as('deliveries'), eb.fn.sum<number | string>('attempt_count').as('attempts')])
        .executeTakeFirstOrThrow();
      const events = await db.selectFrom('events').where('type', 'in', TICKET_EVENTS).select((eb) => eb.fn.countAll<number | string>().as('n')).executeTakeFirstOrThrow();
      const c = after.counters;
      // The receiver's own accounts add up, and its recipe was exercised: it refused, it rejected
      // nothing, it caught up from the feed after its downtime.
      expect(c.deliveries).toBe(c.applied! + c.stale! + c.duplicates! + c.gapFilled! + c.ignored!);
      expect(c.rejected).toBe(0);
      expect(c.refused).toBeGreaterThan(0);
      expect(c.catchUps).toBeGreaterThan(0);
      expect(failedWhileDown).toBeGreaterThanOrEqual(FAILED_WHILE_DOWN);

      process.stdout.write(
        `reference receiver [${dialect}]: ${CHANGES} changes (${outcomes.acknowledged} acknowledged, ${outcomes.refused} refused by the server, ${outcomes.unacknowledged} lost to its SIGKILLs), ` +
          `${Number(events.n)} ticket events, ${expected.length} tickets at the end; server: ${Number(totals.deliveries)} deliveries, ${Number(totals.attempts)} attempts, ` +
          `${failedBeforeStorm} failed for good before the storm (${failedWhileDown} counted while the receiver was down); ` +
          `receiver: ${c.deliveries} deliveries answered 2xx (${c.applied} applied, of which ${c.jumped} whole tickets past a gap; ${c.stale} stale; ${c.duplicates} duplicates; ${c.gapFilled} after a gap fill), ` +
          `${c.refused} refused (fault injection), ${c.failed} answered 503 for a gap not filled, ${c.gapsFromFeed} gaps filled from the feed, ${c.gapsFromTicket} from GET /tickets/:id, ` +
          `${c.catchUps} catch-ups reading ${c.catchUpEventsRead} events, ${c.feedEventsApplied} changes applied from the feed; ` +
          `converged ${((converged - writesDone) / 1000).toFixed(1)} s after the last write (${((writesDone - runStart.getTime()) / 1000).toFixed(1)} s of writes); ` +
          `storm: ${recovered.body.recovered} recovered + ${REDELIVERED} redelivered, ${delta('deliveries')} accepted, ${delta('duplicates')} duplicates, ${delta('stale')} stale, 0 applied\n`,
      );

      const lastReceiver = receiver as ReceiverProcess | null;
      lastReceiver!.kill('SIGTERM');
      expect(await lastReceiver!.exited).toEqual({ code: 0, signal: null });
      const lastServer = server as HelpdeskProcess | null;
      lastServer!.child.kill('SIGTERM');
      expect(await lastServer!.exited).toEqual({ code: 0, signal: null });
    });
  });
}

/** Equal as JSON values, whatever the order of object keys (a copy's custom fields keep the order they were set in). */
function sameTickets(expected: Ticket[], actual: Ticket[]): boolean {
  const canonical = (value: unknown): unknown =>
    Array.isArray(value) ? value.map(canonical) : value !== null && typeof value === 'object' ? Object.fromEntries(Object.entries(value).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, canonical(v)])) : value;
  return JSON.stringify(canonical(expected)) === JSON.stringify(canonical(actual));
}
