/**
 * Kills in the middle of the operations that change many rows at once, with the real program, on
 * SQLite and PostgreSQL: `helpdesk migrate` on an empty database, and a recovery of 10,000
 * failed deliveries, each SIGKILLed at moments drawn from a seeded generator. After each kill the
 * database holds all of the operation or none of it, and the next run completes it.
 */
import { afterAll, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { openDatabase, type DatabaseHandle } from '../../src/db/connection.js';
import { insertDeliveries, insertEvents } from '../../src/delivery/deliveries.repository.js';
import { newEventRow } from '../../src/delivery/outbox.js';
import { createTestDatabase, selectedDialects, type TestDatabase } from '../helpers/databases.js';
import { freePort, spawnHelpdesk, type HelpdeskProcess } from '../helpers/processes.js';
import { seededRandom } from '../helpers/random.js';
import { waitFor } from '../helpers/wait.js';

const TOKEN = 'crash-operations-admin-token-0123456789';
const DELIVERIES = 10_000;
const MIGRATIONS = 2;

for (const dialect of selectedDialects()) {
  const unavailable = dialect === 'postgres' && !inject('postgresAvailable');
  describe.skipIf(unavailable)(`kills during migrations and recoveries [${dialect}${unavailable ? ': SKIPPED, PostgreSQL not reachable' : ''}]`, () => {
    const cleanups: (() => Promise<unknown>)[] = [];
    afterAll(async () => {
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
    });

    async function open(database: TestDatabase): Promise<DatabaseHandle> {
      const handle = openDatabase(loadConfig({ HELPDESK_DATABASE_URL: database.url }).database);
      cleanups.push(() => handle.close());
      return handle;
    }

    it('leaves a migration killed at any moment wholly applied or not at all, and the next run completes it', { timeout: 120_000 }, async () => {
      const random = seededRandom(7);
      const outcomes: string[] = [];
      for (let kill = 0; kill < 5; kill += 1) {
        const database = await createTestDatabase(dialect);
        cleanups.push(() => database.drop());
        const env = { HELPDESK_DATABASE_URL: database.url, HELPDESK_LOG_LEVEL: 'error' };
        const migrate = spawnHelpdesk('migrate', env);
        // `migrate` loads in about 0.4 s here and is done by about 0.5 s: kills land before,
        // during and after its transaction.
        await new Promise((resolve) => setTimeout(resolve, 300 + random() * 300));
        migrate.child.kill('SIGKILL');
        await migrate.exited;
        const handle = await open(database);
        const tables = await handle.db.introspection.getTables({ withInternalKyselyTables: true });
        const applied = tables.some((t) => t.name === 'kysely_migration')
          ? (await handle.db.selectFrom('kysely_migration' as never).select('name' as never).execute()).length
          : 0;
        const created = tables.filter((t) => ['users', 'tickets', 'webhooks', 'deliveries', 'attempts'].includes(t.name)).length;
        expect({ kill, applied, created }).toSatisfy(({ applied: a, created: c }: { applied: number; created: number }) => (a === 0 && c === 0) || (a === MIGRATIONS && c === 5));
        outcomes.push(applied === 0 ? 'none' : 'all');
        const again: HelpdeskProcess = spawnHelpdesk('migrate', env);
        expect(await again.exited).toEqual({ code: 0, signal: null });
        expect(await handle.db.selectFrom('kysely_migration' as never).select('name' as never).execute()).toHaveLength(MIGRATIONS);
      }
      process.stdout.write(`kills during migrate [${dialect}]: ${outcomes.join(', ')} (all or none each time)\n`);
    });

    it('leaves a recovery of 10,000 deliveries killed at any moment wholly done or not at all', { timeout: 180_000 }, async () => {
      const database = await createTestDatabase(dialect);
      cleanups.push(() => database.drop());
      const port = await freePort();
      const base = `http://127.0.0.1:${port}/helpdesk/api/v1`;
      const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
      let server: HelpdeskProcess | null = null;
      const start = async () => {
        // No worker: recovered deliveries stay pending, so the outcome can be counted.
        const started = spawnHelpdesk('serve', { HELPDESK_DATABASE_URL: database.url, HELPDESK_ADMIN_TOKEN: TOKEN, HELPDESK_PORT: String(port), HELPDESK_SERVE_WORKER: 'false', HELPDESK_ALLOW_PRIVATE_TARGETS: 'true', HELPDESK_LOG_LEVEL: 'error' });
        server = started;
        await waitFor(`serve to answer (output: ${started.output()})`, () => fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false), 20_000);
        return started;
      };
      cleanups.push(async () => server?.child.exitCode === null && server.child.kill('SIGKILL'));
      await start();
      const created = await fetch(`${base}/webhooks`, { method: 'POST', headers, body: JSON.stringify({ webhook: { name: 'recover', targetUrl: 'https://127.0.0.1:9/hook', events: ['ticket.created'] } }) });
      expect(created.status).toBe(201);
      const webhookId = ((await created.json()) as { webhook: { id: string } }).webhook.id;

      // 10,000 failed deliveries, written as the outbox writes them, then failed.
      const { db, capabilities } = await open(database);
      const at = new Date(Date.now() - 60_000).toISOString();
      const events = Array.from({ length: DELIVERIES }, () => newEventRow({ type: 'ticket.created', ticketId: null, data: {}, at }));
      await insertEvents(db, capabilities, events);
      await insertDeliveries(db, capabilities, events.map((e) => ({ webhookId, eventId: e.id, eventType: e.type, queuedAt: at })));
      const failAll = () => db.updateTable('deliveries').set({ status: 'failed', next_attempt_at: null }).where('webhook_id', '=', webhookId).execute();
      const counts = async () => {
        const rows = await db.selectFrom('deliveries').select(['status']).select((eb) => eb.fn.countAll<number | string>().as('n')).where('webhook_id', '=', webhookId).groupBy('status').execute();
        return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
      };
      const recover = () => fetch(`${base}/webhooks/${webhookId}/recover`, { method: 'POST', headers, body: JSON.stringify({ since: new Date(Date.now() - 3_600_000).toISOString() }) });

      const random = seededRandom(11);
      const outcomes: string[] = [];
      for (let kill = 0; kill < 5; kill += 1) {
        await failAll();
        const victim = server!;
        const asked = recover().catch(() => null);
        await new Promise((resolve) => setTimeout(resolve, random() * 250));
        victim.child.kill('SIGKILL');
        await victim.exited;
        const answer = await asked;
        const after = await counts();
        expect({ kill, after }).toSatisfy(({ after: c }: { after: Record<string, number> }) => c.failed === DELIVERIES || c.pending === DELIVERIES);
        // An acknowledged recovery is never lost.
        if (answer?.status === 202) expect(after).toEqual({ pending: DELIVERIES });
        outcomes.push(after.pending === DELIVERIES ? 'all' : 'none');
        await start();
        const completed = await recover();
        expect(completed.status).toBe(202);
        expect(await counts()).toEqual({ pending: DELIVERIES });
      }
      process.stdout.write(`kills during a recovery of ${DELIVERIES} [${dialect}]: ${outcomes.join(', ')} (all or none each time)\n`);
      const last = server as HelpdeskProcess | null;
      last!.child.kill('SIGTERM');
      expect(await last!.exited).toEqual({ code: 0, signal: null });
    });
  });
}
