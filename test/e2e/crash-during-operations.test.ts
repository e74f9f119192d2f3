/**
 * Kills in the middle of the operations that change many rows at once, with the real program, on
 * SQLite and PostgreSQL: `helpdesk migrate` on an empty database, a recovery of 10,000 failed
 * deliveries, and a stream of signing-secret rotations, each SIGKILLed at moments drawn from a
 * seeded generator. After each kill the database holds all of the operation or none of it, and
 * the next run completes it. Rotations are checked from outside only, as a receiver sees them:
 * by the signatures on the deliveries that follow.
 */
import { readdirSync } from 'node:fs';
import { createHmac } from 'node:crypto';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { openDatabase, type DatabaseHandle } from '../../src/db/connection.js';
import { insertDeliveries } from '../../src/delivery/deliveries.repository.js';
import { insertEvents } from '../../src/events/events.repository.js';
import { newEventRow } from '../../src/delivery/outbox.js';
import { createTestDatabase, selectedDialects, type TestDatabase } from '../helpers/databases.js';
import { freePort, spawnHelpdesk, type HelpdeskProcess } from '../helpers/processes.js';
import { seededRandom } from '../helpers/random.js';
import { startReceiver, type ReceivedRequest, type Receiver } from '../helpers/receiver.js';
import { waitFor } from '../helpers/wait.js';
import { verifies } from '../helpers/signatures.js';

const TOKEN = 'crash-operations-admin-token-0123456789';
const DELIVERIES = 10_000;
/** Every migration of the program, counted from its sources so a new one needs no edit here. */
const MIGRATIONS = readdirSync(new URL('../../src/db/migrations', import.meta.url)).filter((f) => f.endsWith('.ts')).length;
const ROTATION_KILLS = 10;
/** Live secrets at most (docs/api.md, "Rotating the signing secret"). */
const MAX_LIVE_SECRETS = 10;
/** The key that seals signing secrets at rest: every restart must be given the same one. */
const SECRET_KEY = Buffer.alloc(32, 11).toString('base64');

/** A Standard Webhooks signature, computed here from the secret (not with the server's code). */
function sign(secret: string, request: ReceivedRequest): string {
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  const signed = `${request.headers['webhook-id']}.${request.headers['webhook-timestamp']}.${request.body}`;
  return `v1,${createHmac('sha256', key).update(signed).digest('base64')}`;
}

for (const dialect of selectedDialects()) {
  const unavailable = dialect === 'postgres' && !inject('postgresAvailable');
  describe.skipIf(unavailable)(`kills during migrations, recoveries and secret rotations [${dialect}${unavailable ? ': SKIPPED, PostgreSQL not reachable' : ''}]`, () => {
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
        const created = tables.filter((t) => ['users', 'tickets', 'webhooks', 'deliveries', 'attempts', 'idempotency_keys'].includes(t.name)).length;
        expect({ kill, applied, created }).toSatisfy(({ applied: a, created: c }: { applied: number; created: number }) => (a === 0 && c === 0) || (a === MIGRATIONS && c === 6));
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
      const events = Array.from({ length: DELIVERIES }, () => newEventRow({ type: 'ticket.created', ticketId: null, ticketVersion: null, data: {}, at, subject: null }));
      await insertEvents(db, capabilities, events);
      await insertDeliveries(db, capabilities, events.map((e) => ({ webhookId, eventId: e.id, eventType: e.type, ticketId: null, held: false, queuedAt: at })));
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

    it('leaves a secret rotation killed at any moment wholly done or not at all: deliveries are signed by exactly the live secrets', { timeout: 180_000 }, async () => {
      const database = await createTestDatabase(dialect);
      cleanups.push(() => database.drop());
      const receiver: Receiver = await startReceiver({ host: '127.0.0.1' });
      cleanups.push(() => receiver.close());
      const port = await freePort();
      const base = `http://127.0.0.1:${port}/helpdesk/api/v1`;
      const authorization = `Bearer ${TOKEN}`;
      const headers = { authorization, 'content-type': 'application/json' };
      let server: HelpdeskProcess | null = null;
      const start = async () => {
        const started = spawnHelpdesk('serve', {
          HELPDESK_DATABASE_URL: database.url,
          HELPDESK_ADMIN_TOKEN: TOKEN,
          HELPDESK_SECRET_KEY: SECRET_KEY,
          HELPDESK_PORT: String(port),
          HELPDESK_ALLOW_PRIVATE_TARGETS: 'true',
          HELPDESK_RETRY_SCHEDULE: '0.2,0.5,1',
          HELPDESK_RATE_LIMIT: '1000000',
          HELPDESK_LOG_LEVEL: 'error',
          NODE_EXTRA_CA_CERTS: inject('tls').caPath,
        });
        server = started;
        await waitFor(`serve to answer (output: ${started.output()})`, () => fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false), 20_000);
        return started;
      };
      cleanups.push(async () => server?.child.exitCode === null && server.child.kill('SIGKILL'));
      await start();
      const created = await fetch(`${base}/webhooks`, { method: 'POST', headers, body: JSON.stringify({ webhook: { name: 'rotating', targetUrl: receiver.url('/rotating'), events: ['ticket.created'] } }) });
      expect(created.status).toBe(201);
      const webhook = ((await created.json()) as { webhook: { id: string; signingSecret: string } }).webhook;

      // The secrets that became current, in order, as the client knows them: the creation's,
      // then each acknowledged rotation's; null for a rotation that committed although its
      // answer never came (its secret is unknown, but it signs). Every rotation keeps the secret
      // it replaces a second longer than the one before, so the one closest to expiry is always
      // the oldest and the live secrets are the last ten of the chain.
      const chain: (string | null)[] = [webhook.signingSecret];
      const known = new Set<string>(chain as string[]);
      let overlapSeconds = 3_600;
      let acknowledged = 0;
      let committedUnacknowledged = 0;
      let rolledBack = 0;
      /** Kills that came between two rotations (none in flight). */
      let between = 0;
      const refusals: string[] = [];

      /** The signatures on the delivery of a test event (or of a ticket created now), as received. */
      const signedDelivery = async (via: 'test' | 'ticket'): Promise<ReceivedRequest> => {
        let deliveryId: string | null = null;
        let ticketId: string | null = null;
        if (via === 'test') {
          const test = await fetch(`${base}/webhooks/${webhook.id}/test`, { method: 'POST', headers: { authorization } });
          expect(test.status).toBe(202);
          deliveryId = ((await test.json()) as { delivery: { id: string } }).delivery.id;
        } else {
          const ticket = await fetch(`${base}/tickets`, { method: 'POST', headers, body: JSON.stringify({ ticket: { subject: 'signed' } }) });
          expect(ticket.status).toBe(201);
          ticketId = ((await ticket.json()) as { ticket: { id: string } }).ticket.id;
        }
        return waitFor(`the ${via} delivery to reach the receiver`, () =>
          receiver.requests.find((r) => (deliveryId !== null ? r.headers['webhook-id'] === deliveryId : r.body.includes(`"id":"${ticketId}"`))),
        );
      };

      /**
       * Checks a delivery against the chain, and against the chain with one more, unknown secret
       * when a rotation was in flight at the kill: exactly one must explain the signatures.
       * Returns whether that rotation had committed.
       */
      const checkSignatures = (request: ReceivedRequest, inFlight: boolean): boolean => {
        const signatures = request.headers['webhook-signature']!.split(' ');
        expect(new Set(signatures).size, 'a secret signed twice').toBe(signatures.length);
        expect(signatures.length).toBeLessThanOrEqual(MAX_LIVE_SECRETS);
        const bySignature = new Map([...known].map((secret) => [sign(secret, request), secret]));
        const signedBy = signatures.flatMap((s) => (bySignature.has(s) ? [bySignature.get(s)!] : [])).sort();
        const unknown = signatures.length - signedBy.length;
        const explains = (candidate: (string | null)[]) => {
          const live = candidate.slice(-MAX_LIVE_SECRETS);
          const liveKnown = live.filter((s): s is string => s !== null).sort();
          return live.length === signatures.length && liveKnown.length === signedBy.length && liveKnown.every((s, i) => s === signedBy[i]) && live.length - liveKnown.length === unknown;
        };
        const asBefore = explains(chain);
        const committed = inFlight && explains([...chain, null]);
        expect({ asBefore, committed, signatures: signatures.length, signedByKnown: signedBy.length, unknown, chain: chain.length }).toSatisfy(
          ({ asBefore: a, committed: c }: { asBefore: boolean; committed: boolean }) => a !== c,
        );
        // Through a Standard Webhooks library too: each live known secret verifies it.
        for (const secret of signedBy) expect(verifies(secret, request)).toBe(true);
        return committed;
      };

      checkSignatures(await signedDelivery('test'), false);
      const random = seededRandom(5);
      for (let kill = 0; kill < ROTATION_KILLS; kill += 1) {
        // A steady stream of rotations, one after another, until the server dies under it.
        let inFlight = false;
        let thisRound = 0;
        const stream = (async () => {
          for (;;) {
            overlapSeconds += 1;
            inFlight = true;
            let secret: string;
            try {
              const response = await fetch(`${base}/webhooks/${webhook.id}/rotate-secret`, { method: 'POST', headers, body: JSON.stringify({ expireCurrentInSeconds: overlapSeconds }) });
              const text = await response.text();
              if (response.status !== 200) {
                refusals.push(`${response.status} ${text}`);
                inFlight = false;
                return;
              }
              secret = (JSON.parse(text) as { webhook: { signingSecret: string } }).webhook.signingSecret;
            } catch {
              return; // the server died under it: this rotation is in flight, committed or not
            }
            chain.push(secret);
            known.add(secret);
            acknowledged += 1;
            thisRound += 1;
            inFlight = false;
          }
        })();
        // At least ten acknowledged rotations since the restart, so that the last kill's
        // unknown secret (if it committed) is no longer live and cannot be mistaken for this
        // one's; then the kill comes at a seeded moment within the next 0.5 s.
        await waitFor('ten rotations since the restart', () => thisRound >= MAX_LIVE_SECRETS || refusals.length > 0);
        await new Promise((resolve) => setTimeout(resolve, random() * 500));
        const victim: HelpdeskProcess = server!;
        victim.child.kill('SIGKILL');
        await victim.exited;
        await stream;
        expect(refusals).toEqual([]);
        await start();
        const committed = checkSignatures(await signedDelivery('test'), inFlight);
        if (committed) {
          chain.push(null);
          committedUnacknowledged += 1;
        } else if (inFlight) {
          rolledBack += 1;
        } else {
          between += 1;
        }
      }

      // A rotation after the last restart completes, and its secret signs, a ticket's event too.
      const after = await fetch(`${base}/webhooks/${webhook.id}/rotate-secret`, { method: 'POST', headers, body: JSON.stringify({ expireCurrentInSeconds: overlapSeconds + 1 }) });
      expect(after.status).toBe(200);
      const newest = ((await after.json()) as { webhook: { signingSecret: string } }).webhook.signingSecret;
      chain.push(newest);
      known.add(newest);
      acknowledged += 1;
      for (const via of ['test', 'ticket'] as const) {
        const request = await signedDelivery(via);
        checkSignatures(request, false);
        expect(verifies(newest, request)).toBe(true);
      }
      process.stdout.write(
        `kills during secret rotations [${dialect}]: ${ROTATION_KILLS} kills, ${acknowledged} rotations acknowledged, ` +
          `${committedUnacknowledged} committed but not acknowledged, ${rolledBack} not committed (rolled back, or not yet received), ${between} between two; every delivery signed by exactly the ${MAX_LIVE_SECRETS} live secrets\n`,
      );
      const last = server as HelpdeskProcess | null;
      last!.child.kill('SIGTERM');
      expect(await last!.exited).toEqual({ code: 0, signal: null });
    });
  });
}
