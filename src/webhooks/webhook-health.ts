/**
 * What delivery results do to a webhook: a `410 Gone` deactivates it at once; five days of
 * nothing but failures (counted from the first failure after the last success) deactivate it
 * too. Either way its pending deliveries are failed, so `recover` can send them once it is
 * active again, and `disabledReason`/`disabledAt` say why and when.
 */
import type { Db } from '../db/connection.js';
import { failPendingDeliveries } from '../delivery/deliveries.repository.js';
import type { AttemptVerdictAt, Deactivation } from '../delivery/webhook-directory.js';
import { toIso } from '../shared/time.js';
import { clearFailingSince, disableWebhook, markFailing } from './webhooks.repository.js';

export const FAILING_DISABLE_AFTER_MS = 5 * 24 * 60 * 60 * 1000;

/**
 * Applies a batch of attempt results, in the order they finished, to their webhooks. Must run
 * inside a transaction (the worker's, with the attempt records). Per webhook, what counts is its
 * last result, and any 410: one statement for a healthy webhook, a few for a failing one,
 * however many attempts the batch holds. Returns the webhooks just deactivated, with the reason,
 * the time and the attempt that did it.
 */
export async function applyAttemptsToWebhooks(trx: Db, results: readonly AttemptVerdictAt[]): Promise<Map<string, Deactivation>> {
  const byWebhook = new Map<string, AttemptVerdictAt[]>();
  for (const result of results) byWebhook.set(result.webhookId, [...(byWebhook.get(result.webhookId) ?? []), result]);
  const disabled = new Map<string, Deactivation>();
  // In id order, the order the outbox share-locks them in (listActiveSubscriptions).
  for (const [webhookId, verdicts] of [...byWebhook].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const gone = verdicts.find((v) => v.verdict === 'gone');
    const last = verdicts.at(-1)!;
    if (!gone && last.verdict === 'succeeded') {
      await clearFailingSince(trx, webhookId);
      continue;
    }
    // The failures since the batch's last success; the count starts at the first of them.
    const lastSuccess = verdicts.findLastIndex((v) => v.verdict === 'succeeded');
    const failures = verdicts.slice(lastSuccess + 1);
    if (lastSuccess >= 0 && failures.length > 0) await clearFailingSince(trx, webhookId);
    const firstFailure = failures[0] ?? gone!;
    await markFailing(trx, webhookId, firstFailure.at);
    const cause = gone ?? last;
    const reason = gone !== undefined ? 'gone' : 'failing';
    const webhook =
      gone !== undefined
        ? await disableWebhook(trx, webhookId, 'gone', gone.at)
        : await disableWebhook(trx, webhookId, 'failing', last.at, toIso(Date.parse(last.at) - FAILING_DISABLE_AFTER_MS));
    if (!webhook) continue;
    await failPendingDeliveries(trx, webhookId, cause.at);
    disabled.set(webhookId, { reason, at: cause.at, name: webhook.name, targetUrl: webhook.targetUrl, causeEventType: cause.eventType });
  }
  return disabled;
}
