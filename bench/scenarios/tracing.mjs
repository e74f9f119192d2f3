// The cost of OpenTelemetry tracing (issue 18): POST /helpdesk/api/v1/tickets and delivery
// throughput, each measured in three configurations on a fresh database each run:
//
// - off: this build with no OTEL_* variable (the SDK is not even loaded);
// - on: this build exporting every span (OTEL_EXPORTER_OTLP_ENDPOINT, protobuf, always sampled)
//   to a local OTLP/HTTP collector, a process of its own started here (`node
//   bench/scenarios/tracing.mjs collector`), which reads each export whole and answers 200;
// - baseline: a build from before tracing (BENCH_TRACING_BASELINE, the path of a checkout of
//   83c36df built with `npx tsc -p tsconfig.build.json`), for off's cost against no tracing code.
//
// Tickets: api.mjs's load (autocannon, 64 connections, BENCH_SECONDS) against an API-only serve
// with one subscribed webhook: every ticket is a request span, a transaction span and a queued
// delivery. Deliveries: BENCH_TRACING_EVENTS tickets queued through that API-only process (so its
// events carry their traces when on), then one `serve` drains them to the receiver: a span per
// attempt and a traceparent header each; deliveries/s from the first arrival to the last.
//
// The configurations take turns going first, round by round (as filters.mjs explains: the
// machine drifts). onCost = mean of on / mean of off; offCost = mean of off / mean of baseline.
//
// BENCH_TRACING_BASELINE  a checkout built before tracing (optional: without it, off and on only)
// BENCH_TRACING_ROUNDS    rounds of every configuration (default 2)
// BENCH_TRACING_EVENTS    tickets queued for the drain (default 10000)
import { fork } from 'node:child_process';
import { createServer } from 'node:http';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { dropDatabase, freePort, helpdeskEnv, measureDrain, newDatabaseUrl, startHelpdesk } from '../lib.mjs';
import { BODY, HEADERS, load } from './api.mjs';

export async function run(ctx, dialect) {
  const baseline = process.env.BENCH_TRACING_BASELINE;
  const rounds = Math.max(1, Number(process.env.BENCH_TRACING_ROUNDS ?? 2));
  const events = Number(process.env.BENCH_TRACING_EVENTS ?? 10_000);
  const configs = baseline ? ['baseline', 'off', 'on'] : ['off', 'on'];
  const collector = await startCollector();
  try {
    const measured = [];
    for (let round = 0; round < rounds; round += 1) {
      // Rotated each round, so that no configuration always runs first (or last).
      const order = configs.map((_, i) => configs[(i + round) % configs.length]);
      for (const config of order) {
        const bin = config === 'baseline' ? resolve(baseline, 'bin/helpdesk.js') : 'bin/helpdesk.js';
        const env = config === 'on' ? { OTEL_EXPORTER_OTLP_ENDPOINT: collector.origin, OTEL_TRACES_SAMPLER: 'always_on' } : {};
        measured.push({ config, ...(await measure(ctx, dialect, bin, env, events)) });
      }
    }
    const mean = (config, key) => {
      const values = measured.filter((r) => r.config === config).map((r) => r[key]);
      return values.length === 0 ? undefined : values.reduce((a, b) => a + b, 0) / values.length;
    };
    const spread = (config, key) => {
      const values = measured.filter((r) => r.config === config).map((r) => r[key]);
      return (Math.max(...values) - Math.min(...values)) / mean(config, key);
    };
    return {
      baseline: baseline ?? null,
      runs: measured.map(({ config, rps, p99Ms, deliveriesPerSecond, peakRssMb }) => ({ config, rps: Math.round(rps), p99Ms, deliveriesPerSecond: Math.round(deliveriesPerSecond), peakRssMb: Math.round(peakRssMb) })),
      offRps: mean('off', 'rps'),
      onRps: mean('on', 'rps'),
      offDeliveriesPerSecond: mean('off', 'deliveriesPerSecond'),
      onDeliveriesPerSecond: mean('on', 'deliveriesPerSecond'),
      offRpsSpread: spread('off', 'rps'),
      onTicketsRatio: mean('on', 'rps') / mean('off', 'rps'),
      onDeliveryRatio: mean('on', 'deliveriesPerSecond') / mean('off', 'deliveriesPerSecond'),
      ...(baseline
        ? {
            baselineRps: mean('baseline', 'rps'),
            baselineDeliveriesPerSecond: mean('baseline', 'deliveriesPerSecond'),
            offTicketsRatio: mean('off', 'rps') / mean('baseline', 'rps'),
            offDeliveryRatio: mean('off', 'deliveriesPerSecond') / mean('baseline', 'deliveriesPerSecond'),
          }
        : {}),
      collector: await collector.received(),
      // This build's peak: the baseline is another build, started with its own flags.
      peakRssMb: Math.max(...measured.filter((r) => r.config !== 'baseline').map((r) => r.peakRssMb)),
    };
  } finally {
    await collector.stop();
  }
}

/** The environment of one configuration: no OTEL_* of the bench's own shell leaks into it. */
function envOf(url, ctx, extra) {
  const env = helpdeskEnv(url, ctx.tls, extra);
  for (const name of Object.keys(env)) if (name.startsWith('OTEL_') && !(name in extra)) delete env[name];
  return env;
}

async function measure(ctx, dialect, bin, tracingEnv, events) {
  const url = await newDatabaseUrl(dialect);
  const drainUrl = await newDatabaseUrl(dialect);
  try {
    const tickets = await measureTickets(ctx, url, bin, tracingEnv);
    const drain = await measureDrainOf(ctx, drainUrl, bin, tracingEnv, events);
    return { ...tickets, ...drain, peakRssMb: Math.max(tickets.peakRssMb, drain.peakRssMb) };
  } finally {
    await dropDatabase(url);
    await dropDatabase(drainUrl);
  }
}

async function measureTickets(ctx, url, bin, tracingEnv) {
  const port = freePort();
  const server = await startHelpdesk('serve', envOf(url, ctx, { HELPDESK_SERVE_WORKER: 'false', ...tracingEnv }), { port, bin });
  try {
    await subscribe(port, ctx.receiver.url);
    const figures = await load(port, ctx.seconds);
    return { rps: figures.rps, p99Ms: figures.p99Ms, peakRssMb: await server.stop() };
  } catch (error) {
    await server.kill();
    throw error;
  }
}

/** Queues `events` tickets through an API-only process, then one serve drains them. */
async function measureDrainOf(ctx, url, bin, tracingEnv, events) {
  const port = freePort();
  const api = await startHelpdesk('serve', envOf(url, ctx, { HELPDESK_SERVE_WORKER: 'false', ...tracingEnv }), { port, bin });
  try {
    await subscribe(port, ctx.receiver.url);
    const queued = await autocannon({ url: `http://127.0.0.1:${port}/helpdesk/api/v1/tickets`, method: 'POST', headers: HEADERS, body: BODY, connections: 16, amount: events });
    if (queued['2xx'] !== events) throw new Error(`queueing: ${queued['2xx']} of ${events} tickets created`);
    await api.stop();
  } catch (error) {
    await api.kill();
    throw error;
  }
  const before = await ctx.receiver.count();
  const server = await startHelpdesk('serve', envOf(url, ctx, tracingEnv), { port: freePort(), bin });
  try {
    const deliveriesPerSecond = await measureDrain(ctx.receiver, before, events);
    return { deliveriesPerSecond, peakRssMb: await server.stop() };
  } catch (error) {
    await server.kill();
    throw error;
  }
}

async function subscribe(port, targetUrl) {
  const response = await fetch(`http://127.0.0.1:${port}/helpdesk/api/v1/webhooks`, {
    method: 'POST',
    headers: HEADERS,
    body: JSON.stringify({ webhook: { name: 'bench', targetUrl, events: ['ticket.created'] } }),
  });
  if (response.status !== 201) throw new Error(`webhook: ${response.status} ${await response.text()}`);
}

/** The collector in a process of its own: its work does not share the bench's event loop. */
async function startCollector() {
  const child = fork(fileURLToPath(import.meta.url), ['collector'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const port = await new Promise((resolve, reject) => {
    child.once('message', (m) => resolve(m.port));
    exited.then((code) => reject(new Error(`the collector exited with ${code}`)));
  });
  return {
    origin: `http://127.0.0.1:${port}`,
    received: () =>
      new Promise((resolve) => {
        child.once('message', (m) => resolve(m));
        child.send('count');
      }),
    stop: async () => {
      child.kill();
      await exited;
    },
  };
}

/** An OTLP/HTTP endpoint that reads every export whole and acknowledges it. */
async function serveCollector() {
  let exports = 0;
  let bytes = 0;
  const server = createServer((request, response) => {
    request.on('data', (chunk) => (bytes += chunk.length));
    request.on('end', () => {
      exports += 1;
      response.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
  process.on('message', () => process.send({ exports, bytes }));
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] === 'collector') await serveCollector();
