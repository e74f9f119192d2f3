/**
 * A webhook's attempts over the last hours, per interval: how many succeeded and failed, and
 * their latency's p50 and p95 (docs/api.md, "Activity"). The console draws its charts and the
 * list's sparklines from it.
 */
import type { Capabilities } from '../db/capabilities.js';
import type { Db } from '../db/connection.js';
import { attemptActivity, type ActivityRow } from '../delivery/delivery-log.repository.js';
import { latencyQuantile } from '../delivery/latency-histogram.js';
import { AppError } from '../errors.js';
import { type Clock, toIso } from '../shared/time.js';
import { existingWebhookIds, findWebhook } from './webhooks.repository.js';

export const ACTIVITY_DEFAULT_HOURS = 24;
export const ACTIVITY_MAX_HOURS = 168;
/** A chart's bars stay wide enough to read, and a page of sparklines' rows few. */
export const ACTIVITY_MAX_INTERVALS = 96;
/** The interval lengths the server picks from: the shortest that keeps to ACTIVITY_MAX_INTERVALS. Each divides a day. */
export const ACTIVITY_INTERVAL_MINUTES = [1, 5, 15, 30, 60, 120] as const;
/** As many as the webhook list's largest page. */
export const ACTIVITY_MAX_WEBHOOKS = 100;

const MINUTE_MS = 60_000;

export interface ActivityWindow {
  /** The start of the first interval. */
  from: string;
  /** The end of the last interval: the one now is in, so it may lie ahead. */
  to: string;
  intervalSeconds: number;
}

export interface AttemptCounts {
  start: string;
  succeeded: number;
  failed: number;
}

export interface ActivityBucket extends AttemptCounts {
  p50Ms: number | null;
  p95Ms: number | null;
}

export interface WebhookActivity extends ActivityWindow {
  buckets: ActivityBucket[];
}

export interface WebhooksActivity extends ActivityWindow {
  webhooks: { webhookId: string; buckets: AttemptCounts[] }[];
}

/** `?hours=`: a whole number from 1 to ACTIVITY_MAX_HOURS, 24 when absent; never clamped. */
export function parseActivityHours(hours: string | undefined): number {
  if (hours === undefined) return ACTIVITY_DEFAULT_HOURS;
  if (!/^\d+$/.test(hours) || Number(hours) < 1 || Number(hours) > ACTIVITY_MAX_HOURS) {
    throw AppError.invalidField('hours', `must be a whole number from 1 to ${ACTIVITY_MAX_HOURS}`);
  }
  return Number(hours);
}

/**
 * Intervals aligned on the clock (a 15-minute one starts at :00, :15, :30 or :45 UTC), the last
 * one holding now, enough of them to cover `hours`: a chart drawn twice a minute apart shows the
 * same bars, only the last one grown.
 */
export function activityWindow(nowMs: number, hours: number): ActivityWindow & { intervalMinutes: number; count: number } {
  const intervalMinutes = ACTIVITY_INTERVAL_MINUTES.find((minutes) => (hours * 60) / minutes <= ACTIVITY_MAX_INTERVALS) ?? ACTIVITY_INTERVAL_MINUTES.at(-1)!;
  const intervalMs = intervalMinutes * MINUTE_MS;
  const count = Math.ceil((hours * 60) / intervalMinutes);
  const lastStart = Math.floor(nowMs / intervalMs) * intervalMs;
  const fromMs = lastStart - (count - 1) * intervalMs;
  return { from: toIso(fromMs), to: toIso(lastStart + intervalMs), intervalSeconds: intervalMinutes * 60, intervalMinutes, count };
}

/** The interval a row counts, by its number from the window's first. */
function intervalIndex(row: ActivityRow, fromMs: number, intervalMinutes: number): number {
  const startMs = Date.parse(`${row.day}T00:00:00.000Z`) + Number(row.slot) * intervalMinutes * MINUTE_MS;
  return (startMs - fromMs) / (intervalMinutes * MINUTE_MS);
}

/** Latencies to a tenth of a millisecond: finer would be noise beside the histogram's precision. */
function roundedMs(value: number | null): number | null {
  return value === null ? null : Math.round(value * 10) / 10;
}

export class WebhookActivityService {
  constructor(
    private readonly db: Db,
    private readonly capabilities: Capabilities,
    private readonly clock: Clock,
  ) {}

  /** One webhook's attempts and latency per interval; every interval is there, an empty one with zeros and null latencies. */
  async ofWebhook(webhookId: string, hours: number): Promise<WebhookActivity> {
    if (!(await findWebhook(this.db, webhookId))) throw AppError.notFound('Webhook');
    const window = activityWindow(this.clock.now(), hours);
    const fromMs = Date.parse(window.from);
    const latencies = Array.from({ length: window.count }, () => new Map<number, number>());
    const counts = Array.from({ length: window.count }, () => ({ succeeded: 0, failed: 0 }));
    for (const row of await attemptActivity(this.db, this.capabilities, [webhookId], window, true)) {
      const index = intervalIndex(row, fromMs, window.intervalMinutes);
      if (!(index >= 0 && index < window.count)) continue;
      const total = Number(row.total);
      const succeeded = Number(row.succeeded);
      counts[index]!.succeeded += succeeded;
      counts[index]!.failed += total - succeeded;
      latencies[index]!.set(Number(row.latency_bucket), total);
    }
    return {
      from: window.from,
      to: window.to,
      intervalSeconds: window.intervalSeconds,
      buckets: counts.map((count, index) => ({
        start: toIso(fromMs + index * window.intervalSeconds * 1000),
        ...count,
        p50Ms: roundedMs(latencyQuantile(latencies[index]!, 0.5)),
        p95Ms: roundedMs(latencyQuantile(latencies[index]!, 0.95)),
      })),
    };
  }

  /**
   * Several webhooks' attempts per interval in one query, for the list's sparklines: in the order
   * asked, each once, leaving out those that do not exist (deleted since the list was read).
   */
  async ofWebhooks(webhookIds: readonly string[], hours: number): Promise<WebhooksActivity> {
    const asked = [...new Set(webhookIds)];
    if (asked.length > ACTIVITY_MAX_WEBHOOKS) throw AppError.invalidField('ids', `must name at most ${ACTIVITY_MAX_WEBHOOKS} webhooks`);
    const existing = await existingWebhookIds(this.db, this.capabilities, asked);
    const ids = asked.filter((id) => existing.has(id));
    const window = activityWindow(this.clock.now(), hours);
    const fromMs = Date.parse(window.from);
    const counts = new Map(ids.map((id) => [id, Array.from({ length: window.count }, () => ({ succeeded: 0, failed: 0 }))]));
    const rows = ids.length === 0 ? [] : await attemptActivity(this.db, this.capabilities, ids, window, false);
    for (const row of rows) {
      const index = intervalIndex(row, fromMs, window.intervalMinutes);
      const intervals = counts.get(row.webhook_id);
      if (intervals === undefined || !(index >= 0 && index < window.count)) continue;
      const total = Number(row.total);
      const succeeded = Number(row.succeeded);
      intervals[index]!.succeeded += succeeded;
      intervals[index]!.failed += total - succeeded;
    }
    return {
      from: window.from,
      to: window.to,
      intervalSeconds: window.intervalSeconds,
      webhooks: ids.map((webhookId) => ({
        webhookId,
        buckets: counts.get(webhookId)!.map((count, index) => ({ start: toIso(fromMs + index * window.intervalSeconds * 1000), ...count })),
      })),
    };
  }
}
