/**
 * Delivery where things go wrong at the edges: races with webhook changes, shutdown in the
 * middle of a claim, receivers that send bytes the database cannot store, a database that
 * refuses the attempt record, two servers bootstrapping one database.
 */
import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { AuthService } from '../../../src/auth/auth.service.js';
import { loadConfig } from '../../../src/config.js';
import { openMigratedDatabase } from '../../../src/runtime.js';
import { systemClock } from '../../../src/shared/time.js';
import { createTestDatabase } from '../../helpers/databases.js';
import { describeEachDialect } from '../../helpers/dialects.js';
import { startReceiver, type Receiver } from '../../helpers/receiver.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import { waitFor } from '../../helpers/wait.js';

describeEachDialect('delivery robustness', (dialect) => {
  let server: TestServer;
  let receiver: Receiver | undefined;

  beforeAll(async () => {
    server = await startTestServer(dialect, { startWorker: false });
  });
  afterAll(async () => {
    await server.close();
  });
  afterEach(async () => {
    await receiver?.close();
    receiver = undefined;
  });

  const db = () => server.runtime.database.db;

  async function webhookTo(url: string, events = ['ticket.created']): Promise<string> {
    const response = await server.request('POST', '/webhooks', { body: { webhook: { name: 'r', targetUrl: url, events } } });
    expect(response.status).toBe(201);
    return response.body.webhook.id;
  }

  async function deliveryOf(webhookId: string) {
    return db().selectFrom('deliveries').selectAll().where('webhook_id', '=', webhookId).executeTakeFirstOrThrow();
  }

  it('fails, unsent, a due delivery whose webhook became inactive', async () => {
    receiver = await startReceiver();
    const webhookId = await webhookTo(receiver.url());
    await server.request('POST', '/tickets', { body: { ticket: { subject: 'queued, then deactivated' } } });
    // As if the deactivation had slipped past the outbox: the row is still pending.
    await db().updateTable('webhooks').set({ active: 0 }).where('id', '=', webhookId).execute();
    server.runtime.worker.start();
    const row = await waitFor('the delivery to be failed', async () => {
      const delivery = await deliveryOf(webhookId);
      return delivery.status === 'failed' ? delivery : null;
    });
    await server.runtime.worker.stop();
    expect(row.attempt_count).toBe(0);
    expect(receiver.requests).toHaveLength(0);
  });

  it('stores a response with NUL bytes and counts the delivery as delivered', async () => {
    receiver = await startReceiver({ responder: () => ({ status: 200, headers: { 'x-odd': 'a' }, body: 'ok\u0000done' }) });
    const webhookId = await webhookTo(receiver.url());
    await server.request('POST', '/tickets', { body: { ticket: { subject: 'nul' } } });
    server.runtime.worker.start();
    const delivery = await waitFor('the delivery to succeed', async () => {
      const row = await deliveryOf(webhookId);
      return row.status === 'succeeded' ? row : null;
    });
    await server.runtime.worker.stop();
    const attempt = await db().selectFrom('attempts').selectAll().where('delivery_id', '=', delivery.id).executeTakeFirstOrThrow();
    expect(attempt.response_body).toBe('ok\ufffddone');
    expect(receiver.requests).toHaveLength(1);
  });

  it('spends the schedule even when the attempt cannot be recorded, instead of retrying forever', async () => {
    receiver = await startReceiver({ responder: () => ({ status: 500 }) });
    const webhookId = await webhookTo(receiver.url());
    await server.request('POST', '/tickets', { body: { ticket: { subject: 'unrecordable' } } });
    await db().schema.alterTable('attempts').renameTo('attempts_hidden').execute();
    try {
      server.runtime.worker.start();
      const delivery = await waitFor('the delivery to fail', async () => {
        const row = await deliveryOf(webhookId);
        return row.status === 'failed' ? row : null;
      });
      await server.runtime.worker.stop();
      // The test schedule: one attempt and three retries, then no more.
      expect(delivery.attempt_count).toBe(4);
      expect(receiver.requests).toHaveLength(4);
    } finally {
      await db().schema.alterTable('attempts_hidden').renameTo('attempts').execute();
    }
  });

  it('leaves no delivery leased when stopped in the middle of claiming', async () => {
    receiver = await startReceiver({ responder: () => ({ status: 200, hang: true }) });
    const webhookId = await webhookTo(receiver.url());
    for (let i = 0; i < 10; i += 1) await server.request('POST', '/tickets', { body: { ticket: { subject: `stop ${i}` } } });
    server.runtime.worker.start();
    await server.runtime.worker.stop(50);
    await waitFor('abandoned attempts to settle', () => server.runtime.worker.inFlightCount === 0);
    const leased = await db().selectFrom('deliveries').select('id').where('webhook_id', '=', webhookId).where('leased_by', 'is not', null).execute();
    expect(leased).toEqual([]);
    const pending = await db().selectFrom('deliveries').select('id').where('webhook_id', '=', webhookId).where('status', '=', 'pending').execute();
    expect(pending).toHaveLength(10);
  });

  // Two servers are two processes. On SQLite, BEGIN IMMEDIATE makes the second process wait for
  // the first; two handles inside one test process cannot show that (better-sqlite3 waits
  // synchronously, blocking the holder too), so this race is PostgreSQL's.
  it.skipIf(dialect === 'sqlite')('lets exactly one of two servers starting together on an empty database create the first admin', async () => {
    const database = await createTestDatabase(dialect);
    const config = loadConfig({ HELPDESK_DATABASE_URL: database.url });
    const handles = await Promise.all([openMigratedDatabase(config), openMigratedDatabase(config)]);
    try {
      const results = await Promise.all(handles.map((h) => new AuthService(h.db, systemClock, null).bootstrap()));
      expect(results.filter((r) => r.printedKey !== null)).toHaveLength(1);
      const admins = await handles[0]!.db.selectFrom('users').select('role').execute();
      expect(admins).toEqual([{ role: 'admin' }]);
    } finally {
      for (const handle of handles) await handle.close();
      await database.drop();
    }
  });
});

describeEachDialect('outbox and webhook changes racing', (dialect) => {
  // SQLite runs one writing transaction at a time, so this interleaving cannot happen there.
  it.skipIf(dialect === 'sqlite')('makes a deactivation wait for a change whose subscribers were read, then fails the delivery it queued', async () => {
    const server = await startTestServer(dialect, { startWorker: false });
    try {
      const created = await server.request('POST', '/webhooks', { body: { webhook: { name: 'race', targetUrl: 'https://127.0.0.1:1/x', events: ['ticket.created'] } } });
      const webhookId = created.body.webhook.id as string;
      const { db } = server.runtime.database;
      const databaseName = new URL(server.database.url).pathname.slice(1);
      const lockWaiters = async () =>
        (
          await db
            .selectFrom('pg_stat_activity' as never)
            .select('pid' as never)
            .where('wait_event_type' as never, '=', 'Lock' as never)
            .where('datname' as never, '=', databaseName as never)
            .execute()
        ).length;

      // Hold the events table: a ticket change then stops right after reading the subscribers.
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      let locked!: () => void;
      const isLocked = new Promise<void>((resolve) => (locked = resolve));
      const locker = db.transaction().execute(async (trx) => {
        await sql`lock table events in exclusive mode`.execute(trx);
        locked();
        await held;
      });
      await isLocked;
      const change = server.request('POST', '/tickets', { body: { ticket: { subject: 'racing a deactivation' } } });
      await waitFor('the ticket change to wait on the events table', async () => (await lockWaiters()) === 1);

      // The deactivation must wait for that change instead of slipping in between.
      const deactivation = server.request('PUT', `/webhooks/${webhookId}`, { body: { webhook: { active: false } } });
      await waitFor('the deactivation to wait on the webhook row', async () => (await lockWaiters()) === 2);

      release();
      await locker;
      expect((await change).status).toBe(201);
      expect((await deactivation).status).toBe(200);
      const deliveries = await db.selectFrom('deliveries').select('status').where('webhook_id', '=', webhookId).execute();
      expect(deliveries).toEqual([{ status: 'failed' }]);
    } finally {
      await server.close();
    }
  });
});
