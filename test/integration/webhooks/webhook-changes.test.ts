/**
 * What changing a webhook does to its deliveries (docs/delivery.md, "Webhook changes and
 * deliveries"): deactivating fails its pending deliveries and queues no more, another change
 * leaves them pending, deleting it deletes them, and nobody else's deliveries move.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachDialect } from '../../helpers/dialects.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';

const ALL_EVENTS = ['ticket.created', 'ticket.updated', 'ticket.deleted', 'ticket.assignment.changed', 'ticket.resolved'];

async function create(server: TestServer, extra: Record<string, unknown>): Promise<{ id: string }> {
  const response = await server.request('POST', '/webhooks', { body: { webhook: { name: 'My Integration', ...extra } } });
  expect(response.status, JSON.stringify(response.body)).toBe(201);
  return response.body.webhook as { id: string };
}

describeEachDialect('deliveries of a deactivated or deleted webhook', (dialect) => {
  let server: TestServer;
  beforeAll(async () => {
    // No worker: deliveries stay pending, so the test sees exactly what the API did to them.
    server = await startTestServer(dialect, { startWorker: false });
  });
  afterAll(async () => {
    await server.close();
  });

  async function deliveriesOf(webhookId: string) {
    return server.runtime.database.db.selectFrom('deliveries').selectAll().where('webhook_id', '=', webhookId).orderBy('seq').execute();
  }

  async function createTicket(subject: string): Promise<string> {
    const response = await server.request('POST', '/tickets', { body: { ticket: { subject } } });
    expect(response.status).toBe(201);
    return response.body.ticket.id as string;
  }

  it('PUT {active: false} fails the pending deliveries of that webhook only', async () => {
    const doomed = await create(server, { targetUrl: 'https://127.0.0.1:1/', events: ALL_EVENTS });
    const bystander = await create(server, { targetUrl: 'https://127.0.0.1:1/', events: ['ticket.created'] });
    const ticketId = await createTicket('one');
    await createTicket('two');
    expect((await server.request('PUT', `/tickets/${ticketId}`, { body: { ticket: { priority: 'high' } } })).status).toBe(200);

    const pending = await deliveriesOf(doomed.id);
    expect(pending.map((d) => d.event_type)).toEqual(['ticket.created', 'ticket.created', 'ticket.updated']);
    expect(pending.every((d) => d.status === 'pending')).toBe(true);
    // The update waits behind the creation of its ticket (held: no next attempt until released).
    expect(pending.map((d) => d.next_attempt_at !== null)).toEqual([true, true, false]);
    // One delivery already succeeded stays succeeded: only pending ones are failed.
    await server.runtime.database.db.updateTable('deliveries').set({ status: 'succeeded', next_attempt_at: null }).where('id', '=', pending[0]!.id).execute();

    const response = await server.request('PUT', `/webhooks/${doomed.id}`, { body: { webhook: { active: false } } });
    expect(response.status).toBe(200);
    expect(response.body.webhook.active).toBe(false);

    const after = await deliveriesOf(doomed.id);
    expect(after.map((d) => d.status)).toEqual(['succeeded', 'failed', 'failed']);
    expect(after.every((d) => d.next_attempt_at === null)).toBe(true);
    // Failed without another attempt.
    expect(after.map((d) => d.attempt_count)).toEqual(pending.map((d) => d.attempt_count));
    const others = await deliveriesOf(bystander.id);
    expect(others).toHaveLength(2);
    expect(others.every((d) => d.status === 'pending')).toBe(true);

    // Inactive: later events are not queued for it.
    await createTicket('three');
    expect(await deliveriesOf(doomed.id)).toHaveLength(3);
    expect(await deliveriesOf(bystander.id)).toHaveLength(3);
  });

  it('a PUT that changes something else leaves pending deliveries pending', async () => {
    const webhook = await create(server, { targetUrl: 'https://127.0.0.1:1/', events: ['ticket.created'] });
    await createTicket('stays pending');
    const response = await server.request('PUT', `/webhooks/${webhook.id}`, { body: { webhook: { name: 'renamed', targetUrl: 'https://127.0.0.1:2/', active: true } } });
    expect(response.status).toBe(200);
    const rows = await deliveriesOf(webhook.id);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.status).toBe('pending');
  });

  it('deleting a webhook deletes its deliveries and no one else\'s', async () => {
    const doomed = await create(server, { targetUrl: 'https://127.0.0.1:1/', events: ['ticket.created', 'ticket.deleted'] });
    const bystander = await create(server, { targetUrl: 'https://127.0.0.1:1/', events: ['ticket.created'] });
    const ticketId = await createTicket('to be deleted');
    expect((await server.request('DELETE', `/tickets/${ticketId}`)).status).toBe(204);
    expect(await deliveriesOf(doomed.id)).toHaveLength(2);
    const bystanderBefore = await deliveriesOf(bystander.id);
    expect(bystanderBefore).toHaveLength(1);

    expect((await server.request('DELETE', `/webhooks/${doomed.id}`)).status).toBe(204);
    expect(await deliveriesOf(doomed.id)).toEqual([]);
    expect(await deliveriesOf(bystander.id)).toEqual(bystanderBefore);
    // New events go nowhere near the deleted webhook.
    await createTicket('after the delete');
    expect(await deliveriesOf(doomed.id)).toEqual([]);
  });
});
