// end to end: one `helpdesk serve` takes tickets over its HTTP API at a fixed offered rate while
// it delivers each ticket.created event to `webhooks` webhooks. Reports the accepted and
// delivered rates, the event-to-receiver latency, whether the delivery backlog grows during the
// offered phase, and how long the backlog then takes to drain.
import { clearInterval, setInterval } from 'node:timers';
import { Pool } from 'undici';
import { dropDatabase, freePort, helpdeskEnv, newDatabaseUrl, percentile, sleep, startHelpdesk, TOKEN } from '../lib.mjs';

const TICK_MS = 10;
/** Beyond this many requests awaiting their response, a due request is counted as not offered. */
const MAX_OUTSTANDING = 512;
const DRAIN_TIMEOUT_MS = 120_000;
const HEADERS = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
const TICKET = JSON.stringify({ ticket: { subject: 'benchmark ticket', description: 'x'.repeat(600), tags: ['bench'] } });

export async function run(ctx, dialect, { rate, webhooks }) {
  const url = await newDatabaseUrl(dialect);
  let server = null;
  let pool = null;
  try {
    const port = freePort();
    server = await startHelpdesk('serve', helpdeskEnv(url, ctx.tls), { port });
    pool = new Pool(`http://127.0.0.1:${port}`, { connections: 32, pipelining: 1 });
    await createWebhooks(pool, ctx.receiver.url, webhooks);
    await ctx.receiver.trackLatency(true);
    const offered = await offeredPhase(ctx, pool, rate, webhooks);
    const drain = await waitForDrain(ctx.receiver, offered.before, offered.accepted * webhooks, offered.endedAt);
    const latencies = await ctx.receiver.latencies();
    const peakRssMb = await server.stop();
    server = null;
    const createdPerSecond = offered.acceptedInPhase / offered.seconds;
    const [backlogStart, backlogEnd] = [offered.backlogSeries[0], offered.backlogSeries.at(-1)];
    return {
      offeredPerSecond: rate,
      webhooks,
      createdPerSecond,
      deliveriesPerSecond: offered.deliveredInPhase / offered.seconds,
      notOffered: offered.notOffered,
      failed: offered.failed,
      // Over every delivery that arrived; if the drain timed out the slowest are missing, so
      // these are then lower bounds.
      p50Ms: percentile(latencies, 50),
      p95Ms: percentile(latencies, 95),
      p99Ms: percentile(latencies, 99),
      backlogStart,
      backlogEnd,
      // Growing: up by more than half a second of the traffic that got in. Half a second of the
      // offered rate would not do: a server that accepts far less than it is offered can never
      // build up that much within the phase, so its backlog would never count as growing.
      backlogGrowing: backlogEnd > Math.max(backlogStart * 1.5, createdPerSecond * webhooks * 0.5),
      backlogSeries: offered.backlogSeries,
      drainSeconds: drain.seconds,
      undelivered: drain.undelivered,
      peakRssMb,
    };
  } finally {
    await pool?.close();
    await server?.kill();
    await ctx.receiver.trackLatency(false);
    await dropDatabase(url);
  }
}

async function createWebhooks(pool, targetUrl, count) {
  for (let i = 0; i < count; i += 1) {
    const response = await pool.request({
      path: '/helpdesk/api/v1/webhooks',
      method: 'POST',
      headers: HEADERS,
      body: JSON.stringify({ webhook: { name: `bench ${i}`, targetUrl, events: ['ticket.created'] } }),
    });
    const body = await response.body.text();
    if (response.statusCode !== 201) throw new Error(`webhook: ${response.statusCode} ${body}`);
  }
}

/**
 * Offers `rate` tickets/s for ctx.seconds and samples the backlog once a second: the deliveries
 * owed for the tickets accepted so far, minus those the receiver has counted. The sample at
 * 1 s is the start, the last one (at the end of the phase) the end.
 */
async function offeredPhase(ctx, pool, rate, webhooks) {
  const before = await ctx.receiver.count();
  const load = startLoad(pool, rate);
  const backlogSeries = [];
  for (let second = 1; second <= ctx.seconds; second += 1) {
    await sleep(load.startedAt + second * 1000 - performance.now());
    // The receiver first: a delivery can arrive before its 201 does, and reading the accepted
    // count last keeps such a race from showing a negative backlog.
    const delivered = (await ctx.receiver.count()) - before;
    backlogSeries.push(load.stats.accepted * webhooks - delivered);
  }
  load.stop();
  const endedAt = performance.now();
  const deliveredInPhase = (await ctx.receiver.count()) - before;
  const acceptedInPhase = load.stats.accepted;
  // The requests still awaiting their response are part of the load: their tickets count in
  // the drain target, though not in the accepted rate of the phase.
  await load.settled();
  const { accepted, failed, notOffered } = load.stats;
  return { before, endedAt, seconds: (endedAt - load.startedAt) / 1000, acceptedInPhase, deliveredInPhase, accepted, failed, notOffered, backlogSeries };
}

/**
 * Open loop: each tick sends every request the clock says is due since the start, without
 * waiting for earlier responses, so that a slow server faces the same offered load rather than
 * slowing the client down (coordinated omission). Counting due requests from the clock, not per
 * tick, keeps the rate when ticks run late on a busy event loop.
 */
function startLoad(pool, rate) {
  const stats = { accepted: 0, failed: 0, notOffered: 0 };
  const outstanding = new Set();
  const startedAt = performance.now();
  let scheduled = 0;
  const send = () => {
    const request = pool
      .request({ path: '/helpdesk/api/v1/tickets', method: 'POST', headers: HEADERS, body: TICKET })
      .then(async (response) => {
        await response.body.dump();
        if (response.statusCode === 201) stats.accepted += 1;
        else stats.failed += 1;
      })
      .catch(() => {
        stats.failed += 1;
      })
      .finally(() => outstanding.delete(request));
    outstanding.add(request);
  };
  const timer = setInterval(() => {
    const due = Math.floor(((performance.now() - startedAt) / 1000) * rate);
    for (; scheduled < due; scheduled += 1) {
      if (outstanding.size >= MAX_OUTSTANDING) stats.notOffered += 1;
      else send();
    }
  }, TICK_MS);
  return {
    stats,
    startedAt,
    stop: () => clearInterval(timer),
    settled: () => Promise.all(outstanding),
  };
}

/** Waits until the receiver has counted `target` deliveries since `before`; seconds from `since`. */
async function waitForDrain(receiver, before, target, since) {
  for (;;) {
    const delivered = (await receiver.count()) - before;
    if (delivered >= target) return { seconds: (performance.now() - since) / 1000, undelivered: 0 };
    if (performance.now() - since > DRAIN_TIMEOUT_MS) return { seconds: null, undelivered: target - delivered };
    await sleep(50);
  }
}
