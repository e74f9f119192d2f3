/**
 * The record of the key ids a database's values may be under (src/secrets/sealing-keys.ts), as
 * processes start with one key, two, or the other alone; and a key file that lists two keys.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { SecretBox } from '../../../src/secrets/secret-box.js';
import { createTestDatabase, type TestDatabase } from '../../helpers/databases.js';
import { describeEachDialect } from '../../helpers/dialects.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';

const OLD_KEY = randomBytes(32);
const NEW_KEY = randomBytes(32);
const OLD_ID = new SecretBox(OLD_KEY).keyId;
const NEW_ID = new SecretBox(NEW_KEY).keyId;

describeEachDialect('the record of secret key ids', (dialect) => {
  let database: TestDatabase;
  let directory: string;
  beforeAll(async () => {
    database = await createTestDatabase(dialect);
    directory = mkdtempSync(join(tmpdir(), 'helpdesk-keys-'));
  });
  afterAll(async () => {
    await database.drop();
    rmSync(directory, { recursive: true, force: true });
  });

  const start = (keys: Buffer[]) => startTestServer(dialect, { database, env: { HELPDESK_SECRET_KEY: keys.map((k) => k.toString('base64')).join(',') } });
  const recorded = async (server: TestServer) =>
    (await server.runtime.database.db.selectFrom('settings').select('value').where('key', '=', 'secret_key_id').executeTakeFirstOrThrow()).value;

  it('grows with each sealing key a process starts with, and refuses a process that lacks one', async () => {
    const first = await start([OLD_KEY]);
    const created = await first.request('POST', '/webhooks', { body: { webhook: { name: 'sealed-old', targetUrl: 'https://example.com/h', events: ['ticket.created'], headers: { 'X-Key': 'value' } } } });
    expect(created.status).toBe(201);
    expect(await recorded(first)).toBe(OLD_ID);
    await first.close();

    const rotating = await start([NEW_KEY, OLD_KEY]);
    try {
      expect(await recorded(rotating)).toBe(`${OLD_ID},${NEW_ID}`);
      // What the old key sealed still opens, and a change seals under the new one.
      const changed = await rotating.request('PUT', `/webhooks/${created.body.webhook.id}`, { body: { webhook: { headers: { 'X-Key': '********', 'X-More': 'more' } } } });
      expect(changed.status).toBe(200);
      const row = await rotating.runtime.database.db.selectFrom('webhooks').select(['signing_secret', 'headers']).where('id', '=', created.body.webhook.id).executeTakeFirstOrThrow();
      expect(row.signing_secret.startsWith(`hdsec1:${OLD_ID}:`)).toBe(true);
      expect(Object.values(JSON.parse(row.headers) as Record<string, string>).every((value) => value.startsWith(`hdsec1:${NEW_ID}:`))).toBe(true);
    } finally {
      await rotating.close();
    }

    // Either key alone may find values it cannot open now.
    await expect(start([NEW_KEY])).rejects.toThrow(`some may be sealed under key ${OLD_ID}, which it lacks. A rotation is under way`);
    await expect(start([OLD_KEY])).rejects.toThrow(`some may be sealed under key ${NEW_ID}, which it lacks. A rotation is under way`);
    // The order of the list does not matter to the record, only to what seals.
    const reordered = await start([OLD_KEY, NEW_KEY]);
    try {
      expect(await recorded(reordered)).toBe(`${OLD_ID},${NEW_ID}`);
    } finally {
      await reordered.close();
    }
  });

  it('reads a key file that lists several keys like the variable', async () => {
    const keyFile = join(directory, 'rotating.key');
    writeFileSync(keyFile, `${NEW_KEY.toString('hex')},${OLD_KEY.toString('base64')}\n`, { mode: 0o600 });
    const server = await startTestServer(dialect, { database, env: { HELPDESK_SECRET_KEY_FILE: keyFile } });
    await server.close();
    writeFileSync(keyFile, `${NEW_KEY.toString('hex')},\n`, { mode: 0o600 });
    await expect(startTestServer(dialect, { database, env: { HELPDESK_SECRET_KEY_FILE: keyFile } })).rejects.toThrow(`the secret key file ${keyFile}: key 2 of 2 is empty`);
  });
});
