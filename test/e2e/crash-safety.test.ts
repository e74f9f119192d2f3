/**
 * Crash safety with the real program, on SQLite and on PostgreSQL: 2,000 ticket changes
 * (creations and updates) go in over HTTP while `helpdesk serve` is killed with SIGKILL at five
 * moments drawn at random (seeded), and started again each time. Afterwards:
 * - every change that got a 2xx is in the database and its events reached the receiver at least
 *   once (losses: must be 0);
 * - no event exists without its change in the database (an unacknowledged change is either
 *   wholly there or wholly absent);
 * - nothing reached a webhook deleted or deactivated before the changes;
 * duplicates are allowed (at least once) and counted.
 */
import { afterAll, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { openDatabase } from '../../src/db/connection.js';
import { createTestDatabase, selectedDialects, type TestDatabase } from '../helpers/databases.js';
import { freePort, spawnHelpdesk, type HelpdeskProcess } from '../helpers/processes.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { seededRandom } from '../helpers/random.js';
import { waitFor } from '../helpers/wait.js';

const TOKEN = 'crash-safety-admin-token-0123456789';
const CHANGES = 2_000;
const KILLS = 5;
const CONCURRENCY = 8;

interface Acknowledged {
  kind: 'created' | 'updated';
  ticketId: string;
  /** The change's time: its events' `timestamp`. */
  at: string;
}

for (const dialect of selectedDialects()) {
  const unavailable = dialect === 'postgres' && !inject('postgresAvailable');
  describe.skipIf(unavailable)(`crash safety: serve killed ${KILLS} times under load [${dialect}${unavailable ? ': SKIPPED, PostgreSQL not reachable' : ''}]`, () => {
    const cleanups: (() => Promise<unknown>)[] = [];
    afterAll(async () => {
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
    });

    it('loses no acknowledged change or event, makes no event without its change, and sends nothing to removed webhooks', { timeout: 300_000 }, async () => {
      const database: TestDatabase = await createTestDatabase(dialect);
      cleanups.push(() => database.drop());
      const receiver: Receiver = await startReceiver({ host: '127.0.0.1' });
      cleanups.push(() => receiver.close());
      const port = await freePort();
      const base = `http://127.0.0.1:${port}/helpdesk/api/v1`;
      const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };

      let server: HelpdeskProcess | null = null;
      const start = async () => {
        server = spawnHelpdesk('serve', {
          HELPDESK_DATABASE_URL: database.url,
          HELPDESK_ADMIN_TOKEN: TOKEN,
          HELPDESK_PORT: String(port),
          HELPDESK_ALLOW_PRIVATE_TARGETS: 'true',
          HELPDESK_RETRY_SCHEDULE: '0.2,0.5,1,1,1,1,1,1,1,1',
          HELPDESK_DELIVERY_LEASE_SECONDS: '20',
          HELPDESK_RATE_LIMIT: '1000000',
          HELPDESK_LOG_LEVEL: 'warn',
          NODE_EXTRA_CA_CERTS: inject('tls').caPath,
        });
        const current = server;
        await waitFor(`serve to answer (output: ${current.output()})`, () => fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false), 20_000);
      };
      cleanups.push(async () => server?.child.exitCode === null && server.child.kill('SIGKILL'));
      await start();

      const createWebhook = async (name: string) => {
        const response = await fetch(`${base}/webhooks`, {
          method: 'POST',
          headers,
          body: JSON.stringify({ webhook: { name, targetUrl: receiver.url(`/${name}`), events: ['ticket.created', 'ticket.updated', 'ticket.resolved'] } }),
        });
        expect(response.status).toBe(201);
        return ((await response.json()) as { webhook: { id: string } }).webhook.id;
      };
      const live = await createWebhook('live');
      const deleted = await createWebhook('deleted');
      const deactivated = await createWebhook('deactivated');
      expect((await fetch(`${base}/webhooks/${deleted}`, { method: 'DELETE', headers: { authorization: headers.authorization } })).status).toBe(204);
      const off = await fetch(`${base}/webhooks/${deactivated}`, { method: 'PUT', headers, body: JSON.stringify({ webhook: { active: false } }) });
      expect(off.status).toBe(200);

      // The changes: each one a creation, or an update of a ticket created (and acknowledged)
      // before it. A change that fails (the server is down, or died under it) is not retried.
      const random = seededRandom(20261202);
      const killAt = new Set(Array.from({ length: KILLS }, (_, i) => Math.floor(((i + 0.2 + 0.6 * random()) / KILLS) * CHANGES)));
      const acknowledged: Acknowledged[] = [];
      const ticketIds: string[] = [];
      let unacknowledged = 0;
      let next = 0;
      let kills = 0;
      let restarting: Promise<void> | null = null;
      const change = async (i: number) => {
        const update = ticketIds.length > 0 && random() < 0.5;
        const ticketId = update ? ticketIds[Math.floor(random() * ticketIds.length)]! : null;
        const body = update
          ? { ticket: { subject: `change ${i}`, status: random() < 0.2 ? 'resolved' : 'open', tags: [`t${i}`] } }
          : { ticket: { subject: `change ${i}`, tags: [`t${i}`] } };
        try {
          const response = await fetch(update ? `${base}/tickets/${ticketId}` : `${base}/tickets`, { method: update ? 'PUT' : 'POST', headers, body: JSON.stringify(body) });
          const text = await response.text();
          if (response.status !== 200 && response.status !== 201) {
            unacknowledged += 1;
            return;
          }
          const ticket = (JSON.parse(text) as { ticket: { id: string; updatedAt: string } }).ticket;
          acknowledged.push({ kind: update ? 'updated' : 'created', ticketId: ticket.id, at: ticket.updatedAt });
          if (!update) ticketIds.push(ticket.id);
        } catch {
          unacknowledged += 1;
        }
      };
      const drive = async () => {
        for (let i = next++; i < CHANGES; i = next++) {
          if (killAt.has(i) && server) {
            const victim: HelpdeskProcess = server;
            victim.child.kill('SIGKILL');
            kills += 1;
            restarting = victim.exited.then(start);
          }
          if (restarting) await restarting;
          await change(i);
        }
      };
      await Promise.all(Array.from({ length: CONCURRENCY }, drive));
      if (restarting) await restarting;
      expect(kills).toBe(KILLS);

      // Read the outcome with the server's own database layer.
      const handle = openDatabase(loadConfig({ HELPDESK_DATABASE_URL: database.url }).database);
      cleanups.push(() => handle.close());
      const db = handle.db;
      await waitFor(
        'every delivery to the live webhook to succeed',
        async () => {
          const row = await db.selectFrom('deliveries').select((eb) => eb.fn.countAll<number | string>().as('n')).where('status', '!=', 'succeeded').executeTakeFirstOrThrow();
          return Number(row.n) === 0;
        },
        120_000,
      );

      const events = await db.selectFrom('events').select(['id', 'type', 'ticket_id', 'payload']).execute();
      const deliveries = await db.selectFrom('deliveries').select(['id', 'event_id', 'webhook_id']).execute();
      const tickets = new Map((await db.selectFrom('tickets').select(['id', 'updated_at']).execute()).map((t) => [t.id, t.updated_at]));
      const received = new Map<string, number>();
      for (const request of receiver.requests) received.set(request.headers['webhook-id']!, (received.get(request.headers['webhook-id']!) ?? 0) + 1);

      // Nothing for the webhooks removed before the changes: no delivery queued, none received.
      expect(deliveries.filter((d) => d.webhook_id !== live)).toEqual([]);
      expect(receiver.requests.filter((r) => r.headers['x-helpdesk-webhook-id'] !== live)).toEqual([]);

      // Every acknowledged change is in the database, with its events, each delivered.
      const eventsOf = new Map<string, { id: string; type: string }[]>();
      for (const event of events) {
        const { timestamp } = JSON.parse(event.payload) as { timestamp: string };
        const key = `${event.ticket_id}@${timestamp}`;
        eventsOf.set(key, [...(eventsOf.get(key) ?? []), { id: event.id, type: event.type }]);
      }
      const deliveryOfEvent = new Map(deliveries.map((d) => [d.event_id, d.id]));
      const lost: string[] = [];
      for (const change of acknowledged) {
        const updatedAt = tickets.get(change.ticketId);
        expect({ change, inDatabase: updatedAt !== undefined && updatedAt >= change.at }).toEqual({ change, inDatabase: true });
        const changeEvents = eventsOf.get(`${change.ticketId}@${change.at}`) ?? [];
        if (!changeEvents.some((e) => e.type === (change.kind === 'created' ? 'ticket.created' : 'ticket.updated'))) lost.push(`${change.kind} ${change.ticketId} at ${change.at}: no event`);
        for (const event of changeEvents) {
          const deliveryId = deliveryOfEvent.get(event.id);
          if (deliveryId === undefined || !received.has(deliveryId)) lost.push(`${event.type} ${event.id}: not delivered`);
        }
      }
      expect(lost).toEqual([]);

      // No event without its change: every event's ticket exists, changed at or after it.
      const orphans = events.filter((event) => {
        const { timestamp } = JSON.parse(event.payload) as { timestamp: string };
        const updatedAt = tickets.get(event.ticket_id!);
        return updatedAt === undefined || updatedAt < timestamp;
      });
      expect(orphans).toEqual([]);

      const duplicates = [...received.values()].filter((times) => times > 1).length;
      process.stdout.write(
        `crash safety [${dialect}]: ${CHANGES} changes, ${kills} kills, ${acknowledged.length} acknowledged, ${unacknowledged} not, ` +
          `${events.length} events, ${deliveries.length} deliveries, 0 lost, ${duplicates} delivered more than once\n`,
      );
      const last = server as HelpdeskProcess | null;
      last!.child.kill('SIGTERM');
      expect(await last!.exited).toEqual({ code: 0, signal: null });
    });
  });
}
