/**
 * What delivery results do to a webhook: a `410 Gone` deactivates it at once; five days of
 * nothing but failures (counted from the first failure after the last success) deactivate it
 * too. Either way its pending deliveries are failed, so `recover` can send them once it is
 * active again, and `disabledReason`/`disabledAt` say why and when.
 */
import type { Db } from '../db/connection.js';
import { failPendingDeliveries } from '../delivery/deliveries.repository.js';
import { toIso } from '../shared/time.js';
import type { DisabledReason } from './webhook.js';
import { clearFailingSince, disableWebhook, markFailing } from './webhooks.repository.js';

export const FAILING_DISABLE_AFTER_MS = 5 * 24 * 60 * 60 * 1000;

export type AttemptVerdict = 'succeeded' | 'failed' | 'gone';

/** Returns the reason the webhook was just deactivated, or null. */
export async function applyAttemptToWebhook(db: Db, webhookId: string, verdict: AttemptVerdict, at: string): Promise<DisabledReason | null> {
  if (verdict === 'succeeded') {
    await clearFailingSince(db, webhookId);
    return null;
  }
  return db.transaction().execute(async (trx) => {
    await markFailing(trx, webhookId, at);
    const disabled =
      verdict === 'gone'
        ? (await disableWebhook(trx, webhookId, 'gone', at)) && 'gone'
        : (await disableWebhook(trx, webhookId, 'failing', at, toIso(Date.parse(at) - FAILING_DISABLE_AFTER_MS))) && 'failing';
    if (!disabled) return null;
    await failPendingDeliveries(trx, webhookId, at);
    return disabled;
  });
}
