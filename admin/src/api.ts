/**
 * The console's only way to the server: the public API, with the admin key of this tab as the
 * bearer token. Errors come back in the documented shape (docs/errors.md) and are thrown as
 * ApiError, whose `details` the forms show next to their fields.
 */
export const API_BASE = '/helpdesk/api/v1';
const KEY_STORAGE = 'helpdesk.adminKey';

export interface ErrorDetail {
  path: string;
  message: string;
}

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

export type Role = 'admin' | 'agent';

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

// The resources, as docs/api.md (and /helpdesk/api/v1/openapi.json) describe them.

// The event types, from the server's own list (src/events/event-types.ts, which imports nothing).
export { TICKET_EVENT_TYPES as EVENT_TYPES, TEST_EVENT_TYPE } from '../../src/events/event-types.js';

export interface Webhook {
  id: string;
  name: string;
  targetUrl: string;
  events: string[];
  active: boolean;
  disabledReason: 'gone' | 'failing' | null;
  disabledAt: string | null;
  createdAt: string;
  updatedAt: string;
  signingSecret?: string;
}

export interface Delivery {
  id: string;
  webhookId: string;
  event: string;
  status: 'pending' | 'succeeded' | 'failed';
  attemptCount: number;
  lastAttemptAt: string | null;
  nextAttemptAt: string | null;
  lastStatusCode: number | null;
  createdAt: string;
  /** Present when the list was asked for it (`include=ticketVersion`); null for the test event. */
  ticketVersion?: number | null;
}

export interface Attempt {
  id: string;
  at: string;
  statusCode: number | null;
  durationMs: number;
  error: string | null;
  responseHeaders: Record<string, string> | null;
  responseBody: string | null;
}

export interface DeliveryDetail extends Delivery {
  payload: unknown;
  attempts: Attempt[];
}

export interface WebhookStats {
  since: string;
  attempts: { total: number; succeeded: number; failed: number };
  successRate: number | null;
  deliveries: { pending: number; succeeded: number; failed: number };
  lastDelivery: Delivery | null;
  /** The webhook's circuit breaker in the server's worker; null when that process runs none. */
  breaker: { state: 'closed' | 'open' | 'half_open'; pausedUntil: string | null; reason: string | null } | null;
}

export const TICKET_STATUSES = ['open', 'pending', 'on_hold', 'resolved', 'closed'] as const;
export const TICKET_PRIORITIES = ['low', 'normal', 'high', 'urgent'] as const;

export interface Ticket {
  id: string;
  subject: string;
  description: string;
  status: string;
  priority: string;
  assigneeId: string | null;
  requesterEmail: string | null;
  tags: string[];
  customFields: Record<string, unknown>;
  version: number;
  createdAt: string;
  updatedAt: string;
}
