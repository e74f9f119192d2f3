// Filter cost (issue 16): what webhook filters add to POST /helpdesk/api/v1/tickets. The load is
// api.mjs's (autocannon, 64 connections, the same body, BENCH_SECONDS a run) against an API-only
// `helpdesk serve` (HELPDESK_SERVE_WORKER=false: each ticket writes its event and its deliveries
// in its transaction, and nothing is sent, so the figure is the API's alone). Ten webhooks are
// subscribed to ticket.created, in three configurations, each on a fresh database and server:
//
// - unfiltered: no filter;
// - filteredMatching: each webhook a three-clause filter that every bench ticket matches, so the
//   very same ten deliveries per ticket are written and the only work added is building the
//   filter document and evaluating ten filters. filterCostRatio = mean rps of these runs / mean
//   rps of the unfiltered runs, held against the target (>= 0.95: at most 5% cost);
// - filteredNone: the same shape of filter, matching nothing (no delivery written), for
//   information only: it is faster for writing less, not for filtering.
//
// Why alternate (unfiltered, filteredMatching, then filteredMatching, unfiltered, … then
// filteredNone): on a shared two-core machine the rate drifts by more than the 5% to be seen
// over the minutes a scenario takes. Pairs taken one after the other see the same drift, where
// all unfiltered runs first and all filtered ones after would count the drift as filter cost;
// and with the pairs taking turns going first (ABBA), a steady drift within pairs cancels too
// (measured: the runs of a scenario slowed run after run, so the second of every pair lost).
// unfilteredSpread ((max - min) / mean of the unfiltered runs) shows how much noise there was.
//
// Each run also reads helpdesk_deliveries_filtered_out_total from /metrics: a matching filter
// that matched nothing would make its runs faster and the cost look nil, so such a run fails.
//
// BENCH_FILTER_ROUNDS  unfiltered/filteredMatching pairs (default 2)
import { request } from 'undici';
import { dropDatabase, freePort, helpdeskEnv, newDatabaseUrl, startHelpdesk } from '../lib.mjs';
// api.mjs's load, body (no priority, so the default, normal; the one tag the filters look for) and headers.
import { HEADERS, load } from './api.mjs';

const WEBHOOKS = 10;
const PRIORITIES = ['low', 'normal', 'high', 'urgent'];

/**
 * The filter of webhook `i`: three clauses, over the event, the ticket's priority and its tags.
 * Each webhook's text differs (its own tag beside the shared one), as ten real subscribers'
 * would, so ten matchers are compiled and looked up rather than one shared.
 */
const FILTERS = {
  unfiltered: () => null,
  filteredMatching: (i) => ({ event: 'ticket.created', 'ticket.priority': { $in: PRIORITIES }, 'ticket.tags': { $in: ['bench', `webhook-${i}`] } }),
  filteredNone: (i) => ({ event: 'ticket.created', 'ticket.priority': { $in: PRIORITIES }, 'ticket.tags': { $in: ['never', `webhook-${i}`] } }),
};

export async function run(ctx, dialect) {
  const rounds = Math.max(1, Number(process.env.BENCH_FILTER_ROUNDS ?? 2));
  // ABBA: the pairs take turns going first, so a drift over the scenario cancels out.
  const order = [...Array.from({ length: rounds }, (_, i) => (i % 2 === 0 ? ['unfiltered', 'filteredMatching'] : ['filteredMatching', 'unfiltered'])).flat(), 'filteredNone'];
  const measured = [];
  for (const config of order) measured.push({ config, ...(await measure(ctx, dialect, config)) });
  // Whole requests a second in the list of runs, which is printed as it is; means from the exact.
  const runs = measured.map(({ config, rps, p99Ms, non2xx, filteredOut }) => ({ config, rps: Math.round(rps), p99Ms, non2xx, filteredOut }));
  const rpsOf = (config) => measured.filter((r) => r.config === config).map((r) => r.rps);
  const mean = (values) => values.reduce((a, b) => a + b, 0) / values.length;
  const unfiltered = rpsOf('unfiltered');
  return {
    webhooks: WEBHOOKS,
    runs,
    unfilteredRps: mean(unfiltered),
    filteredMatchingRps: mean(rpsOf('filteredMatching')),
    filteredNoneRps: mean(rpsOf('filteredNone')),
    unfilteredSpread: (Math.max(...unfiltered) - Math.min(...unfiltered)) / mean(unfiltered),
    filterCostRatio: mean(rpsOf('filteredMatching')) / mean(unfiltered),
    peakRssMb: Math.max(...measured.map((r) => r.peakRssMb)),
  };
}

/** One run: a fresh database and server, ten webhooks with the configuration's filter, the load. */
async function measure(ctx, dialect, config) {
  const url = await newDatabaseUrl(dialect);
  try {
    const port = freePort();
    const server = await startHelpdesk('serve', helpdeskEnv(url, ctx.tls, { HELPDESK_SERVE_WORKER: 'false' }), { port });
    try {
      for (let i = 0; i < WEBHOOKS; i += 1) await subscribe(port, ctx.receiver, i, FILTERS[config](i));
      const figures = await load(port, ctx.seconds);
      const filteredOut = await filteredOutCount(port);
      if (config === 'filteredMatching' && filteredOut !== 0) throw new Error(`filteredMatching: ${filteredOut} deliveries filtered out, expected none`);
      if (config === 'filteredNone' && filteredOut < WEBHOOKS * figures.created) {
        throw new Error(`filteredNone: ${filteredOut} deliveries filtered out, expected at least ${WEBHOOKS * figures.created}`);
      }
      return { ...figures, filteredOut, peakRssMb: await server.stop() };
    } catch (error) {
      await server.kill();
      throw error;
    }
  } finally {
    await dropDatabase(url);
  }
}

async function subscribe(port, receiver, i, filter) {
  const response = await request(`http://127.0.0.1:${port}/helpdesk/api/v1/webhooks`, {
    method: 'POST',
    headers: HEADERS,
    body: JSON.stringify({ webhook: { name: `bench ${i}`, targetUrl: receiver.url, events: ['ticket.created'], filter } }),
  });
  const text = await response.body.text();
  if (response.statusCode !== 201) throw new Error(`webhook: ${response.statusCode} ${text}`);
}

/** helpdesk_deliveries_filtered_out_total, 0 while the counter has no sample yet. */
async function filteredOutCount(port) {
  const response = await request(`http://127.0.0.1:${port}/metrics`);
  const text = await response.body.text();
  if (response.statusCode !== 200) throw new Error(`metrics: ${response.statusCode}`);
  const line = text.split('\n').find((l) => l.startsWith('helpdesk_deliveries_filtered_out_total'));
  return line ? Number(line.split(' ').at(-1)) : 0;
}
