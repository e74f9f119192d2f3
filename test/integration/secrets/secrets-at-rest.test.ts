/**
 * Nothing that grants access or forges a delivery is stored in clear: API keys and the bootstrap
 * token are hashed, signing secrets are sealed with the server's secret key, and the key itself
 * never enters the database. Checked on every row of every table and, on SQLite, on the bytes of
 * the database file and its WAL.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SecretBox } from '../../../src/secrets/secret-box.js';
import { createTestDatabase, type TestDatabase } from '../../helpers/databases.js';
import { describeEachDialect } from '../../helpers/dialects.js';
import { startReceiver, type Receiver, type ReceivedRequest } from '../../helpers/receiver.js';
import { ADMIN_TOKEN, SECRET_KEY, startTestServer, type TestServer } from '../../helpers/server.js';
import { ALL_TABLES } from '../../helpers/tables.js';
import { verifies } from '../../helpers/signatures.js';


/** Every way a signing secret could be written down: as given, its base64 part, its raw bytes. */
function formsOfSecret(secret: string): Buffer[] {
  const raw = Buffer.from(secret.slice('whsec_'.length), 'base64');
  return [Buffer.from(secret), Buffer.from(secret.slice('whsec_'.length)), Buffer.from(raw.toString('hex')), raw];
}

function formsOfKey(base64: string): Buffer[] {
  const raw = Buffer.from(base64, 'base64');
  return [Buffer.from(base64), Buffer.from(raw.toString('hex')), Buffer.from(raw.toString('base64url')), raw];
}

async function dumpRows(server: TestServer): Promise<string> {
  const db = server.runtime.database.db;
  const tables = await Promise.all(ALL_TABLES.map(async (table) => JSON.stringify(await db.selectFrom(table).selectAll().execute())));
  return tables.join('\n');
}

describeEachDialect('secrets at rest', (dialect) => {
  let receiver: Receiver;
  beforeAll(async () => {
    receiver = await startReceiver();
  });
  afterAll(async () => {
    await receiver.close();
  });

  async function subscribe(server: TestServer, name: string): Promise<{ id: string; signingSecret: string }> {
    const response = await server.request('POST', '/webhooks', { body: { webhook: { name, targetUrl: receiver.url(`/${name}`), events: ['ticket.created'] } } });
    expect(response.status).toBe(201);
    return response.body.webhook;
  }

  async function testDelivery(server: TestServer, webhookId: string): Promise<ReceivedRequest> {
    const before = receiver.requests.length;
    expect((await server.request('POST', `/webhooks/${webhookId}/test`)).status).toBe(202);
    const received = await receiver.waitForRequests(before + 1);
    return received.slice(before).find((r) => r.body.includes(webhookId))!;
  }

  it('holds no API key, admin token, signing secret or secret key in clear, in any row or file byte', async () => {
    const server = await startTestServer(dialect);
    try {
      const agent = await server.keyFor('agent');
      const admin = await server.keyFor('admin');
      const first = await subscribe(server, 'first');
      const second = await subscribe(server, 'second');
      const secrets = [first.signingSecret, second.signingSecret];
      // A response that carried a secret, kept for its Idempotency-Key.
      const third = await server.request('POST', '/webhooks', {
        body: { webhook: { name: 'third', targetUrl: receiver.url('/third'), events: ['ticket.updated'] } },
        headers: { 'idempotency-key': 'secret-bearing-response' },
      });
      expect(third.status).toBe(201);
      for (let i = 0; i < 2; i += 1) {
        const rotated = await server.request('POST', `/webhooks/${first.id}/rotate-secret`, { body: { expireCurrentInSeconds: 3600 } });
        expect(rotated.status).toBe(200);
        secrets.push(rotated.body.webhook.signingSecret);
      }
      const before = receiver.requests.length;
      expect((await server.request('POST', '/tickets', { body: { ticket: { subject: 'sealed' } } })).status).toBe(201);
      const delivered = (await receiver.waitForRequests(before + 2)).slice(before);
      // The sealed secrets still sign: every live secret of `first`, the one of `second`.
      const toFirst = delivered.find((r) => r.path === '/first')!;
      expect([secrets[0], secrets[2], secrets[3]].map((s) => verifies(s!, toFirst))).toEqual([true, true, true]);
      expect(verifies(secrets[1]!, delivered.find((r) => r.path === '/second')!)).toBe(true);

      const needles: { what: string; bytes: Buffer }[] = [
        ...[ADMIN_TOKEN, agent.key, admin.key].map((key) => ({ what: 'an API key', bytes: Buffer.from(key) })),
        ...[...secrets, third.body.webhook.signingSecret as string].flatMap((secret) => formsOfSecret(secret).map((bytes) => ({ what: 'a signing secret', bytes }))),
        ...formsOfKey(SECRET_KEY).map((bytes) => ({ what: 'the secret key', bytes })),
      ];
      const rows = Buffer.from(await dumpRows(server));
      expect(rows.length).toBeGreaterThan(1000);
      for (const needle of needles) expect(rows.includes(needle.bytes), `${needle.what} in a row`).toBe(false);

      const stored = await server.runtime.database.db.selectFrom('webhooks').select('signing_secret').execute();
      const previous = await server.runtime.database.db.selectFrom('webhook_secrets').select('secret').execute();
      expect(stored.length + previous.length).toBe(5);
      for (const value of [...stored.map((r) => r.signing_secret), ...previous.map((r) => r.secret)]) expect(SecretBox.isSealed(value)).toBe(true);

      if (dialect === 'sqlite') {
        const file = server.database.url.slice('sqlite:'.length);
        const bytes = Buffer.concat([file, `${file}-wal`].filter((f) => existsSync(f)).map((f) => readFileSync(f)));
        // The probe works: the file does hold what was written in clear.
        expect(bytes.includes(Buffer.from('sealed'))).toBe(true);
        for (const needle of needles) expect(bytes.includes(needle.bytes), `${needle.what} in the database file`).toBe(false);
      }
    } finally {
      await server.close();
    }
  });

  describe('the key file, when HELPDESK_SECRET_KEY is not set', () => {
    let database: TestDatabase;
    let directory: string;
    let keyFile: string;
    beforeAll(async () => {
      database = await createTestDatabase(dialect);
      directory = mkdtempSync(join(tmpdir(), 'helpdesk-key-'));
      keyFile = join(directory, 'keys', 'secret.key');
    });
    afterAll(async () => {
      await database.drop();
      rmSync(directory, { recursive: true, force: true });
    });

    it('is generated on first start, readable by its owner only, and used again on the next', async () => {
      const env = { HELPDESK_SECRET_KEY_FILE: keyFile };
      const server = await startTestServer(dialect, { database, env });
      const webhook = await subscribe(server, 'file-key');
      await server.close();
      expect(statSync(keyFile).mode & 0o777).toBe(0o600);
      const generated = readFileSync(keyFile, 'utf8');
      expect(generated).toMatch(/^[A-Za-z0-9+/]{43}=\n$/);
      expect(generated.trim()).not.toBe(SECRET_KEY);

      const restarted = await startTestServer(dialect, { database, env });
      try {
        expect(verifies(webhook.signingSecret, await testDelivery(restarted, webhook.id))).toBe(true);
      } finally {
        await restarted.close();
      }
      expect(readFileSync(keyFile, 'utf8')).toBe(generated);
    });

    it('refuses to start with another key, or with the file gone, and generates none then', async () => {
      // The test server's own key is not the file's.
      await expect(startTestServer(dialect, { database })).rejects.toThrow(/cannot open every value this database may hold: some may be sealed under key [0-9a-f]{16}, which it lacks/);
      const generated = readFileSync(keyFile);
      rmSync(keyFile);
      await expect(startTestServer(dialect, { database, env: { HELPDESK_SECRET_KEY_FILE: keyFile } })).rejects.toThrow(/is missing/);
      expect(existsSync(keyFile)).toBe(false);
      writeFileSync(keyFile, generated, { mode: 0o600 });
      const back = await startTestServer(dialect, { database, env: { HELPDESK_SECRET_KEY_FILE: keyFile } });
      await back.close();
    });
  });

  it('seals, on start, the secrets a version before sealing stored in clear', async () => {
    const database = await createTestDatabase(dialect);
    try {
      const server = await startTestServer(dialect, { database });
      const webhook = await subscribe(server, 'from-before');
      const current = `whsec_${Buffer.alloc(32, 1).toString('base64')}`;
      const previous = `whsec_${Buffer.alloc(32, 2).toString('base64')}`;
      const db = server.runtime.database.db;
      await db.updateTable('webhooks').set({ signing_secret: current }).where('id', '=', webhook.id).execute();
      await db
        .insertInto('webhook_secrets')
        .values({ webhook_id: webhook.id, secret: previous, expires_at: new Date(Date.now() + 3_600_000).toISOString(), created_at: new Date().toISOString() })
        .execute();
      await server.close();

      const restarted = await startTestServer(dialect, { database });
      try {
        const rows = await dumpRows(restarted);
        for (const text of [current, previous].flatMap((secret) => formsOfSecret(secret).slice(0, 3))) expect(rows.includes(text.toString())).toBe(false);
        const box = new SecretBox(Buffer.from(SECRET_KEY, 'base64'));
        const sealed = await restarted.runtime.database.db.selectFrom('webhooks').select('signing_secret').where('id', '=', webhook.id).executeTakeFirstOrThrow();
        expect(box.open(sealed.signing_secret, webhook.id)).toBe(current);
        const request = await testDelivery(restarted, webhook.id);
        expect([verifies(current, request), verifies(previous, request)]).toEqual([true, true]);
      } finally {
        await restarted.close();
      }
    } finally {
      await database.drop();
    }
  });
});
