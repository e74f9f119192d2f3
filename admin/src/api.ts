/**
 * The console's only way to the server: the public API, with the admin key of this tab as the
 * bearer token. Errors come back in the documented shape (docs/errors.md) and are thrown as
 * ApiError, whose `details` the forms show next to their fields.
 */
import type { components, operations } from './generated/api-schema.js';

/**
 * The server's resources, as its OpenAPI document describes them: generated from it into
 * generated/api-schema.ts by `npm run openapi:types` (docs/api.md, "OpenAPI"), never restated here.
 */
export type Schemas = components['schemas'];

export const API_BASE = '/helpdesk/api/v1';
const KEY_STORAGE = 'helpdesk.adminKey';

export type ErrorDetail = NonNullable<Schemas['Error']['error']['details']>[number];

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: ErrorDetail[] = [],
  ) {
    super(message);
  }
}

export type Role = Schemas['User']['role'];

/** The key of this tab: kept in session storage, so that it is gone when the tab closes. */
export const storedKey = {
  get: (): string | null => sessionStorage.getItem(KEY_STORAGE),
  set: (key: string): void => sessionStorage.setItem(KEY_STORAGE, key),
  clear: (): void => sessionStorage.removeItem(KEY_STORAGE),
};

export async function call<T>(key: string, method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { authorization: `Bearer ${key}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  let response: Response;
  try {
    response = await fetch(`${API_BASE}${path}`, { method, headers, body: body === undefined ? null : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, 'network', 'The server cannot be reached. Is it running?');
  }
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  let parsed: unknown = null;
  try {
    parsed = text === '' ? null : JSON.parse(text);
  } catch {
    // Not JSON (a proxy's error page, say): reported below by status.
  }
  if (!response.ok) {
    const error = (parsed as { error?: { code?: string; message?: string; details?: ErrorDetail[] } } | null)?.error;
    throw new ApiError(response.status, error?.code ?? 'unknown', error?.message ?? `The server answered ${response.status}.`, error?.details ?? []);
  }
  return parsed as T;
}

/** What a key may do: an admin key lists webhooks, an agent key is refused with 403. */
export async function roleOf(key: string): Promise<Role> {
  try {
    await call(key, 'GET', '/webhooks?limit=1');
    return 'admin';
  } catch (error) {
    if (error instanceof ApiError && error.code === 'forbidden') return 'agent';
    throw error;
  }
}

// The resources, as the server's OpenAPI document describes them (see Schemas above).

// The event types, from the server's own list (src/events/event-types.ts, which imports nothing).
// What a webhook subscribes to, what the feed lists, and the rest a delivery log may hold.
export { FEED_EVENT_TYPES, OPERATIONAL_EVENT_TYPES, SUBSCRIBABLE_EVENT_TYPES, TEST_EVENT_TYPE, TICKET_EVENT_TYPES, isOperationalEventType } from '../../src/events/event-types.js';

/** A webhook; with its signing secret in the answers that show it once (create, rotate-secret). */
export type Webhook = Schemas['Webhook'] & Partial<Pick<Schemas['WebhookWithSecret'], 'signingSecret'>>;

// The limits of headers and rateLimit, and the header mask, as the server defines them: the
// form checks them before sending, and the API checks them again.
export { MASKED_HEADER_VALUE, MAX_HEADER_VALUE_LENGTH, MAX_HEADERS, MAX_RATE_LIMIT } from '../../src/webhooks/webhook-limits.js';

/** A past ticket event as `POST /webhooks/filter-preview` gives it: its filter document, and whether it matched. */
export type PreviewedEvent = operations['previewWebhookFilter']['responses'][200]['content']['application/json']['events'][number];
/** What a filter is matched against: `{event, ticket, changes}`. */
export type FilterDocument = PreviewedEvent['document'];

export type Delivery = Schemas['Delivery'];
export type Attempt = Schemas['Attempt'];
export type DeliveryDetail = Schemas['DeliveryDetail'];
/** No component of its own: the `stats` of the operation's answer. */
export type WebhookStats = operations['retrieveWebhookStats']['responses'][200]['content']['application/json']['stats'];

// Values the forms offer, so they exist at run time; checked against the server's enums.
export const TICKET_STATUSES = ['open', 'pending', 'on_hold', 'resolved', 'closed'] as const satisfies readonly Ticket['status'][];
export const TICKET_PRIORITIES = ['low', 'normal', 'high', 'urgent'] as const satisfies readonly Ticket['priority'][];

export type Ticket = Schemas['Ticket'];

/** An event of the feed (`GET /events`, `/events/:id`, `/events/stream`): the webhook payload and its id. */
export type FeedEvent = Schemas['FeedEvent'];
export type FeedEventType = FeedEvent['event'];
