import type { Capabilities } from '../db/capabilities.js';
import type { DeliveryTarget, SubscriptionLock } from '../delivery/webhook-directory.js';
import { inList } from '../db/bound-rows.js';
import type { Db } from '../db/connection.js';
import type { WebhookSecretsTable, WebhooksTable } from '../db/schema.js';
import { pageNewestFirst } from '../db/keyset.js';
import type { Cursor } from '../shared/pagination.js';
import { SEALED_PREFIX, SecretBox } from '../secrets/secret-box.js';
import type { DisabledReason, WebhookRecord } from './webhook.js';
import { openHeaders, type HeaderSet } from './webhook-headers.js';

function toRow(webhook: WebhookRecord): WebhooksTable {
  return {
    id: webhook.id,
    name: webhook.name,
    target_url: webhook.targetUrl,
    events: JSON.stringify(webhook.events),
    active: webhook.active ? 1 : 0,
    signing_secret: webhook.sealedSigningSecret,
    disabled_reason: webhook.disabledReason,
    disabled_at: webhook.disabledAt,
    failing_since: webhook.failingSince,
    filter: webhook.filter === null ? null : JSON.stringify(webhook.filter),
    headers: JSON.stringify(webhook.sealedHeaders),
    rate_limit: webhook.rateLimit,
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
    sealedSigningSecret: row.signing_secret,
    disabledReason: row.disabled_reason as WebhookRecord['disabledReason'],
    disabledAt: row.disabled_at,
    failingSince: row.failing_since,
    filter: row.filter === null ? null : (JSON.parse(row.filter) as WebhookRecord['filter']),
    sealedHeaders: JSON.parse(row.headers) as WebhookRecord['sealedHeaders'],
    rateLimit: row.rate_limit,
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

/** Which of these webhooks exist. */
export async function existingWebhookIds(db: Db, capabilities: Capabilities, ids: readonly string[]): Promise<Set<string>> {
  const rows = await db.selectFrom('webhooks').select('id').where(inList(capabilities, 'id', ids)).execute();
  return new Set(rows.map((row) => row.id));
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
 * webhook or breaking the change with a foreign-key error. The rows are locked in id order, the
 * order the attempt recorder updates them in (webhook-health.ts): in any other order a change
 * and a batch of results on two webhooks could each wait for the other (a deadlock, found as a
 * 500 on PUT /tickets under load). The attempt recorder's operational events take key-share
 * locks instead (delivery/webhook-directory.ts, SubscriptionLock).
 */
export async function listActiveSubscriptions(db: Db, capabilities: Capabilities, lock: SubscriptionLock): Promise<{ id: string; events: string[]; filter: string | null }[]> {
  let query = db.selectFrom('webhooks').select(['id', 'events', 'filter']).where('active', '=', 1).orderBy('id');
  if (capabilities.rowLocks) query = lock === 'share' ? query.forShare() : query.forKeyShare();
  const rows = await query.execute();
  return rows.map((row) => ({ id: row.id, events: JSON.parse(row.events) as string[], filter: row.filter }));
}

export async function insertPreviousSecret(db: Db, row: WebhookSecretsTable): Promise<void> {
  await db.insertInto('webhook_secrets').values(row).execute();
}

/** Drops expired previous secrets, and the ones closest to expiry beyond `keep`. */
export async function prunePreviousSecrets(db: Db, webhookId: string, now: string, keep: number): Promise<void> {
  await db.deleteFrom('webhook_secrets').where('webhook_id', '=', webhookId).where('expires_at', '<=', now).execute();
  const live = await db
    .selectFrom('webhook_secrets')
    .select(['secret', 'expires_at'])
    .where('webhook_id', '=', webhookId)
    .orderBy('expires_at', 'desc')
    .execute();
  const dropped = live.slice(keep).map((row) => row.secret);
  if (dropped.length > 0) await db.deleteFrom('webhook_secrets').where('webhook_id', '=', webhookId).where('secret', 'in', dropped).execute();
}

/**
 * What the sender needs to sign and address the deliveries of a claim: one query for the
 * webhooks and one for their live previous secrets, whatever the size of the claim, with the
 * secrets opened. A webhook deleted meanwhile is absent from the map.
 */
export async function findDeliveryTargets(
  db: Db,
  capabilities: Capabilities,
  box: SecretBox,
  ids: readonly string[],
  now: string,
): Promise<Map<string, DeliveryTarget>> {
  const targets = new Map<string, DeliveryTarget>();
  if (ids.length === 0) return targets;
  const rows = await db.selectFrom('webhooks').select(['id', 'target_url', 'signing_secret', 'active', 'headers', 'rate_limit']).where(inList(capabilities, 'id', ids)).execute();
  for (const row of rows) {
    targets.set(row.id, {
      targetUrl: row.target_url,
      signingSecrets: [box.open(row.signing_secret, row.id)],
      active: row.active === 1,
      headers: openHeaders(box, row.id, JSON.parse(row.headers) as HeaderSet),
      rateLimit: row.rate_limit,
    });
  }
  const previous = await db
    .selectFrom('webhook_secrets')
    .select(['webhook_id', 'secret'])
    .where(inList(capabilities, 'webhook_id', ids))
    .where('expires_at', '>', now)
    .orderBy('expires_at', 'desc')
    .execute();
  for (const row of previous) targets.get(row.webhook_id)?.signingSecrets.push(box.open(row.secret, row.webhook_id));
  return targets;
}

/**
 * Seals the secrets a version before sealing stored in clear; returns how many. Each update
 * matches the clear text it read, so two processes starting together seal a secret once.
 */
export async function sealSecretsInClear(db: Db, box: SecretBox): Promise<number> {
  let sealed = 0;
  const current = await db.selectFrom('webhooks').select(['id', 'signing_secret']).execute();
  for (const row of current.filter((r) => !SecretBox.isSealed(r.signing_secret))) {
    const result = await db
      .updateTable('webhooks')
      .set({ signing_secret: box.seal(row.signing_secret, row.id) })
      .where('id', '=', row.id)
      .where('signing_secret', '=', row.signing_secret)
      .executeTakeFirst();
    sealed += Number(result.numUpdatedRows);
  }
  const previous = await db.selectFrom('webhook_secrets').select(['webhook_id', 'secret']).execute();
  for (const row of previous.filter((r) => !SecretBox.isSealed(r.secret))) {
    const result = await db
      .updateTable('webhook_secrets')
      .set({ secret: box.seal(row.secret, row.webhook_id) })
      .where('webhook_id', '=', row.webhook_id)
      .where('secret', '=', row.secret)
      .executeTakeFirst();
    sealed += Number(result.numUpdatedRows);
  }
  return sealed;
}

/** After a successful attempt: the webhook is healthy, the five-day count stops. */
export async function clearFailingSince(db: Db, id: string): Promise<void> {
  await db.updateTable('webhooks').set({ failing_since: null }).where('id', '=', id).where('failing_since', 'is not', null).execute();
}

/** After a failed attempt: starts the count if it is not running. */
export async function markFailing(db: Db, id: string, at: string): Promise<void> {
  await db.updateTable('webhooks').set({ failing_since: at }).where('id', '=', id).where('failing_since', 'is', null).execute();
}

/**
 * Automatic deactivation; the webhook's name and target (for `webhook.disabled`), or undefined
 * if it did not happen. For `failing`, the condition is checked in the update itself (still
 * failing since at least `failingSince`), so a success or a reactivation committed a moment
 * earlier is never overruled by a stale read.
 */
export async function disableWebhook(db: Db, id: string, reason: DisabledReason, at: string, failingSinceAtMost?: string): Promise<{ name: string; targetUrl: string } | undefined> {
  let update = db
    .updateTable('webhooks')
    .set({ active: 0, disabled_reason: reason, disabled_at: at, updated_at: at })
    .where('id', '=', id)
    .where('active', '=', 1);
  if (failingSinceAtMost !== undefined) update = update.where('failing_since', 'is not', null).where('failing_since', '<=', failingSinceAtMost);
  const row = await update.returning(['name', 'target_url']).executeTakeFirst();
  return row === undefined ? undefined : { name: row.name, targetUrl: row.target_url };
}

/** What a webhook holds sealed: its current signing secret and its header values (JSON). */
export interface SealedWebhookValues {
  id: string;
  signing_secret: string;
  headers: string;
}

/**
 * The webhooks with a signing secret or a header value not sealed under the key whose values
 * begin with `sealingPrefix` (a reseal's work; a secret still in clear counts). A header value is
 * stored as `"hdsec1:<key id>:...`: once every one under that key is taken out, none may be left.
 */
function sealedOtherwise(db: Db, sealingPrefix: string) {
  return db
    .selectFrom('webhooks')
    .where((eb) =>
      eb.or([eb('signing_secret', 'not like', `${sealingPrefix}%`), eb(eb.fn('replace', [eb.ref('headers'), eb.val(`"${sealingPrefix}`), eb.val('')]), 'like', `%"${SEALED_PREFIX}:%`)]),
    );
}

export async function findWebhooksSealedOtherwise(db: Db, sealingPrefix: string, limit: number): Promise<SealedWebhookValues[]> {
  return sealedOtherwise(db, sealingPrefix).select(['id', 'signing_secret', 'headers']).orderBy('id').limit(limit).execute();
}

export async function countWebhooksSealedOtherwise(db: Db, sealingPrefix: string): Promise<number> {
  const row = await sealedOtherwise(db, sealingPrefix).select((eb) => eb.fn.countAll<number | string>().as('count')).executeTakeFirstOrThrow();
  return Number(row.count);
}

/** Compare-and-set: false when the webhook changed (or went) since `before` was read. */
export async function replaceSealedWebhookValues(db: Db, before: SealedWebhookValues, after: Omit<SealedWebhookValues, 'id'>): Promise<boolean> {
  const result = await db
    .updateTable('webhooks')
    .set({ signing_secret: after.signing_secret, headers: after.headers })
    .where('id', '=', before.id)
    .where('signing_secret', '=', before.signing_secret)
    .where('headers', '=', before.headers)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/** A previous signing secret, still signing until it expires. */
export interface SealedPreviousSecret {
  webhook_id: string;
  secret: string;
}

export async function findPreviousSecretsSealedOtherwise(db: Db, sealingPrefix: string, limit: number): Promise<SealedPreviousSecret[]> {
  return db
    .selectFrom('webhook_secrets')
    .select(['webhook_id', 'secret'])
    .where('secret', 'not like', `${sealingPrefix}%`)
    .orderBy('webhook_id')
    .orderBy('expires_at')
    .limit(limit)
    .execute();
}

export async function countPreviousSecretsSealedOtherwise(db: Db, sealingPrefix: string): Promise<number> {
  const row = await db
    .selectFrom('webhook_secrets')
    .select((eb) => eb.fn.countAll<number | string>().as('count'))
    .where('secret', 'not like', `${sealingPrefix}%`)
    .executeTakeFirstOrThrow();
  return Number(row.count);
}

/** Compare-and-set: false when the secret was pruned or replaced since it was read. */
export async function replacePreviousSecret(db: Db, before: SealedPreviousSecret, secret: string): Promise<boolean> {
  const result = await db
    .updateTable('webhook_secrets')
    .set({ secret })
    .where('webhook_id', '=', before.webhook_id)
    .where('secret', '=', before.secret)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}
