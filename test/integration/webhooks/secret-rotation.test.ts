/**
 * Signing-secret rotation (docs/api.md, "Rotating the signing secret"): while a previous secret is live every delivery carries a
 * signature for it beside the new one, so receivers verifying with either (through a standard
 * Standard Webhooks library) keep accepting deliveries; at most 10 secrets are live.
 */
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { describeEachDialect } from '../../helpers/dialects.js';
import { startReceiver, type Receiver, type ReceivedRequest } from '../../helpers/receiver.js';
import { SecretBox } from '../../../src/secrets/secret-box.js';
import { SECRET_KEY, startTestServer, type ApiResponse, type TestServer } from '../../helpers/server.js';
import { waitFor } from '../../helpers/wait.js';
import { verifies } from '../../helpers/signatures.js';

const SECRET = /^whsec_[A-Za-z0-9+/]{43}=$/;
const WEEK_SECONDS = 604_800;

function signatures(request: ReceivedRequest): string[] {
  return request.headers['webhook-signature']!.split(' ');
}

describeEachDialect('signing secret rotation', (dialect) => {
  let server: TestServer;
  let receiver: Receiver;
  let agentKey: string;
  let webhookIds: string[] = [];

  beforeAll(async () => {
    server = await startTestServer(dialect);
    receiver = await startReceiver();
    agentKey = (await server.keyFor('agent')).key;
  });
  afterAll(async () => {
    await server.close();
    await receiver.close();
  });
  afterEach(async () => {
    for (const id of webhookIds) await server.request('DELETE', `/webhooks/${id}`);
    webhookIds = [];
  });

  async function subscribe(): Promise<{ id: string; signingSecret: string; updatedAt: string }> {
    const response = await server.request('POST', '/webhooks', { body: { webhook: { name: 'rotating', targetUrl: receiver.url(), events: ['ticket.created'] } } });
    expect(response.status).toBe(201);
    webhookIds.push(response.body.webhook.id);
    return response.body.webhook;
  }

  async function rotate(webhookId: string, body?: unknown): Promise<ApiResponse> {
    return server.request('POST', `/webhooks/${webhookId}/rotate-secret`, body === undefined ? {} : { body });
  }

  async function rotated(webhookId: string, body?: unknown): Promise<string> {
    const response = await rotate(webhookId, body);
    expect(response.status, JSON.stringify(response.body)).toBe(200);
    return response.body.webhook.signingSecret;
  }

  /** The next delivery to this webhook: a test event, as the receiver got it. */
  async function nextDelivery(webhookId: string): Promise<ReceivedRequest> {
    const before = receiver.requests.length;
    const response = await server.request('POST', `/webhooks/${webhookId}/test`);
    expect(response.status).toBe(202);
    const requests = await receiver.waitForRequests(before + 1);
    const request = requests.find((r) => r.headers['webhook-id'] === response.body.delivery.id);
    expect(request).toBeDefined();
    return request!;
  }

  it('returns a new secret, and signs with the old and the new one until the old one expires', async () => {
    const webhook = await subscribe();
    const response = await rotate(webhook.id);
    expect(response.status, JSON.stringify(response.body)).toBe(200);
    const rotatedWebhook = response.body.webhook;
    expect(rotatedWebhook.signingSecret).toMatch(SECRET);
    expect(rotatedWebhook.signingSecret).not.toBe(webhook.signingSecret);
    expect(rotatedWebhook).toMatchObject({ id: webhook.id, active: true, targetUrl: receiver.url() });
    expect(rotatedWebhook.updatedAt > webhook.updatedAt).toBe(true);
    // The secret is shown in this response only.
    expect((await server.request('GET', `/webhooks/${webhook.id}`)).body.webhook.signingSecret).toBeUndefined();

    const request = await nextDelivery(webhook.id);
    const sigs = signatures(request);
    expect(sigs).toHaveLength(2);
    for (const sig of sigs) expect(sig).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
    expect(verifies(rotatedWebhook.signingSecret, request)).toBe(true);
    expect(verifies(webhook.signingSecret, request)).toBe(true);

    // Ticket events too, not only the test event.
    const before = receiver.requests.length;
    await server.request('POST', '/tickets', { body: { ticket: { subject: 'signed twice' } } });
    const [ticketEvent] = (await receiver.waitForRequests(before + 1)).slice(before);
    expect(signatures(ticketEvent!)).toHaveLength(2);
    expect(verifies(rotatedWebhook.signingSecret, ticketEvent!)).toBe(true);
    expect(verifies(webhook.signingSecret, ticketEvent!)).toBe(true);
    expect(verifies('whsec_' + Buffer.alloc(32, 7).toString('base64'), ticketEvent!)).toBe(false);

    // The old secret is kept for a day by default.
    const kept = await server.runtime.database.db.selectFrom('webhook_secrets').select(['secret', 'expires_at']).where('webhook_id', '=', webhook.id).execute();
    // Sealed at rest: only the server's key opens it.
    expect(kept.map((k) => new SecretBox(Buffer.from(SECRET_KEY, 'base64')).open(k.secret, webhook.id))).toEqual([webhook.signingSecret]);
    const expiresIn = Date.parse(kept[0]!.expires_at) - Date.parse(rotatedWebhook.updatedAt);
    expect(Math.abs(expiresIn - 86_400_000)).toBeLessThan(5_000);

    // Once it has expired, only the new secret signs.
    await server.runtime.database.db
      .updateTable('webhook_secrets')
      .set({ expires_at: new Date(Date.now() - 1000).toISOString() })
      .where('webhook_id', '=', webhook.id)
      .execute();
    const later = await nextDelivery(webhook.id);
    expect(signatures(later)).toHaveLength(1);
    expect(verifies(rotatedWebhook.signingSecret, later)).toBe(true);
    expect(verifies(webhook.signingSecret, later)).toBe(false);
  });

  it('drops the current secret at once with expireCurrentInSeconds 0', async () => {
    const webhook = await subscribe();
    const next = await rotated(webhook.id, { expireCurrentInSeconds: 0 });
    const request = await nextDelivery(webhook.id);
    expect(signatures(request)).toHaveLength(1);
    expect(verifies(next, request)).toBe(true);
    expect(verifies(webhook.signingSecret, request)).toBe(false);
  });

  it('keeps the old secret for the time asked, up to a week', async () => {
    const webhook = await subscribe();
    const nowish = Date.now();
    const next = await rotated(webhook.id, { expireCurrentInSeconds: WEEK_SECONDS });
    const [kept] = await server.runtime.database.db.selectFrom('webhook_secrets').select('expires_at').where('webhook_id', '=', webhook.id).execute();
    expect(Math.abs(Date.parse(kept!.expires_at) - (nowish + WEEK_SECONDS * 1000))).toBeLessThan(5_000);
    const request = await nextDelivery(webhook.id);
    expect([verifies(webhook.signingSecret, request), verifies(next, request)]).toEqual([true, true]);
  });

  it('signs a redelivery with the secrets live at the time of the attempt, under the same webhook-id', async () => {
    const webhook = await subscribe();
    const first = await nextDelivery(webhook.id);
    expect(verifies(webhook.signingSecret, first)).toBe(true);
    // Redeliver once the first attempt is recorded, so that the second request is the redelivery.
    await waitFor('the first attempt to be recorded', async () => {
      const response = await server.request('GET', `/webhooks/${webhook.id}/deliveries/${first.headers['webhook-id']}`);
      return response.body.delivery.status === 'succeeded';
    });
    const next = await rotated(webhook.id, { expireCurrentInSeconds: 0 });
    const before = receiver.requests.length;
    const redeliver = await server.request('POST', `/webhooks/${webhook.id}/deliveries/${first.headers['webhook-id']}/redeliver`);
    expect(redeliver.status).toBe(202);
    const [again] = (await receiver.waitForRequests(before + 1)).slice(before);
    expect(again!.headers['webhook-id']).toBe(first.headers['webhook-id']);
    expect(again!.body).toBe(first.body);
    expect(verifies(next, again!)).toBe(true);
    expect(verifies(webhook.signingSecret, again!)).toBe(false);
  });

  it('lets each older secret keep its own expiry', async () => {
    const webhook = await subscribe();
    const s1 = await rotated(webhook.id, { expireCurrentInSeconds: 3600 }); // the original stays an hour
    const s2 = await rotated(webhook.id, { expireCurrentInSeconds: 0 }); // s1 goes at once
    const request = await nextDelivery(webhook.id);
    expect(signatures(request)).toHaveLength(2);
    expect(verifies(s2, request)).toBe(true);
    expect(verifies(webhook.signingSecret, request)).toBe(true);
    expect(verifies(s1, request)).toBe(false);
  });

  it('keeps at most 10 live secrets: twelve rotations leave the ten newest', async () => {
    const webhook = await subscribe();
    const secrets = [webhook.signingSecret];
    // About a week each; a second less for each older one, so that two rotations within one
    // millisecond cannot tie and the oldest is always the closest to expiry.
    for (let i = 0; i < 12; i += 1) secrets.push(await rotated(webhook.id, { expireCurrentInSeconds: WEEK_SECONDS - 12 + i }));
    expect(new Set(secrets).size).toBe(13);
    const request = await nextDelivery(webhook.id);
    expect(signatures(request)).toHaveLength(10);
    // The current secret and the nine newest previous ones: the oldest three are gone.
    expect(secrets.map((secret) => verifies(secret, request))).toEqual([false, false, false, ...Array(10).fill(true)]);
  });

  it('drops the live secret closest to expiry when an eleventh would be live', async () => {
    const webhook = await subscribe();
    // The original lives a week; the next nine an hour and a bit, the earlier ones shorter.
    const secrets = [webhook.signingSecret, await rotated(webhook.id, { expireCurrentInSeconds: WEEK_SECONDS })];
    for (let i = 0; i < 9; i += 1) secrets.push(await rotated(webhook.id, { expireCurrentInSeconds: 3600 + i * 60 }));
    // The tenth rotation would have made eleven live: secrets[1] (3600 s, the closest to expiry)
    // went, not the original, which is older but lives longer. secrets[10] is current.
    let request = await nextDelivery(webhook.id);
    expect(signatures(request)).toHaveLength(10);
    expect(secrets.map((secret) => verifies(secret, request))).toEqual(Array(11).fill(true).fill(false, 1, 2));
    // Another: now secrets[2] (3660 s) is the closest to expiry.
    secrets.push(await rotated(webhook.id, { expireCurrentInSeconds: 7200 }));
    request = await nextDelivery(webhook.id);
    expect(signatures(request)).toHaveLength(10);
    expect(secrets.map((secret) => verifies(secret, request))).toEqual([true, false, false, ...Array(9).fill(true)]);
  });

  it('accepts no body or an empty object, and refuses an expiry out of range or of the wrong type', async () => {
    const webhook = await subscribe();
    expect(await rotated(webhook.id)).toMatch(SECRET);
    expect(await rotated(webhook.id, {})).toMatch(SECRET);
    expect(await rotated(webhook.id, { expireCurrentInSeconds: WEEK_SECONDS })).toMatch(SECRET);
    const before = await server.runtime.database.db.selectFrom('webhooks').select('signing_secret').where('id', '=', webhook.id).executeTakeFirstOrThrow();
    for (const body of [
      { expireCurrentInSeconds: WEEK_SECONDS + 1 },
      { expireCurrentInSeconds: -1 },
      { expireCurrentInSeconds: 'x' },
      { expireCurrentInSeconds: '60' },
      { expireCurrentInSeconds: 1.5 },
      { expireCurrentInSeconds: null },
      { expiresInSeconds: 60 },
    ]) {
      const response = await rotate(webhook.id, body);
      expect(response.status, `${JSON.stringify(body)}: ${JSON.stringify(response.body)}`).toBe(400);
      expect(response.body.error.code).toBe('validation_failed');
    }
    // A refused rotation changed nothing.
    const after = await server.runtime.database.db.selectFrom('webhooks').select('signing_secret').where('id', '=', webhook.id).executeTakeFirstOrThrow();
    expect(after.signing_secret).toBe(before.signing_secret);

    expect((await rotate('whk_nope')).status).toBe(404);
    const forbidden = await server.request('POST', `/webhooks/${webhook.id}/rotate-secret`, { key: agentKey });
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.error.code).toBe('forbidden');
  });
});
