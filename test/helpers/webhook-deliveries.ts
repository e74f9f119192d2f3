/**
 * A webhook's delivery log through the API, for tests that create tickets and wait for what their
 * deliveries became. `D` is the shape of a delivery the test reads (the log's own fields).
 */
import { expect } from 'vitest';
import type { TestServer } from './server.js';
import { waitFor } from './wait.js';

export async function createTicket(server: TestServer, subject: string): Promise<{ id: string }> {
  const response = await server.request('POST', '/tickets', { body: { ticket: { subject } } });
  expect(response.status).toBe(201);
  return response.body.ticket;
}

/** The webhook's latest 100 deliveries, newest first. */
export async function deliveriesOf<D>(server: TestServer, webhookId: string): Promise<D[]> {
  const response = await server.request('GET', `/webhooks/${webhookId}/deliveries?limit=100`);
  expect(response.status).toBe(200);
  return response.body.deliveries;
}

/** Waits until `done` holds of the webhook's deliveries, and returns them. */
export async function settled<D>(server: TestServer, webhookId: string, what: string, done: (deliveries: D[]) => boolean): Promise<D[]> {
  return waitFor(what, async () => {
    const deliveries = await deliveriesOf<D>(server, webhookId);
    return done(deliveries) ? deliveries : null;
  });
}
