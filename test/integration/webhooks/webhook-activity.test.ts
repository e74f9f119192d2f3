/**
 * GET /webhooks/:id/activity and GET /webhooks/activity: attempts per interval and latency
 * percentiles, what the console's charts and sparklines draw. Attempts are made through the real
 * delivery path to a real HTTPS receiver, at times the test places with the clock seam (the
 * server's clock runs at real speed, set back by hours); the histogram's SQL is checked against
 * attempts of chosen durations written beside them.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LATENCY_ABSOLUTE_PRECISION_MS, LATENCY_BOUNDS_MS, LATENCY_RELATIVE_PRECISION } from '../../../src/delivery/latency-histogram.js';
import { insertPastAttempts } from '../../helpers/attempts.js';
import { describeEachDialect } from '../../helpers/dialects.js';
import { seededRandom } from '../../helpers/random.js';
import { startReceiver, type Receiver } from '../../helpers/receiver.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import { waitFor } from '../../helpers/wait.js';

const HOUR_MS = 3600_000;

interface RecordedAttempt {
  at: string;
  durationMs: number;
  error: string | null;
}

/** The nearest-rank q-quantile: the value a histogram estimate is measured against. */
function nearestRank(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!;
}

function expectWithinPrecision(estimate: number | null, values: readonly number[], q: number): void {
  const truth = nearestRank(values, q);
  expect(estimate).not.toBeNull();
  expect(Math.abs(estimate! - truth)).toBeLessThanOrEqual(Math.max(LATENCY_ABSOLUTE_PRECISION_MS, LATENCY_RELATIVE_PRECISION * truth) + 0.05);
}

describeEachDialect('webhook activity', (dialect) => {
  let server: TestServer;
  let receiver: Receiver;
  /** How far the server's clock runs behind the real one. */
  let setBackMs = 0;

  beforeAll(async () => {
    // One retry: a delivery the receiver refuses ends `failed` after two attempts.
    server = await startTestServer(dialect, { env: { HELPDESK_RETRY_SCHEDULE: '0.05' }, runtime: { clock: { now: () => Date.now() - setBackMs } } });
    receiver = await startReceiver();
  });
  afterAll(async () => {
    await server.close();
    await receiver.close();
  });

  async function newWebhook(name: string): Promise<string> {
    const created = await server.request('POST', '/webhooks', { body: { webhook: { name, targetUrl: receiver.url(), events: ['ticket.created'] } } });
    return created.body.webhook.id as string;
  }

  /** Creates tickets and waits until every delivery of the webhook is finished. */
  async function deliverTickets(webhookId: string, tickets: number, finished: number): Promise<void> {
    for (let i = 0; i < tickets; i += 1) await server.request('POST', '/tickets', { body: { ticket: { subject: `ticket ${i}` } } });
    await waitFor(`${finished} finished deliveries`, async () => {
      const list = await server.request('GET', `/webhooks/${webhookId}/deliveries?limit=100`);
      return list.body.deliveries.filter((d: { status: string }) => d.status !== 'pending').length >= finished;
    });
  }

  async function recordedAttempts(webhookId: string): Promise<RecordedAttempt[]> {
    const list = await server.request('GET', `/webhooks/${webhookId}/deliveries?limit=100`);
    const details = await Promise.all(list.body.deliveries.map((d: { id: string }) => server.request('GET', `/webhooks/${webhookId}/deliveries/${d.id}`)));
    return details.flatMap((detail) => detail.body.delivery.attempts as RecordedAttempt[]);
  }

  it("counts a day's attempts per 15 minutes, every interval present, with p50 and p95 per interval", async () => {
    const id = await newWebhook('activity');
    // 22 hours ago: three deliveries answered at once.
    setBackMs = 22 * HOUR_MS;
    receiver.respondWith(() => ({ status: 204 }));
    await deliverTickets(id, 3, 3);
    // 3 hours ago: two answered after 150 ms, two refused twice (a failed delivery, two attempts each).
    setBackMs = 3 * HOUR_MS;
    const refused = new Map<string, boolean>();
    receiver.respondWith((request) => {
      const deliveryId = request.headers['webhook-id']!;
      if (!refused.has(deliveryId)) refused.set(deliveryId, refused.size % 2 === 1);
      if (refused.get(deliveryId)) return { status: 500, body: 'down' };
      return { takeOver: (response) => void setTimeout(() => response.writeHead(200).end('ok'), 150) };
    });
    await deliverTickets(id, 4, 7);
    setBackMs = 0;

    const response = await server.request('GET', `/webhooks/${id}/activity`);
    expect(response.status).toBe(200);
    const activity = response.body.activity;
    expect(activity.intervalSeconds).toBe(900);
    expect(activity.buckets).toHaveLength(96);
    const intervalMs = 900_000;
    const fromMs = Date.parse(activity.from);
    expect(fromMs % intervalMs).toBe(0);
    expect(Date.parse(activity.to)).toBe(fromMs + 96 * intervalMs);
    expect(Date.parse(activity.to)).toBeGreaterThan(Date.now() - 1000);
    expect(activity.buckets.map((b: { start: string }) => Date.parse(b.start))).toEqual(Array.from({ length: 96 }, (_, i) => fromMs + i * intervalMs));

    // What each interval must hold, from the attempts as the delivery log recorded them.
    const attempts = await recordedAttempts(id);
    expect(attempts.filter((a) => a.error === null)).toHaveLength(5);
    expect(attempts.filter((a) => a.error !== null)).toHaveLength(4);
    const expected = Array.from({ length: 96 }, () => ({ succeeded: 0, failed: 0, durations: [] as number[] }));
    for (const attempt of attempts) {
      const bucket = expected[Math.floor((Date.parse(attempt.at) - fromMs) / intervalMs)]!;
      if (attempt.error === null) bucket.succeeded += 1;
      else bucket.failed += 1;
      bucket.durations.push(attempt.durationMs);
    }
    // The batches landed where they were placed: about 22 and 3 hours before the last interval.
    const sum = (from: number, to: number, key: 'succeeded' | 'failed') => expected.slice(from, to).reduce((total, b) => total + b[key], 0);
    expect(sum(6, 10, 'succeeded')).toBe(3);
    expect(sum(82, 86, 'failed')).toBe(4);
    for (const [index, bucket] of activity.buckets.entries()) {
      const want = expected[index]!;
      expect({ index, succeeded: bucket.succeeded, failed: bucket.failed }).toEqual({ index, succeeded: want.succeeded, failed: want.failed });
      if (want.durations.length === 0) {
        expect(bucket.p50Ms).toBeNull();
        expect(bucket.p95Ms).toBeNull();
      } else {
        expectWithinPrecision(bucket.p50Ms, want.durations, 0.5);
        expectWithinPrecision(bucket.p95Ms, want.durations, 0.95);
      }
    }
    // The slow answers show in the later batch's p95.
    const later = activity.buckets.find((b: { failed: number }) => b.failed > 0);
    expect(later.p95Ms).toBeGreaterThanOrEqual(150 * (1 - LATENCY_RELATIVE_PRECISION));

    // A week: 84 intervals of 2 hours, the same attempts. An hour: 60 of a minute, none of them.
    const week = (await server.request('GET', `/webhooks/${id}/activity?hours=168`)).body.activity;
    expect(week.intervalSeconds).toBe(7200);
    expect(week.buckets).toHaveLength(84);
    expect(week.buckets.reduce((sum: number, b: { succeeded: number; failed: number }) => sum + b.succeeded + b.failed, 0)).toBe(9);
    const hour = (await server.request('GET', `/webhooks/${id}/activity?hours=1`)).body.activity;
    expect(hour.intervalSeconds).toBe(60);
    expect(hour.buckets).toHaveLength(60);
    expect(hour.buckets.every((b: { succeeded: number; failed: number; p50Ms: number | null }) => b.succeeded === 0 && b.failed === 0 && b.p50Ms === null)).toBe(true);

    // The list's request: the same counts, without latencies, for several webhooks at once.
    const quiet = await newWebhook('quiet');
    const many = await server.request('GET', `/webhooks/activity?ids=${quiet},${id},whk_deleted,${quiet}`);
    expect(many.status, JSON.stringify(many.body)).toBe(200);
    expect(many.body.activity).toMatchObject({ from: activity.from, to: activity.to, intervalSeconds: 900 });
    expect(many.body.activity.webhooks.map((w: { webhookId: string }) => w.webhookId)).toEqual([quiet, id]);
    const [quietActivity, busyActivity] = many.body.activity.webhooks;
    expect(quietActivity.buckets).toHaveLength(96);
    expect(quietActivity.buckets.every((b: { succeeded: number; failed: number }) => b.succeeded === 0 && b.failed === 0)).toBe(true);
    expect(busyActivity.buckets).toEqual(activity.buckets.map((b: { start: string; succeeded: number; failed: number }) => ({ start: b.start, succeeded: b.succeeded, failed: b.failed })));
  });

  it('files every duration in its histogram bucket in SQL, and estimates percentiles within the documented precision', async () => {
    const id = await newWebhook('histogram');
    // One interval (a minute of hours=1, 30 s ago), a duration at each side of every bound, and
    // a spread of random ones; every third attempt answered 503.
    const at = new Date(Date.now() - 30_000).toISOString();
    const random = seededRandom(18);
    const durations = [0, ...LATENCY_BOUNDS_MS.flatMap((bound) => [bound - 1, bound]), ...Array.from({ length: 300 }, () => Math.floor(20 + random() * 2000))];
    await insertPastAttempts(server.runtime.database, id, durations.map((durationMs, i) => ({ at, durationMs, statusCode: i % 3 === 0 ? 503 : 200 })));

    const activity = (await server.request('GET', `/webhooks/${id}/activity?hours=1`)).body.activity;
    const busy = activity.buckets.filter((b: { succeeded: number; failed: number }) => b.succeeded + b.failed > 0);
    expect(busy).toHaveLength(1);
    expect(busy[0].start).toBe(new Date(Math.floor(Date.parse(at) / 60_000) * 60_000).toISOString());
    expect(busy[0].succeeded + busy[0].failed).toBe(durations.length);
    expect(busy[0].failed).toBe(durations.filter((_, i) => i % 3 === 0).length);
    expectWithinPrecision(busy[0].p50Ms, durations, 0.5);
    expectWithinPrecision(busy[0].p95Ms, durations, 0.95);

    // Each duration alone in its own window: the SQL put it where latencyBucketOf says, so the
    // estimate stays inside that bucket.
    for (const durationMs of [0, 1, 7, 8, 9, 19, 20, 999, 1024, 29_999, 3_600_000]) {
      const single = await newWebhook(`single ${durationMs}`);
      await insertPastAttempts(server.runtime.database, single, [{ at, durationMs, statusCode: 200 }]);
      const one = (await server.request('GET', `/webhooks/${single}/activity?hours=1`)).body.activity.buckets.find((b: { succeeded: number }) => b.succeeded === 1);
      const upper = LATENCY_BOUNDS_MS.find((bound) => durationMs < bound)!;
      const lower = [...LATENCY_BOUNDS_MS].reverse().find((bound) => bound <= durationMs) ?? 0;
      expect({ durationMs, p50: one.p50Ms >= lower && one.p50Ms <= upper }).toEqual({ durationMs, p50: true });
    }
  });

  it('refuses hours out of range or not whole, unknown parameters and webhooks, and a list without ids', async () => {
    const id = await newWebhook('errors');
    for (const hours of ['0', '169', '1.5', 'day', '']) {
      const bad = await server.request('GET', `/webhooks/${id}/activity?hours=${hours}`);
      expect({ hours, status: bad.status }).toEqual({ hours, status: 400 });
      expect(bad.body.error).toMatchObject({ code: 'validation_failed', details: [expect.objectContaining({ path: 'hours' })] });
    }
    const unknownParameter = await server.request('GET', `/webhooks/${id}/activity?days=1`);
    expect(unknownParameter.status).toBe(400);
    const unknown = await server.request('GET', '/webhooks/whk_nothing/activity');
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('not_found');

    const noIds = await server.request('GET', '/webhooks/activity');
    expect(noIds.status).toBe(400);
    expect(noIds.body.error.details).toEqual([expect.objectContaining({ path: 'ids' })]);
    const notIds = await server.request('GET', '/webhooks/activity?ids=tkt_1,whk_2');
    expect(notIds.status).toBe(400);
    expect(notIds.body.error.details).toEqual([expect.objectContaining({ path: 'ids' })]);
    const tooMany = await server.request('GET', `/webhooks/activity?ids=${Array.from({ length: 101 }, (_, i) => `whk_${i}`).join(',')}`);
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.error.details).toEqual([expect.objectContaining({ path: 'ids' })]);
    const badHours = await server.request('GET', `/webhooks/activity?ids=${id}&hours=200`);
    expect(badHours.body.error.details).toEqual([expect.objectContaining({ path: 'hours' })]);

    const agent = await server.keyFor('agent');
    expect((await server.request('GET', `/webhooks/${id}/activity`, { key: agent.key })).status).toBe(403);
    expect((await server.request('GET', `/webhooks/activity?ids=${id}`, { key: agent.key })).status).toBe(403);
    expect((await server.request('GET', `/webhooks/${id}/activity`, { key: null })).status).toBe(401);
  });
});
