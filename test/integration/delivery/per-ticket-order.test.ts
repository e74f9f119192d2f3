/**
 * docs/delivery.md, "Order": the deliveries of one ticket to one webhook are attempted in the
 * order of the changes; a later one is held while an earlier one is pending, and released when it
 * succeeds or fails for good; other tickets are never held; an admin's redelivery goes out at
 * once. Read from a real HTTPS receiver, which logs every attempt it gets.
 */
import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { sql } from 'kysely';
import { lockTicketDeliveries } from '../../../src/delivery/deliveries.repository.js';
import { describeEachDialect } from '../../helpers/dialects.js';
import { startReceiver, type ReceivedRequest, type Receiver, type Reply } from '../../helpers/receiver.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import { waitFor } from '../../helpers/wait.js';

interface Attempt {
  ticketId: string;
  version: number;
  event: string;
  deliveryId: string;
  answered: number;
}

function attemptOf(request: ReceivedRequest, answered: number): Attempt {
  const payload = JSON.parse(request.body) as { event: string; data: { ticket: { id: string; version: number } } };
  return { ticketId: payload.data.ticket.id, version: payload.data.ticket.version, event: payload.event, deliveryId: request.headers['webhook-id']!, answered };
}

describeEachDialect('per-ticket order', (dialect) => {
  let server: TestServer;
  let receiver: Receiver;

  beforeAll(async () => {
    // Retries come quickly, and there are enough of them that no delivery here fails for good.
    server = await startTestServer(dialect, { env: { HELPDESK_RETRY_SCHEDULE: '0.02,0.05,0.1,0.1,0.1,0.1,0.1,0.1' } });
  });
  afterAll(async () => {
    await server.close();
  });
  afterEach(async () => {
    await receiver?.close();
  });

  /** A receiver that logs every attempt it gets (ticket, version) and answers as `reply` says. */
  async function attemptLog(reply: (attempt: Attempt) => Reply): Promise<Attempt[]> {
    const attempts: Attempt[] = [];
    receiver = await startReceiver({
      responder: (request) => {
        const attempt = attemptOf(request, 0);
        attempts.push(attempt);
        return reply(attempt);
      },
    });
    return attempts;
  }

  async function subscribe(events = ['ticket.created', 'ticket.updated']): Promise<string> {
    const response = await server.request('POST', '/webhooks', { body: { webhook: { name: 'sync', targetUrl: receiver.url(), events } } });
    expect(response.status).toBe(201);
    return response.body.webhook.id as string;
  }

  async function createTicket(subject: string): Promise<string> {
    const response = await server.request('POST', '/tickets', { body: { ticket: { subject } } });
    expect(response.status).toBe(201);
    return response.body.ticket.id as string;
  }

  async function change(ticketId: string, n: number): Promise<number> {
    const response = await server.request('PUT', `/tickets/${ticketId}`, { body: { ticket: { customFields: { [`change${n}`]: n } } } });
    expect(response.status, JSON.stringify(response.body)).toBe(200);
    return response.body.ticket.version as number;
  }

  it('lands every ticket as versions 1..N in order, with no gap, while the receiver refuses 15% of first attempts', async () => {
    const attempts: Attempt[] = [];
    const seen = new Set<string>();
    receiver = await startReceiver({
      responder: (request) => {
        const id = request.headers['webhook-id']!;
        const first = !seen.has(id);
        seen.add(id);
        // About 15% of deliveries, chosen by their id: refused at their first attempt only.
        const refuse = first && createHash('sha256').update(id).digest()[0]! < 0.15 * 256;
        const status = refuse ? 500 : 204;
        attempts.push(attemptOf(request, status));
        return { status };
      },
    });
    await subscribe();
    const TICKETS = 20;
    const CHANGES_PER_TICKET = 12;
    const tickets = await Promise.all(Array.from({ length: TICKETS }, (_, i) => createTicket(`ticket ${i}`)));
    // 240 changes at once, twelve per ticket, interleaved.
    const versions = await Promise.all(Array.from({ length: TICKETS * CHANGES_PER_TICKET }, (_, i) => change(tickets[i % TICKETS]!, i)));
    expect(Math.max(...versions)).toBe(CHANGES_PER_TICKET + 1);

    const expected = TICKETS * (CHANGES_PER_TICKET + 1);
    await waitFor('every version delivered', () => attempts.filter((a) => a.answered === 204).length >= expected, 60_000);
    expect(attempts.some((a) => a.answered === 500), 'some first attempts were refused').toBe(true);
    for (const ticketId of tickets) {
      const mine = attempts.filter((a) => a.ticketId === ticketId);
      const delivered = mine.filter((a) => a.answered === 204).map((a) => a.version);
      expect(delivered, `versions of ${ticketId} as delivered`).toEqual(Array.from({ length: CHANGES_PER_TICKET + 1 }, (_, i) => i + 1));
      // Not even an attempt of a later version while an earlier one was pending: the attempted
      // versions never go down (a retry repeats the version it is stuck on).
      const attempted = mine.map((a) => a.version);
      expect(attempted, `versions of ${ticketId} as attempted`).toEqual([...attempted].sort((a, b) => a - b));
    }
    expect(attempts.filter((a) => a.answered === 204)).toHaveLength(expected);
  });

  it('holds a ticket behind its failing delivery, not even attempting its later versions, while another ticket on the webhook flows', async () => {
    let heldResponse: ServerResponse | null = null;
    let refusals = 0;
    let blocked = '';
    const attempts = await attemptLog((attempt): Reply => {
      if (attempt.ticketId === blocked && attempt.version === 3) {
        refusals += 1;
        // The first attempt hangs until the test lets it go (then it is refused), so that the
        // ticket is held for as long as the test needs; then two more refusals.
        if (refusals === 1) return { takeOver: (response) => (heldResponse = response) };
        if (refusals <= 3) return { status: 500 };
      }
      return { status: 204 };
    });
    const webhookId = await subscribe();
    const stuck = await createTicket('stuck');
    const flowing = await createTicket('flowing');
    await receiver.waitForRequests(2);
    blocked = stuck;

    expect(await change(stuck, 1)).toBe(2);
    expect(await change(stuck, 2)).toBe(3);
    await waitFor('the stuck ticket\'s version 3 in flight', () => heldResponse !== null);
    expect(await change(stuck, 3)).toBe(4);
    expect(await change(stuck, 4)).toBe(5);
    for (let n = 1; n <= 4; n += 1) await change(flowing, n);
    await waitFor('the other ticket flowing to version 5', () => attempts.some((a) => a.ticketId === flowing && a.version === 5));

    // Versions 4 and 5 of the stuck ticket are held: pending, with no next attempt.
    const log = await server.request('GET', `/webhooks/${webhookId}/deliveries?status=pending`);
    expect(log.status).toBe(200);
    const pending = log.body.deliveries as { nextAttemptAt: string | null; attemptCount: number }[];
    expect(pending.filter((d) => d.nextAttemptAt === null && d.attemptCount === 0)).toHaveLength(2);
    expect(attempts.filter((a) => a.ticketId === stuck).map((a) => a.version)).toEqual([1, 2, 3]);

    heldResponse!.writeHead(500).end();
    await waitFor('the stuck ticket delivered to version 5', () => attempts.some((a) => a.ticketId === stuck && a.version === 5));
    expect(attempts.filter((a) => a.ticketId === stuck).map((a) => a.version)).toEqual([1, 2, 3, 3, 3, 3, 4, 5]);
    expect(attempts.filter((a) => a.ticketId === flowing).map((a) => a.version)).toEqual([1, 2, 3, 4, 5]);
  });

  it('sends a redelivery of a held delivery at once, outside the order', async () => {
    let heldResponse: ServerResponse | null = null;
    let blocked = '';
    const attempts = await attemptLog((attempt): Reply => {
      if (attempt.ticketId === blocked && attempt.version === 2 && heldResponse === null) return { takeOver: (response) => (heldResponse = response) };
      return { status: 204 };
    });
    const webhookId = await subscribe();
    const ticket = await createTicket('held');
    await receiver.waitForRequests(1);
    blocked = ticket;
    await change(ticket, 1);
    await waitFor('version 2 in flight', () => heldResponse !== null);
    await change(ticket, 2);
    await change(ticket, 3);
    const held = await server.runtime.database.db
      .selectFrom('deliveries')
      .select(['id', 'held'])
      .where('webhook_id', '=', webhookId)
      .where('ticket_id', '=', ticket)
      .orderBy('seq')
      .execute();
    expect(held.map((row) => Number(row.held))).toEqual([0, 0, 1, 1]);

    // Version 4 redelivered by hand goes out while version 2 is still in flight.
    const redelivered = await server.request('POST', `/webhooks/${webhookId}/deliveries/${held[3]!.id}/redeliver`);
    expect(redelivered.status).toBe(202);
    await waitFor('version 4 redelivered', () => attempts.some((a) => a.version === 4));
    expect(attempts.map((a) => a.version)).toEqual([1, 2, 4]);

    heldResponse!.writeHead(204).end();
    await waitFor('version 3 released', () => attempts.some((a) => a.version === 3));
    await waitFor('nothing pending', async () => (await server.request('GET', `/webhooks/${webhookId}/deliveries?status=pending`)).body.deliveries.length === 0);
    expect(attempts.map((a) => a.version)).toEqual([1, 2, 4, 3]);
  });

  // A release leases the next delivery of a ticket to the worker that finished the one before;
  // a redelivery of that delivery committed in between would let a claim take it too, and it
  // would be sent twice. Both run under the ticket's named lock (PostgreSQL's advisory lock;
  // SQLite runs one writing transaction at a time anyway).
  it.skipIf(dialect !== 'postgres')("takes the ticket's lock for a redelivery, as the release of its ticket's deliveries does", async () => {
    // Alone on the server: no other webhook's delivery of the ticket may finish (and wait for
    // the ticket's lock) while this test holds it.
    for (const other of (await server.request('GET', '/webhooks?limit=100')).body.webhooks as { id: string }[]) {
      expect((await server.request('DELETE', `/webhooks/${other.id}`)).status).toBe(204);
    }
    await attemptLog(() => ({ status: 204 }));
    const webhookId = await subscribe();
    const ticket = await createTicket('locked');
    await receiver.waitForRequests(1);
    const { db, capabilities } = server.runtime.database;
    await waitFor('the delivery to be recorded', async () => (await db.selectFrom('deliveries').select('status').where('webhook_id', '=', webhookId).executeTakeFirst())?.status === 'succeeded');
    const [delivery] = await db.selectFrom('deliveries').select('id').where('webhook_id', '=', webhookId).where('ticket_id', '=', ticket).execute();

    let answered: number | null = null;
    await db.transaction().execute(async (trx) => {
      await lockTicketDeliveries(trx, capabilities, [ticket]);
      const redelivery = server.request('POST', `/webhooks/${webhookId}/deliveries/${delivery!.id}/redeliver`).then((response) => (answered = response.status));
      await waitFor('the redelivery to wait for the advisory lock', async () => {
        const { rows } = await sql<{ waiting: number }>`select count(*)::int as waiting from pg_stat_activity where wait_event_type = 'Lock' and wait_event = 'advisory' and datname = current_database()`.execute(db);
        return rows[0]!.waiting === 1;
      });
      expect(answered).toBeNull();
      void redelivery;
    });
    await waitFor('the redelivery to be answered once the lock is let go', () => answered !== null);
    expect(answered).toBe(202);
    await waitFor('the redelivery to be sent', () => receiver.requests.length === 2);
  });

  it('fails held deliveries with the rest when the webhook is deactivated, and recovers them', async () => {
    let heldResponse: ServerResponse | null = null;
    const attempts = await attemptLog((attempt): Reply => {
      if (attempt.version === 1 && heldResponse === null) return { takeOver: (response) => (heldResponse = response) };
      return { status: 204 };
    });
    const webhookId = await subscribe();
    const since = new Date(Date.now() - 1000).toISOString();
    const ticket = await createTicket('deactivated');
    await waitFor('version 1 in flight', () => heldResponse !== null);
    await change(ticket, 1);
    await change(ticket, 2);
    const before = await server.runtime.database.db.selectFrom('deliveries').select(['held']).where('webhook_id', '=', webhookId).orderBy('seq').execute();
    expect(before.map((row) => Number(row.held))).toEqual([0, 1, 1]);
    expect((await server.request('PUT', `/webhooks/${webhookId}`, { body: { webhook: { active: false } } })).status).toBe(200);
    // Held deliveries are failed with the others: nothing is left waiting on an inactive webhook.
    const after = await server.runtime.database.db.selectFrom('deliveries').select(['held', 'status']).where('webhook_id', '=', webhookId).orderBy('seq').execute();
    expect(after).toEqual([
      { held: 0, status: 'failed' },
      { held: 0, status: 'failed' },
      { held: 0, status: 'failed' },
    ]);
    heldResponse!.writeHead(204).end();

    expect((await server.request('PUT', `/webhooks/${webhookId}`, { body: { webhook: { active: true } } })).status).toBe(200);
    const recovered = await server.request('POST', `/webhooks/${webhookId}/recover`, { body: { since } });
    expect(recovered.status).toBe(202);
    expect(recovered.body.recovered).toBeGreaterThanOrEqual(2);
    await waitFor('versions 2 and 3 recovered', () => [2, 3].every((v) => attempts.some((a) => a.version === v)));
    await waitFor('nothing pending', async () => (await server.request('GET', `/webhooks/${webhookId}/deliveries?status=pending`)).body.deliveries.length === 0);
  });
});
