/**
 * Delivery management for admins (docs/api.md, "Delivery management"): the log of what was sent to a webhook, one-off
 * redelivery, recovery of failed deliveries, and the test event.
 */
import type { Capabilities } from '../db/capabilities.js';
import type { Db } from '../db/connection.js';
import { inTransaction } from '../db/transaction.js';
import { AppError, type ErrorDetail } from '../errors.js';
import { toPage, type Page, type PageRequest } from '../shared/pagination.js';
import { type Clock, parseTimeWindow, toIso } from '../shared/time.js';
import { inTransactionSpans, TRACING_OFF, type Traceparent, type Tracing } from '../tracing/tracing.js';
import { TEST_EVENT_TYPE } from '../events/event-types.js';
import { findWebhook } from './webhooks.repository.js';
import { insertDeliveries } from '../delivery/deliveries.repository.js';
import { insertEvents } from '../events/events.repository.js';
import * as log from '../delivery/delivery-log.repository.js';
import { newEventRow } from '../delivery/outbox.js';
import type { DeliveryWakeup } from '../delivery/wakeup.js';
import type { BreakerStatus } from '../delivery/circuit-breaker.js';

/** How far back `recover` may reach (docs/api.md, `POST /webhooks/:id/recover`). */
export const RECOVERY_WINDOW_MS = 14 * 24 * 60 * 60 * 1000;

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
  /** Only when asked for (`include=ticketVersion`): the version its event carries, null for the test event. */
  ticketVersion?: number | null;
  /** Only when asked for (`include=ticketId`): the ticket its event is about, null for the test event. */
  ticketId?: string | null;
  /** Only when asked for (`include=lastError`): the error kind of its last attempt, null after a success or before any. */
  lastError?: string | null;
}

/**
 * What a delivery list may add to each delivery when asked (docs/api.md, "Delivery management"):
 * asked for, so that a client reading the documented shape sees no new field, and so that the
 * lookups they cost (the event, the last attempt) are made only for the clients that want them.
 */
export const DELIVERY_LIST_INCLUDES = ['ticketVersion', 'ticketId', 'lastError'] as const;
export type DeliveryListInclude = (typeof DELIVERY_LIST_INCLUDES)[number];

export interface Attempt {
  id: string;
  at: string;
  statusCode: number | null;
  durationMs: number;
  error: string | null;
  errorMessage: string | null;
  responseHeaders: Record<string, string> | null;
  responseBody: string | null;
}

/** What the console's webhook table shows (docs/api.md, `GET /webhooks/:id/stats`). */
export interface WebhookStats {
  since: string;
  attempts: { total: number; succeeded: number; failed: number };
  /** Succeeded attempts over all attempts since `since`; null when there was none. */
  successRate: number | null;
  deliveries: { pending: number; succeeded: number; failed: number };
  /**
   * Succeeded deliveries over finished ones created since `since`; null when none is finished. Apart
   * from `successRate`, because a delivery that succeeded on a retry is a success to the receiver
   * while its failed first attempt still says the endpoint is flaky.
   */
  deliverySuccessRate: number | null;
  lastDelivery: Delivery | null;
  /** This process's circuit breaker for the webhook; null when this process runs no worker. */
  breaker: { state: BreakerStatus['state']; pausedUntil: string | null; reason: string | null } | null;
}

/**
 * The breaker of a webhook in this process's worker, or null when this process runs none (an
 * API-only `serve`: the breakers live in the worker processes).
 */
export type BreakerLookup = (webhookId: string) => BreakerStatus | null;

/** The window of `GET /webhooks/:id/stats` when no `since` is given. */
export const STATS_WINDOW_MS = 24 * 60 * 60 * 1000;

export interface DeliveryDetail extends Delivery {
  payload: unknown;
  attempts: Attempt[];
}

function presentDelivery(row: log.DeliveryRow & log.IncludedColumns): Delivery {
  return {
    id: row.id,
    webhookId: row.webhook_id,
    event: row.event_type,
    status: row.status,
    attemptCount: row.attempt_count,
    lastAttemptAt: row.last_attempt_at,
    nextAttemptAt: row.next_attempt_at,
    lastStatusCode: row.last_status_code,
    createdAt: row.created_at,
    ...(row.ticket_version === undefined ? {} : { ticketVersion: row.ticket_version }),
    ...(row.ticket_id === undefined ? {} : { ticketId: row.ticket_id }),
    ...(row.last_error === undefined ? {} : { lastError: row.last_error }),
  };
}

export class DeliveryLogService {
  constructor(
    private readonly db: Db,
    private readonly capabilities: Capabilities,
    private readonly clock: Clock,
    private readonly wakeup: DeliveryWakeup,
    private readonly breakerOf: BreakerLookup = () => null,
    private readonly tracing: Tracing = TRACING_OFF,
  ) {}

  async list(webhookId: string, filter: log.DeliveryFilter, page: PageRequest, include: readonly DeliveryListInclude[] = []): Promise<Page<Delivery>> {
    await this.webhook(webhookId);
    const rows = await log.listDeliveries(this.db, webhookId, { ...filter, ...parseTimeWindow(filter) }, page.cursor, page.limit, {
      ticketVersion: include.includes('ticketVersion'),
      ticketId: include.includes('ticketId'),
      lastError: include.includes('lastError'),
    });
    return toPage(rows.map(presentDelivery), page.limit);
  }

  async get(webhookId: string, deliveryId: string): Promise<DeliveryDetail> {
    await this.webhook(webhookId);
    const row = await log.findDelivery(this.db, webhookId, deliveryId);
    if (!row) throw AppError.notFound('Delivery');
    const attempts = await log.listAttempts(this.db, deliveryId);
    return {
      ...presentDelivery(row),
      payload: JSON.parse(row.payload) as unknown,
      attempts: attempts.map((a) => ({
        id: a.id,
        at: a.attempted_at,
        statusCode: a.status_code,
        durationMs: a.duration_ms,
        error: a.error,
        errorMessage: a.error_message,
        responseHeaders: a.response_headers === null ? null : (JSON.parse(a.response_headers) as Record<string, string>),
        responseBody: a.response_body,
      })),
    };
  }

  /** The webhook's attempts and deliveries since a time (the last 24 h unless given), and its last delivery. */
  async stats(webhookId: string, window: { since?: string }): Promise<WebhookStats> {
    await this.webhook(webhookId);
    const since = parseTimeWindow(window).since ?? toIso(this.clock.now() - STATS_WINDOW_MS);
    const rows = await log.webhookStats(this.db, webhookId, since);
    const { total, succeeded } = rows.attempts;
    const finished = rows.deliveries.succeeded + rows.deliveries.failed;
    return {
      since,
      attempts: { total, succeeded, failed: total - succeeded },
      successRate: total === 0 ? null : succeeded / total,
      deliveries: rows.deliveries,
      deliverySuccessRate: finished === 0 ? null : rows.deliveries.succeeded / finished,
      lastDelivery: rows.lastDelivery ? presentDelivery(rows.lastDelivery) : null,
      breaker: presentBreaker(this.breakerOf(webhookId)),
    };
  }

  /** One attempt now, same `webhook-id`, whatever its state and whether the webhook is active. */
  async redeliver(webhookId: string, deliveryId: string): Promise<Delivery> {
    await this.webhook(webhookId);
    if (!(await log.findDelivery(this.db, webhookId, deliveryId))) throw AppError.notFound('Delivery');
    await inTransaction(this.db, (trx) => log.requestRedelivery(trx, this.capabilities, deliveryId, toIso(this.clock.now())));
    this.wakeup.notify();
    const row = await log.findDelivery(this.db, webhookId, deliveryId);
    if (!row) throw AppError.notFound('Delivery');
    return presentDelivery(row);
  }

  /** Failed deliveries created in the window are queued again, each with a fresh schedule. */
  async recover(webhookId: string, input: { since: string; until?: string }): Promise<number> {
    const webhook = await this.webhook(webhookId);
    const nowMs = this.clock.now();
    const window = parseTimeWindow(input);
    const since = Date.parse(window.since ?? '');
    const until = window.until === undefined ? nowMs : Date.parse(window.until);
    const details: ErrorDetail[] = [];
    if (since < nowMs - RECOVERY_WINDOW_MS) details.push({ path: 'since', message: 'must be within the last 14 days' });
    if (since > nowMs) details.push({ path: 'since', message: 'must not be in the future' });
    if (until <= since) details.push({ path: 'until', message: 'must be after since' });
    if (details.length > 0) throw AppError.validation(details);
    if (!webhook.active) throw AppError.conflict('The webhook is inactive: reactivate it before recovering its deliveries.');
    const now = toIso(nowMs);
    // A recovery can queue thousands at once: a rate-limited webhook's go through the queue at its
    // pace (and behind its breaker) rather than as one burst, which is what its limit exists to
    // prevent (docs/delivery.md, "Rate limits"). Otherwise they go out at once.
    const recovered = await log.recoverFailedDeliveries(this.db, webhookId, toIso(since), toIso(until), now, webhook.rateLimit === null);
    if (recovered > 0) this.wakeup.notify();
    return recovered;
  }

  /** Queues `webhook.test`, signed and logged like any other event, to an inactive webhook too. */
  async sendTest(webhookId: string, traceparent: Traceparent | null = null): Promise<Delivery> {
    const webhook = await this.webhook(webhookId);
    const now = toIso(this.clock.now());
    // Traced like a ticket change: the test's attempt joins the trace of the request that asked.
    const deliveryId = await inTransactionSpans(this.tracing, 'webhook.test', [traceparent], (spans) => inTransaction(this.db, async (trx) => {
      const data = { webhook: { id: webhook.id, name: webhook.name } };
      const event = newEventRow({ type: TEST_EVENT_TYPE, ticketId: null, ticketVersion: null, data, at: now, subject: null, traceparent: spans[0] ?? null });
      await insertEvents(trx, this.capabilities, [event]);
      const [id] = await insertDeliveries(trx, this.capabilities, [{ webhookId, eventId: event.id, eventType: event.type, ticketId: null, held: false, expedited: true, queuedAt: now }]);
      return id!;
    }));
    this.wakeup.notify();
    const row = await log.findDelivery(this.db, webhookId, deliveryId);
    if (!row) throw AppError.notFound('Delivery');
    return presentDelivery(row);
  }

  private async webhook(id: string) {
    const webhook = await findWebhook(this.db, id);
    if (!webhook) throw AppError.notFound('Webhook');
    return webhook;
  }
}

function presentBreaker(status: BreakerStatus | null): WebhookStats['breaker'] {
  if (status === null) return null;
  const { state, pausedUntil, openedWith } = status;
  return {
    state,
    pausedUntil: pausedUntil === null ? null : toIso(pausedUntil),
    reason: openedWith === null ? null : `${openedWith.failures} of its last ${openedWith.attempts} attempts failed`,
  };
}
