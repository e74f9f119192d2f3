/**
 * A full disk under a running server, on SQLite and PostgreSQL: the database's files live on a
 * small tmpfs (SQLite's file, or a PostgreSQL tablespace holding the test database) that the
 * test fills with a filler file. Meanwhile every write is answered 503 `unavailable` with
 * Retry-After in the documented error body, never a 500, and nothing of it is written; reads
 * keep working; the worker keeps trying at its poll interval without crashing or spinning. Once
 * the filler is deleted, the API and the worker recover by themselves, and every ticket
 * acknowledged before, during or after is delivered.
 *
 * Only the tmpfs fills: PostgreSQL's WAL and data directory, the other test files' databases
 * and / keep their space (the filler refuses to write anywhere but the tmpfs it was given).
 */
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { afterAll, describe, expect, inject, it } from 'vitest';
import type { DialectName } from '../../../src/db/capabilities.js';
import { selectedDialects, type TestDatabase } from '../../helpers/databases.js';
import { createDatabaseInTablespace, tablespaceUnavailable } from '../../helpers/postgres-tablespace.js';
import { startReceiver, type Receiver } from '../../helpers/receiver.js';
import { startTestServer, type ApiResponse, type TestServer } from '../../helpers/server.js';
import { mountTmpfs, tmpfsUnavailable, type Tmpfs } from '../../helpers/tmpfs.js';
import { waitFor } from '../../helpers/wait.js';

/** How long the disk stays full. */
const FULL_MS = 5_000;
/** A request every this often while it is full. */
const PACE_MS = 100;
const TICKETS_BEFORE = 5;
/** Room for the database and a little: SQLite's file is well under 1 MiB; PostgreSQL's template copy is about 7.5 MiB. */
const TMPFS_MIB: Record<DialectName, number> = { sqlite: 8, postgres: 24 };
/** The worker's poll interval (its default): how often a failed claim is tried again. */
const POLL_INTERVAL_MS = 1_000;
/** Every retry this long after the last attempt (±20%), for as long as the test runs. */
const RETRY_SECONDS = 0.5;

const tmpfsProblem = tmpfsUnavailable();
const problems: Record<DialectName, string | null> = {
  sqlite: tmpfsProblem,
  postgres: tmpfsProblem ?? (!inject('postgresAvailable') ? 'PostgreSQL not reachable' : selectedDialects().includes('postgres') ? await tablespaceUnavailable() : null),
};

interface LogLine {
  level: number;
  msg: string;
  time: number;
  component?: string;
  err?: { code?: string; message?: string };
}

for (const dialect of selectedDialects()) {
  const problem = problems[dialect];
  if (problem) process.stdout.write(`\n*** disk full [${dialect}]: SKIPPED, ${problem} ***\n\n`);
  describe.skipIf(problem !== null)(`disk full [${dialect}${problem ? `: SKIPPED, ${problem}` : ''}]`, () => {
    // Cleaned up in reverse: the server, the receiver, the database, then the mount.
    const cleanups: (() => Promise<unknown> | unknown)[] = [];
    afterAll(async () => {
      for (const cleanup of cleanups.splice(0).reverse()) {
        try {
          await cleanup();
        } catch (error) {
          process.stdout.write(`disk full [${dialect}]: cleanup failed: ${(error as Error).message}\n`);
        }
      }
    });

    it('answers 503 to writes while the disk is full, keeps reading and retrying, then recovers by itself with nothing lost', { timeout: 90_000 }, async () => {
      const disk: Tmpfs = mountTmpfs(TMPFS_MIB[dialect]);
      cleanups.push(() => disk.unmount());
      const sqlitePath = join(disk.dir, 'helpdesk.db');
      const database: TestDatabase =
        dialect === 'sqlite' ? { dialect, url: `sqlite:${sqlitePath}`, drop: async () => undefined } : await createDatabaseInTablespace(disk.dir);
      cleanups.push(() => database.drop());

      // The receiver fails until the disk has room again, so that acknowledged deliveries are
      // pending (and due every RETRY_SECONDS) all through the full disk: the worker has work to
      // do, and every attempt it makes has to be written down.
      let receiverUp = false;
      const answered = new Set<string>();
      const receiver: Receiver = await startReceiver({
        responder: (request) => {
          if (!receiverUp) return { status: 503 };
          const body = JSON.parse(request.body) as { data: { ticket?: { id: string } } };
          if (body.data.ticket) answered.add(body.data.ticket.id);
          return { status: 200, body: 'ok' };
        },
      });
      cleanups.push(() => receiver.close());

      const logs: LogLine[] = [];
      let partial = '';
      const server: TestServer = await startTestServer(dialect, {
        database,
        env: { HELPDESK_RETRY_SCHEDULE: Array(200).fill(String(RETRY_SECONDS)).join(',') },
        logDestination: {
          write(chunk: string) {
            partial += chunk;
            const lines = partial.split('\n');
            partial = lines.pop()!;
            for (const line of lines) if (line.trim() !== '') logs.push(JSON.parse(line) as LogLine);
          },
        },
        // An attempt sent as the disk fills cannot be recorded and waits for its lease to run
        // out; the receiver answers at once, so a lease of a few seconds is safe, and the 20 s
        // the configuration allows at least would be most of this test's time.
        runtime: { worker: { leaseMs: 3_000, pollIntervalMs: POLL_INTERVAL_MS } },
      });
      cleanups.push(() => server.close());

      const webhook = await server.request('POST', '/webhooks', { body: { webhook: { name: 'disk full', targetUrl: receiver.url(), events: ['ticket.created'] } } });
      expect(webhook.status).toBe(201);
      const acknowledged: string[] = [];
      const create = async (subject: string): Promise<ApiResponse> => {
        const response = await server.request('POST', '/tickets', { body: { ticket: { subject, description: 'x'.repeat(200) } } });
        if (response.status === 201) acknowledged.push(response.body.ticket.id as string);
        return response;
      };
      for (let i = 0; i < TICKETS_BEFORE; i += 1) expect((await create(`before ${i}`)).status).toBe(201);
      const attempted = () => new Set(receiver.requests.map((r) => (JSON.parse(r.body) as { data: { ticket: { id: string } } }).data.ticket.id));
      await waitFor('an attempt of every ticket acknowledged before the disk fills', () => acknowledged.every((id) => attempted().has(id)));

      if (dialect === 'sqlite') {
        // The WAL is emptied first, so that every write needs new room on the disk. (A WAL
        // rewound after a checkpoint takes writes in the room it already has until it is full,
        // which on a full disk comes to the same, later.)
        const sqlite = new SQLite(sqlitePath);
        try {
          sqlite.pragma('busy_timeout = 5000');
          expect(sqlite.pragma('wal_checkpoint(TRUNCATE)')).toEqual([{ busy: 0, log: 0, checkpointed: 0 }]);
        } finally {
          sqlite.close();
        }
      }
      const fillerBytes = disk.fill();
      expect(disk.available()).toBe(0);
      const fullSince = Date.now();

      // PostgreSQL still takes the writes that fit in the pages its tables and indexes already
      // have; they are acknowledged like any other (and must be delivered). SQLite, its WAL
      // emptied, has no such room.
      const fitted: ApiResponse[] = [];
      for (let refused = false; !refused && fitted.length < 500; ) {
        const response = await create(`fitted ${fitted.length}`);
        refused = response.status !== 201;
        if (!refused) fitted.push(response);
        else expect(response.status, JSON.stringify(response.body)).toBe(503);
      }
      if (dialect === 'sqlite') expect(fitted).toEqual([]);
      const refusedSince = Date.now();

      // Then writes (ticket creations) and reads alternate, a request every PACE_MS for
      // FULL_MS: the scenario is a disk full for that long.
      const writes: ApiResponse[] = [];
      const reads: { response: ApiResponse; acknowledged: string[] }[] = [];
      const ticketsWhileFull = acknowledged.length;
      for (let i = 0; Date.now() - refusedSince < FULL_MS; i += 1) {
        if (i % 2 === 0) writes.push(await create(`during ${i}`));
        else reads.push({ response: await server.request('GET', '/tickets?limit=100'), acknowledged: [...acknowledged] });
        await new Promise((resolve) => setTimeout(resolve, PACE_MS)); // paces the requests; nothing waits on it
      }
      const fullFor = Date.now() - fullSince;
      const attemptsWhileFull = receiver.requests.filter((r) => r.receivedAt >= fullSince).length;
      const workerErrors = logs.filter((l) => l.component === 'delivery' && l.level >= 50 && l.time >= fullSince);
      const claimFailures = workerErrors.filter((l) => l.msg.startsWith('delivery claim failed'));

      // Every write refused is 503 unavailable, with Retry-After, the documented shape and its
      // request id; never a 500. SQLite, with no room at all, refuses every one. PostgreSQL
      // prunes the dead rows of the refused transactions out of the pages it has, so now and
      // then a whole write fits again: it is acknowledged like any other and must be delivered.
      expect(writes.length).toBeGreaterThan(10);
      const refusedWrites = writes.filter((w) => w.status === 503);
      const takenWhileFull = writes.filter((w) => w.status === 201);
      expect(writes.map((w) => w.status).filter((status) => status !== 503 && status !== 201)).toEqual([]);
      if (dialect === 'sqlite') expect(takenWhileFull).toEqual([]);
      else expect(refusedWrites.length).toBeGreaterThan(writes.length / 2);
      for (const refused of refusedWrites) {
        expect(refused.headers['retry-after']).toBe('5');
        expect(String(refused.headers['content-type'])).toMatch(/^application\/json/);
        expect(Object.keys(refused.body)).toEqual(['error']);
        expect(refused.body.error).toEqual({ code: 'unavailable', message: expect.any(String), requestId: refused.headers['x-request-id'] });
      }
      expect(acknowledged).toHaveLength(ticketsWhileFull + takenWhileFull.length);
      // Reads need no room on the disk: they keep working, and see only acknowledged tickets.
      expect(reads.map((r) => r.response.status).filter((status) => status !== 200)).toEqual([]);
      for (const read of reads) expect((read.response.body.tickets as { id: string }[]).map((t) => t.id).sort()).toEqual(read.acknowledged.sort());
      // The worker met the full disk, told it as such, and kept trying: a failed claim again
      // after its poll interval, an attempt it could not record again when its lease ran out;
      // never in a loop (that would be thousands of lines a second).
      expect(workerErrors.length).toBeGreaterThan(0);
      for (const failure of workerErrors) expect(failure.err?.code ?? failure.err?.message).toMatch(dialect === 'sqlite' ? /^SQLITE_(FULL|IOERR)/ : /^53100$/);
      expect(claimFailures.length).toBeLessThanOrEqual(Math.ceil(fullFor / POLL_INTERVAL_MS) + 2);
      // An attempt it could not record still moves the delivery along its schedule (or, if even
      // that is refused, waits for its lease): no delivery is sent faster than its schedule.
      const schedulePace = acknowledged.length * (Math.floor(fullFor / (RETRY_SECONDS * 0.8 * 1000)) + 1);
      expect(attemptsWhileFull).toBeLessThanOrEqual(schedulePace);
      // At most two lines per attempt (failed, and not rescheduled), counting the attempts that
      // were on the wire as the disk filled.
      expect(workerErrors.length).toBeLessThanOrEqual(claimFailures.length + 2 * (attemptsWhileFull + acknowledged.length));

      disk.free();
      receiverUp = true;
      const freedAt = Date.now();
      // The worker first, before any new event could wake it: its own retries deliver the
      // tickets acknowledged so far.
      const waitingForWorker = [...acknowledged];
      await waitFor('the worker to deliver, by itself, every ticket acknowledged so far', () => waitingForWorker.every((id) => answered.has(id)), 30_000);
      const deliveredMs = Date.now() - freedAt;
      await waitFor('the API to take tickets again', async () => (await create('after')).status === 201, 20_000);
      const apiBackMs = Date.now() - freedAt;
      await waitFor('the ticket taken after to be delivered', () => acknowledged.every((id) => answered.has(id)));
      // The worker's own books agree: every delivery succeeded, none left pending or failed.
      const { db } = server.runtime.database;
      await waitFor('every delivery to be recorded as succeeded', async () => {
        const rows = await db.selectFrom('deliveries').select('status').execute();
        return rows.length === acknowledged.length && rows.every((r) => r.status === 'succeeded');
      });

      // Nothing of the refused writes went in: the acknowledged tickets, one event each, one
      // delivery per event, and nothing else.
      const tickets = await db.selectFrom('tickets').select('id').execute();
      expect(tickets.map((t) => t.id).sort()).toEqual([...acknowledged].sort());
      const events = await db.selectFrom('events').select(['id', 'ticket_id', 'type']).execute();
      expect(events.map((e) => e.ticket_id).sort()).toEqual([...acknowledged].sort());
      expect(new Set(events.map((e) => e.type))).toEqual(new Set(['ticket.created']));
      const deliveries = await db.selectFrom('deliveries').select('event_id').execute();
      expect(deliveries.map((d) => d.event_id).sort()).toEqual(events.map((e) => e.id).sort());

      process.stdout.write(
        `disk full [${dialect}]: ${(fillerBytes / 1024 / 1024).toFixed(1)} MiB filler, full for ${(fullFor / 1000).toFixed(1)} s; ` +
          `${fitted.length} writes fitted in room the database held, then ${writes.length + reads.length} requests: ${writes.length} writes (${refusedWrites.length} 503, ${takenWhileFull.length} fitted in room freed meanwhile), ${reads.length} reads all 200; ` +
          `worker: ${workerErrors.length} errors (${claimFailures.length} claims refused), ${attemptsWhileFull} attempts sent meanwhile; ` +
          `after the filler went: the ${waitingForWorker.length} tickets acknowledged so far delivered in ${deliveredMs} ms, writes taken again after ${apiBackMs} ms, 0 of ${acknowledged.length} lost\n`,
      );
    });
  });
}
