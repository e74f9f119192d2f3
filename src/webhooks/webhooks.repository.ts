import type { Capabilities } from '../db/capabilities.js';
import type { Db } from '../db/connection.js';
import type { WebhooksTable } from '../db/schema.js';
import { pageNewestFirst } from '../shared/keyset.js';
import type { Cursor } from '../shared/pagination.js';
import type { WebhookRecord } from './webhook.js';

function toRow(webhook: WebhookRecord): WebhooksTable {
  return {
    id: webhook.id,
    name: webhook.name,
    target_url: webhook.targetUrl,
    events: JSON.stringify(webhook.events),
    active: webhook.active ? 1 : 0,
    signing_secret: webhook.signingSecret,
    disabled_reason: webhook.disabledReason,
    disabled_at: webhook.disabledAt,
    created_at: webhook.createdAt,
    updated_at: webhook.updatedAt,
  };
}

function fromRow(row: WebhooksTable): WebhookRecord {
  return {
    id: row.id,
    name: row.name,
    targetUrl: row.target_url,
    events: JSON.parse(row.events) as WebhookRecord['events'],
    active: row.active === 1,
    signingSecret: row.signing_secret,
    disabledReason: row.disabled_reason as WebhookRecord['disabledReason'],
    disabledAt: row.disabled_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export async function insertWebhook(db: Db, webhook: WebhookRecord): Promise<void> {
  await db.insertInto('webhooks').values(toRow(webhook)).execute();
}

/** Reads a webhook for a partial update, holding its row lock until the transaction ends. */
export async function findWebhookForChange(db: Db, capabilities: Capabilities, id: string): Promise<WebhookRecord | undefined> {
  let query = db.selectFrom('webhooks').selectAll().where('id', '=', id);
  if (capabilities.rowLocks) query = query.forUpdate();
  const row = await query.executeTakeFirst();
  return row ? fromRow(row) : undefined;
}

export async function findWebhook(db: Db, id: string): Promise<WebhookRecord | undefined> {
  const row = await db.selectFrom('webhooks').selectAll().where('id', '=', id).executeTakeFirst();
  return row ? fromRow(row) : undefined;
}

export async function updateWebhook(db: Db, webhook: WebhookRecord): Promise<void> {
  const { id, created_at: _createdAt, ...changes } = toRow(webhook);
  await db.updateTable('webhooks').set(changes).where('id', '=', id).execute();
}

export async function deleteWebhook(db: Db, id: string): Promise<boolean> {
  const result = await db.deleteFrom('webhooks').where('id', '=', id).executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

export async function listWebhooks(db: Db, cursor: Cursor | null, limit: number): Promise<WebhookRecord[]> {
  return (await pageNewestFirst(db.selectFrom('webhooks').selectAll(), cursor, limit).execute()).map(fromRow);
}

/**
 * Active webhooks and what they subscribe to: the fan-out of the outbox. The share lock makes a
 * concurrent deactivation or deletion wait for the change being recorded, so it then sees (and
 * fails or deletes) the deliveries queued here, instead of leaving one pending for an inactive
 * webhook or breaking the change with a foreign-key error.
 */
export async function listActiveSubscriptions(db: Db, capabilities: Capabilities): Promise<{ id: string; events: string[] }[]> {
  let query = db.selectFrom('webhooks').select(['id', 'events']).where('active', '=', 1);
  if (capabilities.rowLocks) query = query.forShare();
  const rows = await query.execute();
  return rows.map((row) => ({ id: row.id, events: JSON.parse(row.events) as string[] }));
}

/** What the sender needs to sign and address one delivery. */
export async function findDeliveryTarget(
  db: Db,
  id: string,
): Promise<{ targetUrl: string; signingSecrets: string[]; active: boolean } | undefined> {
  const row = await db.selectFrom('webhooks').select(['target_url', 'signing_secret', 'active']).where('id', '=', id).executeTakeFirst();
  return row ? { targetUrl: row.target_url, signingSecrets: [row.signing_secret], active: row.active === 1 } : undefined;
}
