/**
 * Crash recovery through the workers' heartbeats (docs/delivery.md, "Leases"), with the real
 * program on SQLite and on PostgreSQL. A worker holds leases on deliveries to a receiver that does
 * not answer (claimed ones, and one handed over by its ticket's previous record), then:
 * - is killed with SIGKILL, and `serve` is started again: the restarted worker finds the dead one's
 *   row stale, releases its leases and delivers them all, each before the dead worker's lease
 *   would have run out (the lease is read from the database before the kill);
 * - is stopped with SIGSTOP while another worker runs, then continued: the other finds it stale
 *   and delivers what it held; the stalled worker, back, finds its row gone, registers again and
 *   sends nothing it held. Duplicates are allowed (its requests were on the wire), a ticket's
 *   later version never arrives before an earlier one finished, and nothing is lost.
 * No time bound is asserted: how long recovery takes is measured in bench/scenarios/crash.mjs.
 */
import { afterEach, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { openDatabase, type DatabaseHandle } from '../../src/db/connection.js';
import { createTestDatabase, selectedDialects, type TestDatabase } from '../helpers/databases.js';
import { freePort, processEnv, spawnHelpdesk, spawnWorker, type HelpdeskProcess } from '../helpers/processes.js';
import { startReceiver, type ReceivedRequest, type Receiver } from '../helpers/receiver.js';
import { waitFor } from '../helpers/wait.js';

const TOKEN = 'worker-liveness-admin-token-0123456789';
/** Tickets whose first delivery hangs at the receiver, held by the worker that sent it. */
const HANGING = 30;

interface Lease {
  id: string;
  leasedBy: string;
  expiresAt: number;
}

for (const dialect of selectedDialects()) {
  const unavailable = dialect === 'postgres' && !inject('postgresAvailable');
  describe.skipIf(unavailable)(`worker liveness: a dead worker's leases released by heartbeat [${dialect}${unavailable ? ': SKIPPED, PostgreSQL not reachable' : ''}]`, () => {
    const cleanups: (() => Promise<unknown>)[] = [];
    afterEach(async () => {
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
    });

    /** A database, a receiver that hangs on everything but the ordered ticket's first version, and a reader of the database. */
    async function setUp(): Promise<{ database: TestDatabase; receiver: Receiver; handle: DatabaseHandle; env: Record<string, string>; queued: () => void }> {
      const database = await createTestDatabase(dialect);
      cleanups.push(() => database.drop());
      const receiver = await startReceiver({ host: '127.0.0.1' });
      cleanups.push(() => receiver.close());
      // The ordered ticket's version 1 is answered once versions 2 and 3 are queued behind it,
      // so that its record hands version 2 over.
      let queued!: () => void;
      const versionsQueued = new Promise<void>((resolve) => (queued = resolve));
      receiver.respondWith((request) =>
        isOrdered(request) && versionOf(request) === 1
          ? {
              takeOver: (response) =>
                void versionsQueued.then(() => {
                  response.writeHead(200);
                  response.end('ok');
                }),
            }
          : { status: 200, hang: true },
      );
      const handle = openDatabase(loadConfig({ HELPDESK_DATABASE_URL: database.url }).database);
      cleanups.push(() => handle.close());
      const env = processEnv(database.url, TOKEN);
      return { database, receiver, handle, env, queued };
    }

    let orderedTicket = '';
    const isOrdered = (request: ReceivedRequest) => (JSON.parse(request.body) as { data: { ticket: { subject?: string } } }).data.ticket.subject === 'ordered';
    const ticketOf = (request: ReceivedRequest) => (JSON.parse(request.body) as { data: { ticket: { id: string } } }).data.ticket.id;
    const versionOf = (request: ReceivedRequest) => (JSON.parse(request.body) as { data: { ticket: { version: number } } }).data.ticket.version;

    async function startServe(env: Record<string, string>, port: number, extra: Record<string, string> = {}): Promise<HelpdeskProcess> {
      const serve = spawnHelpdesk('serve', { ...env, HELPDESK_PORT: String(port), ...extra });
      cleanups.push(() => stopped(serve));
      await waitFor(`serve to answer (output: ${serve.output()})`, () => fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false), 30_000);
      return serve;
    }

    /**
     * A webhook; HANGING tickets created, and one ticket changed twice: its version 1 is answered,
     * which hands version 2 over to the same worker (leased by the record), and version 3 waits.
     */
    async function queueWork(port: number, receiver: Receiver, queued: () => void): Promise<void> {
      const base = `http://127.0.0.1:${port}/helpdesk/api/v1`;
      const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
      const post = async (path: string, body: unknown, method = 'POST') => {
        const response = await fetch(`${base}${path}`, { method, headers, body: JSON.stringify(body) });
        expect(response.status).toBeLessThan(300);
        return (await response.json()) as { ticket: { id: string } };
      };
      await post('/webhooks', { webhook: { name: 'liveness', targetUrl: receiver.url(), events: ['ticket.created', 'ticket.updated'] } });
      orderedTicket = (await post('/tickets', { ticket: { subject: 'ordered' } })).ticket.id;
      for (const n of [2, 3]) await post(`/tickets/${orderedTicket}`, { ticket: { tags: [`v${n}`] } }, 'PUT');
      queued();
      for (let i = 0; i < HANGING; i += 1) await post('/tickets', { ticket: { subject: `hanging ${i}` } });
    }

    /** Waits until one worker holds a lease on every delivery that hangs (the handed-over one too), and reads them. */
    async function leasesHeld(handle: DatabaseHandle, receiver: Receiver): Promise<Lease[]> {
      await receiver.waitForRequests(HANGING + 2, 60_000);
      return waitFor('one worker to hold the hanging deliveries', async () => {
        const rows = await handle.db.selectFrom('deliveries').select(['id', 'leased_by', 'lease_expires_at']).where('leased_by', 'is not', null).execute();
        const holders = new Set(rows.map((row) => row.leased_by));
        if (rows.length !== HANGING + 1 || holders.size !== 1) return null;
        return rows.map((row) => ({ id: row.id, leasedBy: row.leased_by!, expiresAt: Date.parse(row.lease_expires_at!) }));
      });
    }

    /** Every delivery succeeded (the ordered ticket's three included). */
    async function allDelivered(handle: DatabaseHandle): Promise<void> {
      await waitFor(
        'every delivery to succeed',
        async () => {
          const rows = await handle.db.selectFrom('deliveries').select('status').execute();
          return rows.length === HANGING + 3 && rows.every((row) => row.status === 'succeeded');
        },
        90_000,
      );
    }

    /** Each delivery held at the kill arrived again after it, before its lease would have run out; says when the last did. */
    function expectRedeliveredWithinLease(receiver: Receiver, leases: readonly Lease[], since: number, what: string): void {
      const again = (id: string) => receiver.requests.filter((r) => r.headers['webhook-id'] === id && r.receivedAt >= since).map((r) => r.receivedAt);
      const last = Math.max(...leases.map((lease) => Math.min(...again(lease.id))));
      const firstExpiry = Math.min(...leases.map((lease) => lease.expiresAt));
      process.stdout.write(`worker liveness [${dialect}]: ${what}: ${leases.length} leases held, the last sent again ${((last - since) / 1000).toFixed(1)} s after, the first lease due to expire ${((firstExpiry - since) / 1000).toFixed(1)} s after\n`);
      const late = leases.flatMap((lease) => {
        const again = receiver.requests.filter((r) => r.headers['webhook-id'] === lease.id && r.receivedAt >= since);
        if (again.length === 0) return [{ id: lease.id, problem: 'not sent again' }];
        const first = Math.min(...again.map((r) => r.receivedAt));
        return first < lease.expiresAt ? [] : [{ id: lease.id, problem: `sent again ${first - lease.expiresAt} ms after its lease expired` }];
      });
      expect(late).toEqual([]);
    }

    /** The ordered ticket's versions arrived in order: none after a later one first arrived. */
    function expectTicketOrder(receiver: Receiver): void {
      const versions = receiver.requests.filter((r) => ticketOf(r) === orderedTicket).map(versionOf);
      const outOfOrder = versions.filter((version, i) => versions.slice(0, i).some((earlier) => earlier > version));
      expect({ versions, outOfOrder }).toMatchObject({ outOfOrder: [] });
      expect(new Set(versions)).toEqual(new Set([1, 2, 3]));
    }

    it('a SIGKILLed serve’s deliveries go out again, after a restart, before its leases would have expired', { timeout: 240_000 }, async () => {
      const { receiver, handle, env, queued } = await setUp();
      const port = await freePort();
      const first = await startServe(env, port);
      await queueWork(port, receiver, queued);
      const leases = await leasesHeld(handle, receiver);
      const dead = leases[0]!.leasedBy;
      expect((await handle.db.selectFrom('worker_heartbeats').select('worker_id').execute()).map((r) => r.worker_id)).toEqual([dead]);

      first.child.kill('SIGKILL');
      expect((await first.exited).signal).toBe('SIGKILL');
      const killedAt = Date.now();
      receiver.respondWith(() => ({ status: 200 }));
      const second = await startServe(env, port);
      await allDelivered(handle);

      expectRedeliveredWithinLease(receiver, leases, killedAt, 'serve SIGKILLed and restarted');
      expectTicketOrder(receiver);
      // The dead worker's row is gone; the new one's is there.
      const rows = await handle.db.selectFrom('worker_heartbeats').select('worker_id').execute();
      expect(rows.map((r) => r.worker_id)).not.toContain(dead);
      expect(rows).toHaveLength(1);
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(metrics).toMatch(new RegExp(`^helpdesk_worker_leases_reclaimed_total ${leases.length}$`, 'm'));
      expect(metrics).toMatch(/^helpdesk_workers_found_dead_total 1$/m);
      expect(metrics).toMatch(/^helpdesk_delivery_workers 1$/m);
      // A clean stop deletes its row.
      second.child.kill('SIGTERM');
      expect(await second.exited).toEqual({ code: 0, signal: null });
      expect(await handle.db.selectFrom('worker_heartbeats').select('worker_id').execute()).toEqual([]);
    });

    it('a stalled worker (SIGSTOP) is found stale and its deliveries go out from another; continued, it sends nothing it held, and order holds', { timeout: 240_000 }, async () => {
      const { receiver, handle, env, queued } = await setUp();
      const port = await freePort();
      await startServe(env, port, { HELPDESK_SERVE_WORKER: 'false' });
      const stalled = await spawnWorker({ ...env, HELPDESK_WORKER_PORT: 'off' });
      cleanups.push(() => stopped(stalled));
      await queueWork(port, receiver, queued);
      const leases = await leasesHeld(handle, receiver);
      expect(leases[0]!.leasedBy).toBe(stalled.id);

      stalled.child.kill('SIGSTOP');
      const stoppedAt = Date.now();
      receiver.respondWith(() => ({ status: 200 }));
      const other = await spawnWorker({ ...env, HELPDESK_WORKER_PORT: 'off' });
      cleanups.push(() => stopped(other));
      await allDelivered(handle);
      expectRedeliveredWithinLease(receiver, leases, stoppedAt, 'worker SIGSTOPped, another running');
      const deliveredBeforeContinue = receiver.requests.length;

      // Back: its requests on the wire end (the receiver still holds them, so they time out or are
      // cut) and are recorded as attempts, but move nothing; it finds its row gone and registers again.
      stalled.child.kill('SIGCONT');
      await waitFor('the stalled worker to find itself found stale', () => stalled.output().includes('was found stale by another'), 30_000);
      await waitFor(
        'the stalled worker to register again',
        async () => (await handle.db.selectFrom('worker_heartbeats').select('worker_id').where('worker_id', '=', stalled.id).execute()).length === 1,
        30_000,
      );
      // Its attempts on the wire end within the 15 s request timeout: then it holds nothing.
      await waitFor('the stalled worker’s attempts to end', async () => (await attemptsWithoutAnswer(handle)) === 0 && receiver.unanswered === 0, 30_000);
      // It sent nothing of what it held once continued: every request it made was before the stop.
      expect(receiver.requests.length).toBe(deliveredBeforeContinue);
      expectTicketOrder(receiver);
      expect((await handle.db.selectFrom('deliveries').select('status').where('status', '!=', 'succeeded').execute()).length).toBe(0);
      // A duplicate at most per delivery it held: the request it had on the wire.
      const byId = new Map<string, number>();
      for (const r of receiver.requests) byId.set(r.headers['webhook-id']!, (byId.get(r.headers['webhook-id']!) ?? 0) + 1);
      const held = new Set(leases.map((l) => l.id));
      expect([...byId].filter(([id, n]) => n > 1 && !held.has(id))).toEqual([]);

      for (const p of [stalled, other]) p.child.kill('SIGTERM');
      for (const p of [stalled, other]) expect(await p.exited).toEqual({ code: 0, signal: null });
      expect(await handle.db.selectFrom('worker_heartbeats').select('worker_id').execute()).toEqual([]);
    });
  });
}

/** Kills what a failed test left running, and waits for it to be gone. */
async function stopped(helpdesk: HelpdeskProcess): Promise<void> {
  if (helpdesk.child.exitCode !== null || helpdesk.child.signalCode !== null) return;
  helpdesk.child.kill('SIGKILL');
  await helpdesk.exited;
}

/** Deliveries still leased: attempts whose answer is still awaited, or records not yet written. */
async function attemptsWithoutAnswer(handle: DatabaseHandle): Promise<number> {
  return (await handle.db.selectFrom('deliveries').select('id').where('leased_by', 'is not', null).execute()).length;
}
