// The cost of the event feed (issue 17) on POST /helpdesk/api/v1/tickets with no webhook: api.mjs's
// load (autocannon, 64 connections, BENCH_SECONDS a run) against an API-only `helpdesk serve`
// (HELPDESK_SERVE_WORKER=false) on a fresh database each run, in three configurations:
//
// - before: a build from before the feed (BENCH_FEED_BASELINE, the path of a checkout built with
//   `npx tsc -p tsconfig.build.json`), which already wrote every event but kept no commit-order
//   position and had no index for the feed's lists;
// - after: this build, no stream open: what keeping every event listable and streamable costs a
//   ticket write (the position on SQLite, the feed's indexes);
// - streaming: this build with one client following GET /events/stream the whole run, for
//   information: what following the feed costs the writes (on PostgreSQL the sequencer runs).
//   Its client must receive one event per ticket created, or the run fails.
//
// before and after alternate, taking turns going first (ABBA), for the reasons filters.mjs gives.
// feedCostRatio = mean rps of after / mean rps of before. Without BENCH_FEED_BASELINE only after
// and streaming are measured.
//
// BENCH_FEED_ROUNDS  before/after pairs (default 2)
import { resolve } from 'node:path';
import { request } from 'undici';
import { dropDatabase, freePort, helpdeskEnv, newDatabaseUrl, startHelpdesk } from '../lib.mjs';
import { HEADERS, load } from './api.mjs';

export async function run(ctx, dialect) {
  const baseline = process.env.BENCH_FEED_BASELINE;
  const rounds = Math.max(1, Number(process.env.BENCH_FEED_ROUNDS ?? 2));
  const pairs = Array.from({ length: rounds }, (_, i) => (i % 2 === 0 ? ['before', 'after'] : ['after', 'before']));
  const order = [...(baseline ? pairs.flat() : ['after']), 'streaming'];
  const measured = [];
  for (const config of order) {
    const bin = config === 'before' ? resolve(baseline, 'bin/helpdesk.js') : 'bin/helpdesk.js';
    measured.push({ config, ...(await measure(ctx, dialect, bin, config === 'streaming')) });
  }
  const rpsOf = (config) => measured.filter((r) => r.config === config).map((r) => r.rps);
  const mean = (values) => (values.length === 0 ? undefined : values.reduce((a, b) => a + b, 0) / values.length);
  const before = rpsOf('before');
  return {
    baseline: baseline ?? null,
    runs: measured.map(({ config, rps, p99Ms, non2xx, streamed, peakRssMb }) => ({ config, rps: Math.round(rps), p99Ms, non2xx, ...(streamed === undefined ? {} : { streamed }), peakRssMb: Math.round(peakRssMb) })),
    beforeRps: mean(before),
    afterRps: mean(rpsOf('after')),
    streamingRps: mean(rpsOf('streaming')),
    ...(before.length > 0 ? { beforeSpread: (Math.max(...before) - Math.min(...before)) / mean(before), feedCostRatio: mean(rpsOf('after')) / mean(before) } : {}),
    streamingRatio: mean(rpsOf('streaming')) / mean(rpsOf('after')),
    // This build's peak: the baseline is another build, started with its own flags.
    peakRssMb: Math.max(...measured.filter((r) => r.config !== 'before').map((r) => r.peakRssMb)),
  };
}

async function measure(ctx, dialect, bin, streaming) {
  const url = await newDatabaseUrl(dialect);
  try {
    const port = freePort();
    const server = await startHelpdesk('serve', helpdeskEnv(url, ctx.tls, { HELPDESK_SERVE_WORKER: 'false' }), { port, bin });
    try {
      const stream = streaming ? await follow(port) : null;
      const figures = await load(port, ctx.seconds);
      let streamed;
      if (stream) {
        streamed = await stream.waitFor(figures.created);
        stream.close();
      }
      return { ...figures, streamed, peakRssMb: await server.stop() };
    } catch (error) {
      await server.kill();
      throw error;
    }
  } finally {
    await dropDatabase(url);
  }
}

/** A client of GET /events/stream counting the events it receives. */
async function follow(port) {
  const response = await request(`http://127.0.0.1:${port}/helpdesk/api/v1/events/stream`, { headers: HEADERS });
  if (response.statusCode !== 200) throw new Error(`stream: ${response.statusCode} ${await response.body.text()}`);
  let count = 0;
  let tail = '';
  response.body.setEncoding('utf8');
  response.body.on('data', (chunk) => {
    const text = tail + chunk;
    const lines = text.split('\n');
    tail = lines.pop();
    for (const line of lines) if (line.startsWith('id: ')) count += 1;
  });
  response.body.on('error', () => undefined);
  return {
    async waitFor(expected) {
      const deadline = Date.now() + 60_000;
      while (count < expected) {
        if (Date.now() > deadline) throw new Error(`stream: ${count} of ${expected} events arrived`);
        await new Promise((r) => setTimeout(r, 50));
      }
      return count;
    },
    close: () => response.body.destroy(),
  };
}
