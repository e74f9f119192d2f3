/**
 * docs/delivery.md, "Order": the record of a delivery that finishes its ticket's stream releases
 * the next one, and leases it to the worker that recorded, which sends it without claiming it;
 * on both databases, through the repository the worker's recorder runs.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { recordAttempts, type AttemptRecord } from '../../../src/delivery/attempts.repository.js';
import { claimDueDeliveries, type ClaimedDelivery } from '../../../src/delivery/deliveries.repository.js';
import { describeEachDialect } from '../../helpers/dialects.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';

const WORKER = 'wrk_handover';

describeEachDialect('hand-over of the next delivery of a ticket', (dialect) => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer(dialect, { startWorker: false });
  });
  afterAll(async () => {
    await server.close();
  });

  /** A webhook, and one ticket changed twice: versions 1 (due), 2 and 3 (held). */
  async function ticketWithThreeDeliveries(name: string): Promise<string> {
    const webhook = await server.request('POST', '/webhooks', { body: { webhook: { name, targetUrl: 'https://receiver.example/hook', events: ['ticket.created', 'ticket.updated'] } } });
    expect(webhook.status).toBe(201);
    const ticket = await server.request('POST', '/tickets', { body: { ticket: { subject: name } } });
    for (const n of [1, 2]) expect((await server.request('PUT', `/tickets/${ticket.body.ticket.id}`, { body: { ticket: { customFields: { n } } } })).status).toBe(200);
    return webhook.body.webhook.id as string;
  }

  async function rows(webhookId: string) {
    const { db } = server.runtime.database;
    return (await db.selectFrom('deliveries').select(['id', 'held', 'status', 'leased_by', 'lease_expires_at']).where('webhook_id', '=', webhookId).orderBy('seq').execute()).map((row) => ({ ...row, held: Number(row.held) }));
  }

  async function claimFirst(): Promise<ClaimedDelivery> {
    const now = new Date().toISOString();
    const [claimed] = await claimDueDeliveries(server.runtime.database.db, server.runtime.database.capabilities, { workerId: WORKER, now, leaseExpiresAt: new Date(Date.now() + 60_000).toISOString(), limit: 1, skipWebhookIds: [] });
    expect(claimed).toBeDefined();
    return claimed!;
  }

  function succeeded(delivery: ClaimedDelivery): AttemptRecord {
    const now = new Date().toISOString();
    return {
      workerId: WORKER,
      deliveryId: delivery.id,
      attempt: { attempted_at: now, status_code: 204, duration_ms: 3, error: null, error_message: null, response_headers: null, response_body: null },
      outcome: { kind: 'succeeded' },
      now,
      claimed: { status: delivery.status, dueAt: delivery.nextAttemptAt },
    };
  }

  it('leases the released delivery to the recording worker and returns it with its payload, keyed by the one that finished', async () => {
    const webhookId = await ticketWithThreeDeliveries('handed over');
    const [v1, v2, v3] = await rows(webhookId);
    const first = await claimFirst();
    expect(first.id).toBe(v1!.id);
    const leaseExpiresAt = new Date(Date.now() + 60_000).toISOString();
    const { db, capabilities } = server.runtime.database;
    const { next } = await db.transaction().execute((trx) => recordAttempts(trx, capabilities, [succeeded(first)], { workerId: WORKER, leaseExpiresAt }));

    expect([...next.keys()]).toEqual([v1!.id]);
    const handed = next.get(v1!.id)!;
    expect(handed).toMatchObject({ id: v2!.id, webhookId, eventType: 'ticket.updated', status: 'pending', expedited: false });
    expect(JSON.parse(handed.payload).data.ticket.version).toBe(2);
    expect(await rows(webhookId)).toEqual([
      { ...v1, status: 'succeeded', leased_by: null, lease_expires_at: null },
      { ...v2, held: 0, leased_by: WORKER, lease_expires_at: leaseExpiresAt },
      v3,
    ]);
    // Leased: no claim takes it while the lease runs, and the third stays held behind it.
    const now = new Date().toISOString();
    expect(await claimDueDeliveries(db, capabilities, { workerId: 'wrk_other', now, leaseExpiresAt, limit: 10, skipWebhookIds: [] })).toEqual([]);

    // Its own record hands over the third in turn; the last hands over nothing.
    const { next: third } = await db.transaction().execute((trx) => recordAttempts(trx, capabilities, [succeeded(handed)], { workerId: WORKER, leaseExpiresAt }));
    expect(third.get(v2!.id)?.id).toBe(v3!.id);
    const { next: none } = await db.transaction().execute((trx) => recordAttempts(trx, capabilities, [succeeded(third.get(v2!.id)!)], { workerId: WORKER, leaseExpiresAt }));
    expect(none.size).toBe(0);
    expect((await rows(webhookId)).map((row) => row.status)).toEqual(['succeeded', 'succeeded', 'succeeded']);
    // Gone, so that the next test's tickets make no deliveries to it.
    expect((await server.request('DELETE', `/webhooks/${webhookId}`)).status).toBe(204);
  });

  it('without a hand-over, releases the next delivery to any worker', async () => {
    const webhookId = await ticketWithThreeDeliveries('released');
    const [v1, v2, v3] = await rows(webhookId);
    const first = await claimFirst();
    expect(first.id).toBe(v1!.id);
    const { db, capabilities } = server.runtime.database;
    const { next } = await db.transaction().execute((trx) => recordAttempts(trx, capabilities, [succeeded(first)], null));
    expect(next.size).toBe(0);
    expect(await rows(webhookId)).toEqual([{ ...v1, status: 'succeeded', leased_by: null, lease_expires_at: null }, { ...v2, held: 0 }, v3]);
    expect((await claimFirst()).id).toBe(v2!.id);
  });
});
