/**
 * The webhooks part's answer to the delivery engine's port (delivery/webhook-directory.ts):
 * subscriptions for the outbox, targets and opened secrets for the worker, health verdicts for
 * the attempt recorder.
 */
import type { Capabilities } from '../db/capabilities.js';
import type { WebhookDirectory } from '../delivery/webhook-directory.js';
import type { SecretBox } from '../secrets/secret-box.js';
import { filterMatcherCache } from './webhook-filter.js';
import { applyAttemptsToWebhooks } from './webhook-health.js';
import { findDeliveryTargets, listActiveSubscriptions } from './webhooks.repository.js';

export function webhookDirectory(capabilities: Capabilities, secrets: SecretBox): WebhookDirectory {
  const matcherOf = filterMatcherCache();
  return {
    activeSubscriptions: async (trx, lock) =>
      (await listActiveSubscriptions(trx, capabilities, lock)).map(({ id, events, filter }) => ({ id, events, matches: filter === null ? null : matcherOf(filter) })),
    deliveryTargets: (db, webhookIds, now) => findDeliveryTargets(db, capabilities, secrets, webhookIds, now),
    applyVerdicts: (trx, verdicts) => applyAttemptsToWebhooks(trx, verdicts),
  };
}
