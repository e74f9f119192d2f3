/**
 * Rotating HELPDESK_SECRET_KEY with the real program, on SQLite and PostgreSQL
 * (docs/configuration.md, "Rotating the secret key"): values sealed under the old key, `reseal`
 * SIGKILLed after its first batch and run again, and a server with only the new key that then
 * signs every delivery (checked by a receiver with each webhook's own secrets), sends every
 * custom header and replays every idempotent response. Also: a server with only the new key
 * before the reseal finished refuses to start, and a reseal while a server with only the old key
 * keeps creating webhooks loses none of them.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { openDatabase, type DatabaseHandle } from '../../src/db/connection.js';
import { requestFingerprint } from '../../src/idempotency/idempotency.service.js';
import { SecretBox } from '../../src/secrets/secret-box.js';
import { createTestDatabase, selectedDialects, type TestDatabase } from '../helpers/databases.js';
import { freePort, spawnHelpdesk, type HelpdeskProcess } from '../helpers/processes.js';
import { startReceiver, type ReceivedRequest, type Receiver } from '../helpers/receiver.js';
import { verifies } from '../helpers/signatures.js';
import { waitFor } from '../helpers/wait.js';

const TOKEN = 'reseal-admin-token-0123456789abcdef';
const API = '/helpdesk/api/v1';
const OLD_KEY = randomBytes(32);
const NEW_KEY = randomBytes(32);
const OLD_ONLY = OLD_KEY.toString('base64');
const NEW_ONLY = NEW_KEY.toString('base64');
const ROTATING = `${NEW_KEY.toString('hex')},${OLD_KEY.toString('base64')}`;
const OLD_ID = new SecretBox(OLD_KEY).keyId;
const NEW_ID = new SecretBox(NEW_KEY).keyId;
/** Idempotency keys written straight into the database under the old key: enough rows that a reseal of two rows a batch is still running when it is killed after its first. */
const FILLER_KEYS = 3_000;

interface Answer {
  status: number;
  headers: Headers;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests inspect arbitrary JSON
  body: any;
}

interface CreatedWebhook {
  id: string;
  signingSecret: string;
  /** Every live secret: the current one last. */
  secrets: string[];
  headers: Record<string, string>;
}

for (const dialect of selectedDialects()) {
  const unavailable = dialect === 'postgres' && !inject('postgresAvailable');
  describe.skipIf(unavailable)(`helpdesk reseal [${dialect}${unavailable ? ': SKIPPED, PostgreSQL not reachable' : ''}]`, () => {
    const cleanups: (() => Promise<unknown>)[] = [];
    afterAll(async () => {
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
    });

    async function setUp(): Promise<{ database: TestDatabase; receiver: Receiver; handle: DatabaseHandle }> {
      const database = await createTestDatabase(dialect);
      cleanups.push(() => database.drop());
      const receiver = await startReceiver({ host: '127.0.0.1' });
      cleanups.push(() => receiver.close());
      const handle = openDatabase(loadConfig({ HELPDESK_DATABASE_URL: database.url }).database);
      cleanups.push(() => handle.close());
      return { database, receiver, handle };
    }

    const baseEnv = (database: TestDatabase, secretKey: string) => ({
      HELPDESK_DATABASE_URL: database.url,
      HELPDESK_SECRET_KEY: secretKey,
      HELPDESK_ADMIN_TOKEN: TOKEN,
      HELPDESK_ALLOW_PRIVATE_TARGETS: 'true',
      HELPDESK_RATE_LIMIT: 'off',
      HELPDESK_LOG_LEVEL: 'error',
      NODE_EXTRA_CA_CERTS: inject('tls').caPath,
    });

    async function serve(database: TestDatabase, secretKey: string): Promise<{ process: HelpdeskProcess; call: (method: string, path: string, body?: unknown, headers?: Record<string, string>) => Promise<Answer> }> {
      const port = await freePort();
      const started = spawnHelpdesk('serve', { ...baseEnv(database, secretKey), HELPDESK_PORT: String(port) });
      cleanups.push(async () => started.child.exitCode === null && started.child.kill('SIGKILL'));
      await waitFor(`serve to answer (output: ${started.output()})`, () => started.child.exitCode === null && fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false), 20_000);
      const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
        const response = await fetch(`http://127.0.0.1:${port}${API}${path}`, {
          method,
          headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
        const text = await response.text();
        return { status: response.status, headers: response.headers, body: text === '' ? null : JSON.parse(text) };
      };
      return { process: started, call };
    }

    async function stop(server: HelpdeskProcess): Promise<void> {
      server.child.kill('SIGTERM');
      expect(await server.exited).toEqual({ code: 0, signal: null });
    }

    /** Sealed values under each key id (and `clear` for none), across every table that holds one. */
    async function sealedValuesByKey(handle: DatabaseHandle): Promise<Record<string, number>> {
      const { db } = handle;
      const values = [
        ...(await db.selectFrom('webhooks').select(['signing_secret', 'headers']).execute()).flatMap((r) => [r.signing_secret, ...Object.values(JSON.parse(r.headers) as Record<string, string>)]),
        ...(await db.selectFrom('webhook_secrets').select('secret').execute()).map((r) => r.secret),
        ...(await db.selectFrom('idempotency_keys').select(['fingerprint', 'response_body']).execute()).flatMap((r) => [r.fingerprint, ...(r.response_body === null ? [] : [r.response_body])]),
      ];
      const counts: Record<string, number> = {};
      for (const value of values) {
        const key = SecretBox.isSealed(value) ? value.split(':')[1]! : 'clear';
        counts[key] = (counts[key] ?? 0) + 1;
      }
      return counts;
    }

    const resealCommand = (database: TestDatabase, secretKey: string, batchSize: number) => spawnHelpdesk(['reseal', `--batch-size=${batchSize}`], baseEnv(database, secretKey));

    it('moves every value to the new key, killed after its first batch and run again; a server with the new key alone then signs, sends headers and replays', { timeout: 180_000 }, async () => {
      const { database, receiver, handle } = await setUp();
      const old = await serve(database, OLD_ONLY);
      const webhooks: CreatedWebhook[] = [];
      for (let i = 0; i < 6; i += 1) {
        const headers: Record<string, string> = i % 2 === 0 ? { 'X-Api-Key': `key-${i}-${randomBytes(8).toString('hex')}`, 'X-Tenant': `tenant-${i}` } : {};
        const created = await old.call('POST', '/webhooks', { webhook: { name: `w${i}`, targetUrl: receiver.url(`/w${i}`), events: ['ticket.created'], headers } });
        expect(created.status).toBe(201);
        webhooks.push({ id: created.body.webhook.id, signingSecret: created.body.webhook.signingSecret, secrets: [created.body.webhook.signingSecret], headers });
      }
      // Two rotations keep two previous secrets live on the first webhook, one on the second.
      for (const webhook of [webhooks[0]!, webhooks[0]!, webhooks[1]!]) {
        const rotated = await old.call('POST', `/webhooks/${webhook.id}/rotate-secret`, { expireCurrentInSeconds: 3600 });
        expect(rotated.status).toBe(200);
        webhook.signingSecret = rotated.body.webhook.signingSecret;
        webhook.secrets.push(webhook.signingSecret);
      }
      // Idempotent requests whose responses (one carries a signing secret) are kept sealed.
      const idempotent: { key: string; path: string; body: unknown; other: unknown; first: { status: number; body: unknown } }[] = [];
      const hook = (name: string) => ({ webhook: { name, targetUrl: receiver.url('/idempotent'), events: ['ticket.updated'], headers: { 'X-Replayed': 'yes' } } });
      for (const [i, [path, body, other]] of ([
        ['/tickets', { ticket: { subject: 'replayed 1' } }, { ticket: { subject: 'not the same' } }],
        ['/tickets', { ticket: { subject: 'replayed 2' } }, { ticket: { subject: 'not the same' } }],
        ['/webhooks', hook('idempotent'), hook('not the same')],
      ] as const).entries()) {
        const key = `reseal-${i}-${randomBytes(6).toString('hex')}`;
        const first = await old.call('POST', path, body, { 'idempotency-key': key });
        expect(first.status).toBe(201);
        idempotent.push({ key, path, body, other, first: { status: first.status, body: first.body } });
      }
      const idempotentWebhook = idempotent[2]!.first.body as { webhook: { id: string; signingSecret: string } };
      webhooks.push({ id: idempotentWebhook.webhook.id, signingSecret: idempotentWebhook.webhook.signingSecret, secrets: [idempotentWebhook.webhook.signingSecret], headers: { 'X-Replayed': 'yes' } });
      await stop(old.process);

      // Filler: keys of other callers, sealed under the old key as the server seals them.
      const oldBox = new SecretBox(OLD_KEY);
      const now = Date.now();
      const filler = Array.from({ length: FILLER_KEYS }, (_, i) => {
        const key = `filler-${String(i).padStart(5, '0')}`;
        return {
          scope: 'key_filler',
          key,
          fingerprint: oldBox.seal(requestFingerprint('POST', `${API}/tickets`, { ticket: { subject: key } }).sha256, `idempotency fingerprint:key_filler:${key}`),
          locked_until: null,
          response_status: 201,
          response_body: oldBox.seal(JSON.stringify({ ticket: { subject: key } }), `idempotency:key_filler:${key}`),
          created_at: new Date(now).toISOString(),
          expires_at: new Date(now + 3_600_000).toISOString(),
        };
      });
      for (let i = 0; i < filler.length; i += 500) await handle.db.insertInto('idempotency_keys').values(filler.slice(i, i + 500)).execute();
      const before = await sealedValuesByKey(handle);
      const total = Object.values(before).reduce((a, b) => a + b, 0);
      expect(before).toEqual({ [OLD_ID]: total });

      // Killed as soon as it reports its first batch.
      const interrupted = resealCommand(database, ROTATING, 2);
      interrupted.child.stdout!.on('data', () => {
        if (/^Resealed /m.test(interrupted.stdout())) interrupted.child.kill('SIGKILL');
      });
      expect(await interrupted.exited).toEqual({ code: null, signal: 'SIGKILL' });
      expect(interrupted.stdout()).toMatch(new RegExp(`^Resealing under key ${NEW_ID}: \\d+ rows hold values under another key\\.\\n`));
      const midway = await sealedValuesByKey(handle);
      process.stdout.write(`reseal killed after its first batch [${dialect}]: ${JSON.stringify({ [`new ${NEW_ID}`]: midway[NEW_ID], [`old ${OLD_ID}`]: midway[OLD_ID] })}\n`);
      expect(midway[NEW_ID]).toBeGreaterThan(0);
      expect(midway[OLD_ID]).toBeGreaterThan(0);

      // Too early for the new key alone: refused, saying why.
      const early = spawnHelpdesk('serve', { ...baseEnv(database, NEW_ONLY), HELPDESK_PORT: String(await freePort()) });
      expect(await early.exited).toEqual({ code: 1, signal: null });
      expect(early.stderr()).toContain(`helpdesk: serve failed: the secret key (HELPDESK_SECRET_KEY or the key file: key ${NEW_ID}) cannot open every value this database may hold: some may be sealed under key ${OLD_ID}, which it lacks. A rotation is under way`);

      const completed = resealCommand(database, ROTATING, 50);
      expect(await completed.exited, completed.output()).toEqual({ code: 0, signal: null });
      const lines = completed.stdout().trim().split('\n');
      expect(lines.at(-1)).toMatch(new RegExp(`^Done: every sealed value is under key ${NEW_ID} \\(resealed: signing secrets \\d+, previous signing secrets \\d+, header values \\d+, idempotency keys \\d+\\)\\.`));
      expect(lines.slice(1, -1).every((line) => /^Resealed \d+ of \d+ rows: signing secrets \d+, previous signing secrets \d+, header values \d+, idempotency keys \d+$/.test(line))).toBe(true);
      expect(await sealedValuesByKey(handle)).toEqual({ [NEW_ID]: total });

      // Again: nothing left to do, and it says so.
      const again = resealCommand(database, ROTATING, 50);
      expect(await again.exited).toEqual({ code: 0, signal: null });
      expect(again.stdout()).toBe(
        `Resealing under key ${NEW_ID}: 0 rows hold values under another key.\nDone: every sealed value is under key ${NEW_ID} (resealed: signing secrets 0, previous signing secrets 0, header values 0, idempotency keys 0). Keys other than the first can now be dropped from HELPDESK_SECRET_KEY.\n`,
      );

      const rotated = await serve(database, NEW_ONLY);
      for (const webhook of webhooks) {
        const test = await rotated.call('POST', `/webhooks/${webhook.id}/test`);
        expect(test.status).toBe(202);
        const request: ReceivedRequest = await waitFor(`the test delivery of ${webhook.id}`, () => receiver.requests.find((r) => r.headers['webhook-id'] === test.body.delivery.id));
        expect(request.headers['webhook-signature']!.split(' ')).toHaveLength(webhook.secrets.length);
        for (const secret of webhook.secrets) expect(verifies(secret, request), `${webhook.id} signed with each of its live secrets`).toBe(true);
        for (const [name, value] of Object.entries(webhook.headers)) expect(request.headers[name.toLowerCase()]).toBe(value);
      }
      for (const { key, path, body, other, first } of idempotent) {
        const replay = await rotated.call('POST', path, body, { 'idempotency-key': key });
        expect(replay.headers.get('idempotent-replayed')).toBe('true');
        expect({ status: replay.status, body: replay.body }).toEqual(first);
        // Still told apart from another request under the same key.
        expect((await rotated.call('POST', path, other, { 'idempotency-key': key })).status).toBe(422);
      }
      await stop(rotated.process);
    });

    it('loses no webhook a server with the old key alone creates while a reseal runs: each is moved, or its creation fails once the old key is retired', { timeout: 120_000 }, async () => {
      const { database, receiver, handle } = await setUp();
      const old = await serve(database, OLD_ONLY);
      const created: { id: string; name: string; signingSecret: string }[] = [];
      const refused: string[] = [];
      let resealed = false;
      let createdAfterReseal = 0;
      let attemptsAfterReseal = 0;
      const creating = (async () => {
        for (let i = 0; attemptsAfterReseal < 3; i += 1) {
          const doneBefore = resealed;
          const response = await old.call('POST', '/webhooks', { webhook: { name: `during-${i}`, targetUrl: receiver.url(`/during-${i}`), events: ['ticket.created'], headers: { 'X-Seq': String(i) } } });
          if (doneBefore) attemptsAfterReseal += 1;
          if (response.status === 201) {
            created.push(response.body.webhook);
            if (doneBefore) createdAfterReseal += 1;
          } else {
            refused.push(`${response.status} ${response.body.error.code}`);
          }
        }
      })();
      await waitFor('a few webhooks under the old key', () => created.length >= 20);
      const reseal = resealCommand(database, ROTATING, 5);
      const exit = await reseal.exited;
      resealed = true;
      expect(exit, reseal.output()).toEqual({ code: 0, signal: null });
      await creating;
      // Once the reseal has recorded the new key alone, the old server cannot seal any more.
      expect(createdAfterReseal).toBe(0);
      expect(refused.length).toBeGreaterThanOrEqual(3);
      expect(new Set(refused)).toEqual(new Set(['500 internal']));
      // In the log's JSON, whose quotes are escaped.
      expect(old.process.output()).toContain(`this process seals with secret key ${OLD_ID}, which \\"helpdesk reseal\\" has retired since it started`);
      await stop(old.process);
      process.stdout.write(`reseal while a server with the old key creates webhooks [${dialect}]: ${created.length} created, ${refused.length} refused after the old key was retired\n`);

      expect(Object.keys(await sealedValuesByKey(handle))).toEqual([NEW_ID]);
      const rotated = await serve(database, NEW_ONLY);
      const tests = await Promise.all(created.map((webhook) => rotated.call('POST', `/webhooks/${webhook.id}/test`)));
      expect(tests.map((test) => test.status)).toEqual(created.map(() => 202));
      const requests = await waitFor('every test delivery', () => {
        const found = tests.map((test) => receiver.requests.find((r) => r.headers['webhook-id'] === test.body.delivery.id));
        return found.every((request) => request !== undefined) && (found as ReceivedRequest[]);
      });
      created.forEach((webhook, i) => {
        expect(verifies(webhook.signingSecret, requests[i]!), `${webhook.id} signed with its secret`).toBe(true);
        expect(requests[i]!.headers['x-seq']).toBe(webhook.name.slice('during-'.length));
      });
      await stop(rotated.process);
    });
  });
}
