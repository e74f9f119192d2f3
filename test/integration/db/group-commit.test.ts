/**
 * Group commit, on both databases: writes submitted together go in one transaction, each caller
 * is answered with its own result after the commit, and an item the database refuses fails
 * alone. Then the ticket creations that use it: created together over the API, each ticket
 * still has its own event, its own delivery and its own timestamps.
 */
import { createLogger } from '../../../src/logger.js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { GroupCommit } from '../../../src/db/group-commit.js';
import { describeEachDialect } from '../../helpers/dialects.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';

describeEachDialect('group commit', (dialect) => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer(dialect, { startWorker: false });
  });
  afterAll(async () => {
    await server.close();
  });

  function settingsGroup(batches: string[][]): GroupCommit<string, string> {
    return new GroupCommit<string, string>({
      name: 'test',
      db: server.runtime.database.db,
      logger: createLogger('silent'),
      maxBatch: 100,
      gatherMs: 0,
      write: async (trx, keys) => {
        batches.push([...keys]);
        for (const key of keys) {
          // A duplicate key breaks the primary key: the database refuses the whole batch.
          await trx.insertInto('settings').values({ key, value: `value of ${key}` }).execute();
        }
        return keys.map((key) => `stored ${key}`);
      },
    });
  }

  async function storedKeys(prefix: string): Promise<string[]> {
    const rows = await server.runtime.database.db.selectFrom('settings').select('key').where('key', 'like', `${prefix}%`).orderBy('key').execute();
    return rows.map((row) => row.key);
  }

  it('writes what is submitted together in one transaction and answers each caller with its own result', async () => {
    const batches: string[][] = [];
    const group = settingsGroup(batches);
    const keys = Array.from({ length: 30 }, (_, i) => `together-${String(i).padStart(2, '0')}`);
    const results = await Promise.all(keys.map((key) => group.submit(key)));
    expect(results).toEqual(keys.map((key) => `stored ${key}`));
    expect(batches).toEqual([keys]);
    expect(await storedKeys('together-')).toEqual(keys);
  });

  it('fails only the item the database refuses, and commits the others', async () => {
    await server.runtime.database.db.insertInto('settings').values({ key: 'refused-taken', value: 'already here' }).execute();
    const batches: string[][] = [];
    const group = settingsGroup(batches);
    const submitted = ['refused-a', 'refused-taken', 'refused-b'].map((key) => group.submit(key));
    const outcomes = await Promise.allSettled(submitted);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(outcomes[0]).toMatchObject({ value: 'stored refused-a' });
    // The batch, refused whole, then each item alone.
    expect(batches).toEqual([['refused-a', 'refused-taken', 'refused-b'], ['refused-a'], ['refused-taken'], ['refused-b']]);
    expect(await storedKeys('refused-')).toEqual(['refused-a', 'refused-b', 'refused-taken']);
    const kept = await server.runtime.database.db.selectFrom('settings').select('value').where('key', '=', 'refused-taken').executeTakeFirstOrThrow();
    expect(kept.value).toBe('already here');
  });

  it('fails the whole batch at once when the database itself fails, instead of retrying each item in turn', async () => {
    let calls = 0;
    const outage = Object.assign(new Error('the database went away'), { code: dialect === 'sqlite' ? 'SQLITE_IOERR_WRITE' : '57P01' });
    const group = new GroupCommit<string, string>({
      name: 'test',
      db: server.runtime.database.db,
      logger: createLogger('silent'),
      maxBatch: 100,
      gatherMs: 0,
      write: async () => {
        calls += 1;
        throw outage;
      },
    });
    const outcomes = await Promise.allSettled(['outage-a', 'outage-b', 'outage-c'].map((key) => group.submit(key)));
    expect(outcomes.map((o) => (o.status === 'rejected' ? o.reason : 'fulfilled'))).toEqual([outage, outage, outage]);
    expect(calls).toBe(1);
  });

  it('writes what was gathered when asked to settle', async () => {
    const batches: string[][] = [];
    const group = settingsGroup(batches);
    const pending = group.submit('settled-one');
    await group.settled();
    expect(batches).toEqual([['settled-one']]);
    expect(await storedKeys('settled-')).toEqual(['settled-one']);
    await expect(pending).resolves.toBe('stored settled-one');
  });

  it('gives tickets created together each their own event and delivery', async () => {
    const webhook = await server.request('POST', '/webhooks', {
      body: { webhook: { name: 'together', targetUrl: 'https://127.0.0.1:1/never', events: ['ticket.created'] } },
    });
    expect(webhook.status).toBe(201);
    const responses = await Promise.all(
      Array.from({ length: 25 }, (_, i) => server.request('POST', '/tickets', { body: { ticket: { subject: `together ${i}` } } })),
    );
    expect(responses.map((r) => r.status)).toEqual(responses.map(() => 201));
    const tickets = responses.map((r) => r.body.ticket as { id: string; subject: string; createdAt: string });
    expect(new Set(tickets.map((t) => t.id)).size).toBe(25);

    const db = server.runtime.database.db;
    const events = await db.selectFrom('events').select(['id', 'ticket_id', 'payload', 'created_at']).where('type', '=', 'ticket.created').execute();
    for (const ticket of tickets) {
      const own = events.filter((e) => e.ticket_id === ticket.id);
      expect(own).toHaveLength(1);
      const payload = JSON.parse(own[0]!.payload);
      expect(payload).toMatchObject({ event: 'ticket.created', timestamp: ticket.createdAt, data: { ticket: { id: ticket.id, subject: ticket.subject } } });
      expect(own[0]!.created_at).toBe(ticket.createdAt);
      const deliveries = await db.selectFrom('deliveries').select(['webhook_id', 'next_attempt_at']).where('event_id', '=', own[0]!.id).execute();
      expect(deliveries).toEqual([{ webhook_id: webhook.body.webhook.id, next_attempt_at: ticket.createdAt }]);
    }
  });
});
