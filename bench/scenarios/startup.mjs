// Start-up (issue 19, target 6): how long `helpdesk serve` and `helpdesk worker` take, from the
// spawn of the process, to answer on an existing database (migrated, with a ticket in it):
//
// - serve: to the first 200 of GET /healthz, then of an authenticated GET /helpdesk/api/v1/tickets,
//   then of the console page (GET /admin/), each timed from the spawn, asked in that order as a
//   load balancer, a client and a person would;
// - worker: to the first 200 of GET /healthz on HELPDESK_WORKER_PORT.
//
// Every address is polled every BENCH_STARTUP_POLL_MS (default 5) from the spawn. Against a
// baseline build (BENCH_STARTUP_BASELINE, the path of a checkout built with `npx tsc -p
// tsconfig.build.json` and `npx vite build --config admin/vite.config.ts`), the two builds take
// turns, run after run, on the same database (the machine drifts; see filters.mjs). The load
// average is recorded before and after: the target is for an idle machine.
//
// BENCH_STARTUP_BASELINE  a checkout built before the change (optional)
// BENCH_STARTUP_RUNS      starts of each build and command (default 10)
// BENCH_STARTUP_POLL_MS   polling interval (default 5)
//
// Also runs alone, on both databases when PostgreSQL is reachable: `node bench/scenarios/startup.mjs`.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dropDatabase, freePort as nextPort, helpdeskEnv, newDatabaseUrl, postgresReachable, sleep, TOKEN } from '../lib.mjs';

const API_PROBE = '/helpdesk/api/v1/tickets?limit=1';

export async function run(ctx, dialect) {
  const baseline = process.env.BENCH_STARTUP_BASELINE;
  const runs = Math.max(1, Number(process.env.BENCH_STARTUP_RUNS ?? 10));
  const pollMs = Number(process.env.BENCH_STARTUP_POLL_MS ?? 5);
  const builds = baseline ? { baseline: resolve(baseline, 'bin/helpdesk.js'), current: 'bin/helpdesk.js' } : { current: 'bin/helpdesk.js' };
  const url = await newDatabaseUrl(dialect);
  const loadBefore = loadavg();
  try {
    await prepare(ctx, url);
    const samples = [];
    for (let i = 0; i < runs; i += 1) {
      // Alternating which build goes first.
      const names = Object.keys(builds);
      for (const build of i % 2 === 0 ? names : names.reverse()) {
        samples.push({ build, command: 'serve', ...(await startServe(ctx, url, builds[build], pollMs)) });
        samples.push({ build, command: 'worker', ...(await startWorker(ctx, url, builds[build], pollMs)) });
      }
    }
    const figures = {};
    for (const build of Object.keys(builds)) {
      for (const [command, probes] of [['serve', ['healthzMs', 'apiMs', 'consoleMs']], ['worker', ['healthzMs']]]) {
        const mine = samples.filter((s) => s.build === build && s.command === command);
        for (const probe of probes) {
          const values = mine.map((s) => s[probe]);
          figures[`${build}_${command}_${probe.replace(/Ms$/, '')}`] = { medianMs: round(median(values)), maxMs: round(Math.max(...values)) };
        }
      }
    }
    const ratio = baseline ? figures.current_serve_healthz.medianMs / figures.baseline_serve_healthz.medianMs : undefined;
    return {
      baseline: baseline ?? null,
      runs,
      ...figures,
      ...(ratio === undefined ? {} : { serveHealthzRatioToBaseline: ratio }),
      loadAverageBefore: loadBefore.map(round2),
      loadAverageAfter: loadavg().map(round2),
    };
  } finally {
    await dropDatabase(url);
  }
}

/**
 * The bench's next port that nothing listens on now: this scenario polls an address before its
 * process listens, and a bench of someone else's on the same port would answer in its place.
 */
async function freePort() {
  for (;;) {
    const port = nextPort();
    const free = await new Promise((resolveFree) => {
      const probe = createServer();
      probe.once('error', () => resolveFree(false));
      probe.listen(port, '127.0.0.1', () => probe.close(() => resolveFree(true)));
    });
    if (free) return port;
  }
}

const round = (ms) => Math.round(ms);
const round2 = (n) => Math.round(n * 100) / 100;

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

function envOf(ctx, url, extra) {
  // No extra CA file to read: no receiver is called.
  const env = helpdeskEnv(url, ctx.tls ?? { ca: '' }, extra);
  delete env.NODE_EXTRA_CA_CERTS;
  return env;
}

/** An existing database: migrated by this build, with a ticket, so that GET /tickets reads a row. */
async function prepare(ctx, url) {
  const port = await freePort();
  const server = spawnHelpdesk('bin/helpdesk.js', 'serve', envOf(ctx, url, { HELPDESK_PORT: String(port), HELPDESK_SERVE_WORKER: 'false' }));
  try {
    await firstOk(server, `http://127.0.0.1:${port}/healthz`, 50);
    const response = await fetch(`http://127.0.0.1:${port}/helpdesk/api/v1/tickets`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ticket: { subject: 'Start-up', description: 'A ticket for GET /tickets to read.' } }),
    });
    if (response.status !== 201) throw new Error(`creating a ticket: ${response.status} ${await response.text()}`);
  } finally {
    await server.stop();
  }
}

function spawnHelpdesk(bin, command, env) {
  const child = spawn(process.execPath, [bin, command], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  let exitCode;
  const exited = new Promise((resolveExit) =>
    child.once('exit', (code) => {
      exitCode = code;
      resolveExit();
    }),
  );
  return {
    exitCode: () => exitCode,
    stop: async () => {
      if (exitCode === undefined) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Polls `url` until it answers 200; resolves when it did. */
async function firstOk(process, url, pollMs, headers = {}) {
  for (;;) {
    if (process.exitCode() !== undefined) throw new Error(`the process exited with ${process.exitCode()} before ${url} answered 200`);
    try {
      const response = await fetch(url, { headers });
      await response.arrayBuffer();
      if (response.status === 200) return;
    } catch {
      // not listening yet
    }
    await sleep(pollMs);
  }
}

async function startServe(ctx, url, bin, pollMs) {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const started = performance.now();
  const server = spawnHelpdesk(bin, 'serve', envOf(ctx, url, { HELPDESK_PORT: String(port) }));
  try {
    await firstOk(server, `${base}/healthz`, pollMs);
    const healthzMs = performance.now() - started;
    await firstOk(server, `${base}${API_PROBE}`, pollMs, { authorization: `Bearer ${TOKEN}` });
    const apiMs = performance.now() - started;
    await firstOk(server, `${base}/admin/`, pollMs);
    const consoleMs = performance.now() - started;
    return { healthzMs, apiMs, consoleMs };
  } finally {
    await server.stop();
  }
}

async function startWorker(ctx, url, bin, pollMs) {
  const port = await freePort();
  const started = performance.now();
  const worker = spawnHelpdesk(bin, 'worker', envOf(ctx, url, { HELPDESK_WORKER_PORT: String(port) }));
  try {
    await firstOk(worker, `http://127.0.0.1:${port}/healthz`, pollMs);
    return { healthzMs: performance.now() - started };
  } finally {
    await worker.stop();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dialects = ['sqlite', ...((await postgresReachable()) ? ['postgres'] : [])];
  for (const dialect of dialects) process.stdout.write(`startup_${dialect}: ${JSON.stringify(await run({}, dialect))}\n`);
}
