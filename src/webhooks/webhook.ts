/** The webhook resource of the published reference, and the rules for its target URL. */
import { randomBytes } from 'node:crypto';
import type { DeactivationReason } from '../delivery/webhook-directory.js';
import type { SubscribableEventType } from '../events/event-types.js';
import { literalAddress, type TargetAddressPolicy } from '../outbound/address-policy.js';
import { maskHeaders, type HeaderSet } from './webhook-headers.js';
import type { WebhookFilter } from './webhook-filter.js';

/** Why the delivery engine deactivated a webhook: a `410 Gone`, or five days of failures. */
export type DisabledReason = DeactivationReason;

/**
 * The reference's webhook object, plus `disabledReason` and `disabledAt` (docs/api.md), set only when
 * the delivery engine deactivated it: after a `410 Gone`, or five days of failures.
 */
export interface Webhook {
  id: string;
  name: string;
  targetUrl: string;
  events: SubscribableEventType[];
  active: boolean;
  /** Which events of the subscribed types it gets (docs/api.md, "Filters"); null for all. */
  filter: WebhookFilter | null;
  /** Extra request headers, each value shown as `********` (docs/api.md, "Custom headers"). */
  headers: HeaderSet;
  /** The most deliveries a second, across every worker; null for no limit. */
  rateLimit: number | null;
  disabledReason: DisabledReason | null;
  disabledAt: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface WebhookRecord extends Omit<Webhook, 'headers'> {
  /** Each value sealed like the signing secret (webhook-headers.ts). */
  sealedHeaders: HeaderSet;
  /**
   * The current secret, sealed (secret-box.ts): only the sender opens it. Older ones still
   * honoured live in webhook_secrets, sealed alike.
   */
  sealedSigningSecret: string;
  /** The first failed attempt since the last success (auto-disable after five days of it). */
  failingSince: string | null;
}

/** `whsec_` + standard base64 (with padding) of 32 random bytes, per Standard Webhooks. */
export function newSigningSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

export const MAX_TARGET_URL_LENGTH = 2048;

/** The current secret and those a rotation left live (docs/api.md, "Rotating the signing secret"). */
export const MAX_LIVE_SECRETS = 10;
/** How long a previous secret stays valid after a rotation, at most (seven days). */
export const MAX_SECRET_OVERLAP_SECONDS = 604_800;

/**
 * Why a target URL is refused, or null if it is acceptable. Only https, no credentials, and no
 * literal address in a blocked range unless private targets are allowed. A host name is
 * accepted here and checked again on the address actually connected to.
 */
export function targetUrlProblem(value: string, policy: TargetAddressPolicy): string | null {
  if (value.length > MAX_TARGET_URL_LENGTH) return `must be at most ${MAX_TARGET_URL_LENGTH} characters`;
  // The URL parser would strip or escape these silently; what is stored must be what was meant.
  if (/\s/.test(value)) return 'must not contain white space';
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'must be an https URL';
  }
  if (url.protocol !== 'https:') return 'must be an https URL';
  if (url.username !== '' || url.password !== '') return 'must not contain credentials';
  if (url.hostname === '') return 'must name a host';
  const address = literalAddress(url.hostname);
  if (address !== null && policy.refuses(address)) {
    return 'must not point to a private, loopback, link-local or reserved address';
  }
  return null;
}

/** The public shape of the reference: no secret, no internal fields. */
export function presentWebhook(webhook: WebhookRecord): Webhook {
  return {
    id: webhook.id,
    name: webhook.name,
    targetUrl: webhook.targetUrl,
    events: webhook.events,
    active: webhook.active,
    filter: webhook.filter,
    headers: maskHeaders(webhook.sealedHeaders),
    rateLimit: webhook.rateLimit,
    disabledReason: webhook.disabledReason,
    disabledAt: webhook.disabledAt,
    createdAt: webhook.createdAt,
    updatedAt: webhook.updatedAt,
  };
}
