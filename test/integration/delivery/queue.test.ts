/**
 * The delivery queue's claim protocol, on both databases: leases, take-over after a crash,
 * disjoint concurrent claims, queue order, graceful release.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { claimDueDeliveries, nextDueAt, releaseLeases } from '../../../src/delivery/deliveries.repository.js';
import { describeEachDialect } from '../../helpers/dialects.js';
import { startReceiver } from '../../helpers/receiver.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import { waitFor } from '../../helpers/wait.js';

const iso = (ms: number) => new Date(ms).toISOString();

describeEachDialect('delivery queue', (dialect) => {
  let server: TestServer;
  let webhookId: string;

  beforeAll(async () => {
    // No worker: the test drives the claims itself.
    server = await startTestServer(dialect, { startWorker: false });
    const webhook = await server.request('POST', '/webhooks', {
      body: { webhook: { name: 'queue', targetUrl: 'https://127.0.0.1:1/never', events: ['ticket.created', 'ticket.deleted'] } },
    });
    webhookId = webhook.body.webhook.id;
  });
  afterAll(async () => {
    await server.close();
  });

  async function pendingIds(): Promise<string[]> {
    const rows = await server.runtime.database.db
      .selectFrom('deliveries')
      .select('id')
      .where('webhook_id', '=', webhookId)
      .where('status', '=', 'pending')
      .orderBy('seq')
      .execute();
    return rows.map((r) => r.id);
  }

  function claim(workerId: string, now: number, limit = 100) {
    const { db, capabilities } = server.runtime.database;
    return claimDueDeliveries(db, capabilities, { workerId, now: iso(now), leaseExpiresAt: iso(now + 60_000), limit, skipWebhookIds: [] });
  }

  it('claims in queue order, holds the claim for its lease, and lets another worker take over after it expires', async () => {
    for (const subject of ['one', 'two', 'three']) await server.request('POST', '/tickets', { body: { ticket: { subject } } });
    const queued = await pendingIds();
    expect(queued).toHaveLength(3);
    const now = Date.now();

    const first = await claim('wrk_a', now);
    expect(first.map((d) => d.id)).toEqual(queued);
    expect(JSON.parse(first[0]!.payload)).toMatchObject({ event: 'ticket.created', data: { ticket: { subject: 'one' } } });

    expect(await claim('wrk_b', now + 1_000)).toEqual([]);
    // Worker a "crashed": once its lease is over, b gets the same deliveries, in the same order.
    const takenOver = await claim('wrk_b', now + 61_000);
    expect(takenOver.map((d) => d.id)).toEqual(queued);
    // All three are held: nothing is due for anyone else (an expired lease is left to the poll).
    expect(await nextDueAt(server.runtime.database.db)).toBeNull();

    await releaseLeases(server.runtime.database.db, 'wrk_a', queued); // not a's any more: no effect
    expect(await claim('wrk_c', now + 62_000)).toEqual([]);
    await releaseLeases(server.runtime.database.db, 'wrk_b', queued);
    expect(await nextDueAt(server.runtime.database.db)).not.toBeNull();
    expect((await claim('wrk_c', now + 62_000)).map((d) => d.id)).toEqual(queued);
  });

  it('gives concurrent claimers disjoint deliveries', async () => {
    for (let i = 0; i < 20; i += 1) await server.request('POST', '/tickets', { body: { ticket: { subject: `c${i}` } } });
    const later = Date.now() + 10 * 60_000; // past every earlier lease
    const claims = await Promise.all(['w1', 'w2', 'w3', 'w4'].map((w) => claim(w, later, 7)));
    const ids = claims.flat().map((d) => d.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.length).toBe(23);
  });

  it('claims around the webhooks it is told to skip, in queue order, and reads nothing when all are skipped', async () => {
    const { db, capabilities } = server.runtime.database;
    const other = await server.request('POST', '/webhooks', {
      body: { webhook: { name: 'other', targetUrl: 'https://127.0.0.1:2/never', events: ['ticket.updated'] } },
    });
    expect(other.status).toBe(201);
    const otherId: string = other.body.webhook.id;
    try {
      // Interleaved: each change queues a ticket.updated for the other webhook only.
      for (let i = 0; i < 3; i += 1) {
        const ticket = await server.request('POST', '/tickets', { body: { ticket: { subject: `skip ${i}` } } });
        await server.request('PUT', `/tickets/${ticket.body.ticket.id}`, { body: { ticket: { priority: 'high' } } });
      }
      const otherQueued = (
        await db.selectFrom('deliveries').select('id').where('webhook_id', '=', otherId).where('status', '=', 'pending').orderBy('seq').execute()
      ).map((r) => r.id);
      expect(otherQueued).toHaveLength(3);
      const later = Date.now() + 30 * 60_000; // past every earlier lease
      const request = { workerId: 'w', now: iso(later), leaseExpiresAt: iso(later + 60_000), limit: 2 };
      // Only the other webhook's rows, oldest first, up to the limit, then the rest.
      const first = await claimDueDeliveries(db, capabilities, { ...request, skipWebhookIds: [webhookId] });
      expect(first.map((d) => d.id)).toEqual(otherQueued.slice(0, 2));
      const second = await claimDueDeliveries(db, capabilities, { ...request, skipWebhookIds: [webhookId] });
      expect(second.map((d) => d.id)).toEqual(otherQueued.slice(2));
      await releaseLeases(db, 'w', otherQueued);
      expect(await claimDueDeliveries(db, capabilities, { ...request, skipWebhookIds: [webhookId, otherId] })).toEqual([]);
    } finally {
      await server.request('DELETE', `/webhooks/${otherId}`);
    }
  });

  it('skips webhooks whose host is saturated', async () => {
    const { db, capabilities } = server.runtime.database;
    const later = Date.now() + 20 * 60_000;
    const claimed = await claimDueDeliveries(db, capabilities, { workerId: 'w', now: iso(later), leaseExpiresAt: iso(later + 1), limit: 100, skipWebhookIds: [webhookId] });
    expect(claimed).toEqual([]);
  });
});

describeEachDialect('graceful shutdown', (dialect) => {
  it('releases the lease of an attempt still in flight when the grace period ends', async () => {
    const receiver = await startReceiver({ responder: () => ({ status: 200, hang: true }) });
    const server = await startTestServer(dialect, { env: { HELPDESK_DELIVERY_LEASE_SECONDS: '600' } });
    let closed = false;
    try {
      await server.request('POST', '/webhooks', { body: { webhook: { name: 'hangs', targetUrl: receiver.url(), events: ['ticket.created'] } } });
      await server.request('POST', '/tickets', { body: { ticket: { subject: 'in flight at shutdown' } } });
      await receiver.waitForRequests(1);
      const db = server.runtime.database.db;
      const leased = await waitFor('a leased delivery', async () =>
        db.selectFrom('deliveries').select(['id', 'leased_by']).where('leased_by', 'is not', null).executeTakeFirst(),
      );
      await server.runtime.worker.stop(100);
      const row = await db.selectFrom('deliveries').select(['status', 'leased_by', 'lease_expires_at']).where('id', '=', leased.id).executeTakeFirstOrThrow();
      expect(row).toEqual({ status: 'pending', leased_by: null, lease_expires_at: null });
      // The cut-off attempt is abandoned, not counted as a failure of the receiver.
      await waitFor('the abandoned attempt to settle', () => server.runtime.worker.inFlightCount === 0);
      const attempts = await db.selectFrom('attempts').select('id').where('delivery_id', '=', leased.id).execute();
      expect(attempts).toEqual([]);
      await server.close();
      closed = true;
    } finally {
      if (!closed) await server.close();
      await receiver.close();
    }
  });
});
