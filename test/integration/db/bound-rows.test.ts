/**
 * Batches bound as arrays (PostgreSQL) or one JSON text (SQLite), on both databases: what goes
 * in comes back exactly (text with NUL characters and astral characters, nulls, integers), in
 * the order of the batch, whatever its size; and a list of ids selects exactly those rows.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { inList, insertRows } from '../../../src/db/bound-rows.js';
import type { AttemptsTable } from '../../../src/db/schema.js';
import { ATTEMPT_COLUMNS } from '../../../src/delivery/attempts.repository.js';
import { insertDeliveries } from '../../../src/delivery/deliveries.repository.js';
import { insertEvents } from '../../../src/events/events.repository.js';
import { newEventRow } from '../../../src/delivery/outbox.js';
import { describeEachDialect } from '../../helpers/dialects.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';

describeEachDialect('bound batches', (dialect) => {
  let server: TestServer;
  let deliveryId: string | undefined;

  /** A webhook that is never sent to (no worker runs), to hang deliveries on. */
  async function createWebhook(): Promise<string> {
    const response = await server.request('POST', '/webhooks', { body: { webhook: { name: 'bound', targetUrl: 'https://receiver.example/hook', events: ['ticket.created'] } } });
    expect(response.status).toBe(201);
    return response.body.webhook.id as string;
  }

  beforeAll(async () => {
    server = await startTestServer(dialect, { startWorker: false });
    const { db, capabilities } = server.runtime.database;
    const webhookId = await createWebhook();
    const event = newEventRow({ type: 'webhook.test', ticketId: null, ticketVersion: null, data: {}, at: new Date().toISOString(), subject: null });
    await insertEvents(db, capabilities, [event]);
    [deliveryId] = await insertDeliveries(db, capabilities, [{ webhookId, eventId: event.id, eventType: event.type, ticketId: null, held: false, queuedAt: event.created_at }]);
  });
  afterAll(async () => {
    await server.close();
  });

  function attempt(i: number, body: string | null): AttemptsTable {
    return {
      id: `att_bound_${dialect}_${String(i).padStart(5, '0')}`,
      delivery_id: deliveryId!,
      attempted_at: `2026-12-02T00:00:00.${String(i % 1000).padStart(3, '0')}Z`,
      status_code: i % 2 === 0 ? 200 + (i % 300) : null,
      duration_ms: i,
      error: i % 2 === 0 ? null : 'timeout',
      error_message: i % 2 === 0 ? null : `no answer within ${i} ms`,
      response_headers: null,
      response_body: body,
    };
  }

  it('stores every value exactly as given, text edge cases, nulls and integers included', async () => {
    const { db, capabilities } = server.runtime.database;
    // PostgreSQL text cannot hold NUL (the outbound module replaces it); SQLite keeps it.
    const nul = dialect === 'sqlite' ? 'a\u0000b' : 'a\ufffdb';
    const bodies = [nul, 'quote " backslash \\ brace { } comma ,', '😀 Ünïcödé ✓', '', null, 'x'.repeat(100_000)];
    const rows = bodies.map((body, i) => attempt(i, body));
    await insertRows(db, capabilities, 'attempts', ATTEMPT_COLUMNS, rows);
    const stored = await db.selectFrom('attempts').selectAll().where(inList(capabilities, 'id', rows.map((r) => r.id))).orderBy('id').execute();
    expect(stored).toEqual(rows);
  });

  it('inserts a large batch in its order and selects exactly the listed rows', async () => {
    const { db, capabilities } = server.runtime.database;
    const rows = Array.from({ length: 3000 }, (_, i) => attempt(10_000 + i, `body ${i}`));
    await insertRows(db, capabilities, 'attempts', ATTEMPT_COLUMNS, rows);
    const wanted = rows.filter((_, i) => i % 7 === 0).map((r) => r.id);
    const selected = await db.selectFrom('attempts').select('id').where(inList(capabilities, 'id', wanted)).orderBy('id').execute();
    expect(selected.map((r) => r.id)).toEqual(wanted);
    expect(await db.selectFrom('attempts').select('id').where(inList(capabilities, 'id', [])).execute()).toEqual([]);
  });

  it('numbers deliveries inserted together in the order of the batch', async () => {
    const { db, capabilities } = server.runtime.database;
    const webhookId = await createWebhook();
    const at = new Date().toISOString();
    const events = Array.from({ length: 500 }, () => newEventRow({ type: 'webhook.test', ticketId: null, ticketVersion: null, data: {}, at, subject: null }));
    await insertEvents(db, capabilities, events);
    const ids = await insertDeliveries(db, capabilities, events.map((e) => ({ webhookId, eventId: e.id, eventType: e.type, ticketId: null, held: false, queuedAt: at })));
    const stored = await db.selectFrom('deliveries').select(['id', 'event_id']).where('webhook_id', '=', webhookId).orderBy('seq').execute();
    expect(stored.map((r) => r.id)).toEqual(ids);
    expect(stored.map((r) => r.event_id)).toEqual(events.map((e) => e.id));
  });
});
