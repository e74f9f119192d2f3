// Shared pieces of the benchmark: certificates, the receiver child, databases, the Helpdesk
// processes under test and their peak RSS. Plain JS on the built server (dist/), run by hand.
import { execFileSync, spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export const TOKEN = 'bench-admin-token-0123456789';
/**
 * Every process of a run (and the in-process queueing) seals and opens with this key, as
 * production sets one (docs/deployment.md); without it each run warned and shared a key file.
 */
export const SECRET_KEY = Buffer.alloc(32, 7).toString('base64');
/**
 * One key sends the whole load, far above the default 100 requests/s per key: the rate limiter
 * still runs on every request (its cost is measured), at a limit the load never reaches.
 */
export const RATE_LIMIT = '10000000';
export const POSTGRES_ADMIN = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
/** Extra node flags for the Helpdesk processes under test, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`. */
const NODE_FLAGS = (process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean);
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A CA trusted through NODE_EXTRA_CA_CERTS and a leaf for 127.0.0.1 signed by it. */
export function certificates() {
  const dir = mkdtempSync(join(tmpdir(), 'helpdesk-bench-'));
  const run = (args) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=Bench CA']);
  writeFileSync(join(dir, 'leaf.ext'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n');
  run(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', '/CN=127.0.0.1']);
  run(['x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'leaf.pem', '-days', '1', '-extfile', 'leaf.ext']);
  const ca = join(dir, 'ca.pem');
  return { dir, ca, caPem: readFileSync(ca, 'utf8'), cert: join(dir, 'leaf.pem'), key: join(dir, 'leaf.key') };
}

/**
 * The receiver, in its own process (bench/receiver.mjs). `count()` is how many requests it has
 * answered; `latencies()` returns and clears the event-to-receiver latencies (ms) it measured
 * since `trackLatency(true)`, read from the `timestamp` of each event.
 */
export async function startReceiver(tls) {
  const child = spawn(process.execPath, ['bench/receiver.mjs', tls.cert, tls.key], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const port = await new Promise((resolve) => child.once('message', (m) => resolve(m.port)));
  const ask = (message, key) =>
    new Promise((resolve) => {
      child.once('message', (m) => resolve(m[key]));
      child.send(message);
    });
  return {
    url: `https://127.0.0.1:${port}/hook`,
    origin: `https://127.0.0.1:${port}`,
    count: () => ask('count', 'count'),
    trackLatency: (on) => ask(on ? 'latency-on' : 'latency-off', 'ok'),
    latencies: () => ask('latencies', 'latencies'),
    stop: () => child.send('stop'),
  };
}

export async function postgresReachable() {
  const client = new pg.Client({ connectionString: POSTGRES_ADMIN, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** A new empty database: a SQLite file in a temporary directory, or a PostgreSQL database. */
export async function newDatabaseUrl(dialect) {
  if (dialect === 'sqlite') return `sqlite:${join(mkdtempSync(join(tmpdir(), 'helpdesk-bench-db-')), 'bench.db')}`;
  const name = `helpdesk_bench_${randomBytes(4).toString('hex')}`;
  const client = new pg.Client({ connectionString: POSTGRES_ADMIN });
  await client.connect();
  await client.query(`create database ${name}`);
  await client.end();
  const url = new URL(POSTGRES_ADMIN);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Drops the benchmark's PostgreSQL databases (SQLite files live in tmp). */
export async function dropDatabase(url) {
  if (url.startsWith('sqlite:')) return;
  const name = new URL(url).pathname.slice(1);
  const client = new pg.Client({ connectionString: POSTGRES_ADMIN });
  await client.connect();
  await client.query(`drop database if exists ${name} with (force)`);
  await client.end();
}

/** The environment of a Helpdesk process under test. */
export function helpdeskEnv(url, tls, extra = {}) {
  return {
    ...process.env,
    HELPDESK_DATABASE_URL: url,
    HELPDESK_ADMIN_TOKEN: TOKEN,
    HELPDESK_SECRET_KEY: SECRET_KEY,
    HELPDESK_ALLOW_PRIVATE_TARGETS: 'true',
    HELPDESK_LOG_LEVEL: 'silent',
    HELPDESK_PORT: '0',
    HELPDESK_RATE_LIMIT: RATE_LIMIT,
    NODE_EXTRA_CA_CERTS: tls.ca,
    ...extra,
  };
}

/**
 * The node flags on a build's bin/helpdesk.js first line (`#!/usr/bin/env -S node <flags>`):
 * the server is measured as `npx helpdesk` starts it.
 */
function shebangFlags(bin) {
  const first = readFileSync(bin, 'utf8').split('\n', 1)[0];
  const match = /^#!\S*env -S node(.*)$/.exec(first);
  return match ? match[1].split(' ').filter(Boolean) : [];
}

/**
 * Starts `helpdesk <command>` and samples its RSS every 100 ms from /proc. With `port`, waits
 * until the API answers. `stop()` sends SIGTERM and resolves with the peak RSS in MB.
 * `bin`: another build's bin/helpdesk.js (a baseline checkout), this one's by default.
 */
export async function startHelpdesk(command, env, { port, bin = 'bin/helpdesk.js' } = {}) {
  const child = spawn(process.execPath, [...shebangFlags(bin), ...NODE_FLAGS, bin, command], {
    env: { ...env, ...(port ? { HELPDESK_PORT: String(port) } : {}) },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  let peakRss = 0;
  const sample = () => {
    try {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      peakRss = Math.max(peakRss, kb / 1024);
    } catch {
      // exited
    }
  };
  const sampler = setInterval(sample, 100);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  let exitCode;
  void exited.then((code) => (exitCode = code));
  if (port) {
    for (;;) {
      // A process that died at start (its log is silent) would otherwise be polled forever.
      if (exitCode !== undefined) {
        clearInterval(sampler);
        throw new Error(`helpdesk ${command} exited with ${exitCode} before answering on port ${port}`);
      }
      try {
        const response = await fetch(`http://127.0.0.1:${port}/healthz`);
        if (response.ok) break;
      } catch {
        // not listening yet
      }
      await sleep(50);
    }
  }
  return {
    child,
    peakRss: () => peakRss,
    kill: async (signal = 'SIGKILL') => {
      child.kill(signal);
      await exited;
      clearInterval(sampler);
      return peakRss;
    },
    stop: async () => {
      sample();
      child.kill('SIGTERM');
      await exited;
      clearInterval(sampler);
      return peakRss;
    },
  };
}

// Below the kernel's ephemeral range (32768-60999 here): a port in it may be taken at any moment
// as the local end of an outgoing connection, and a server started on it then fails to listen.
let nextPort = 21100;
/** A port for a process under test (the bench owns this range on loopback). */
export function freePort() {
  nextPort += 1;
  return nextPort;
}

/** Percentile of an unsorted array. */
export function percentile(values, p) {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** Waits until the receiver has counted `target` requests; returns deliveries/s from the first to the last. */
export async function measureDrain(receiver, before, target, { timeoutMs = 600_000 } = {}) {
  let firstAt = null;
  let firstCount = 0;
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    await sleep(50);
    const delivered = (await receiver.count()) - before;
    if (firstAt === null && delivered > 0) {
      firstAt = performance.now();
      firstCount = delivered;
    }
    if (delivered >= target) return (delivered - firstCount) / ((performance.now() - firstAt) / 1000);
    if (performance.now() > deadline) throw new Error(`drain timed out at ${delivered}/${target}`);
  }
}

/**
 * One signed POST of `body` to the receiver through an undici Pool, as Standard Webhooks signs
 * it: the same send for the raw limit and for the peer. Returns the status code.
 */
export async function postSigned(pool, key, id, body) {
  const ts = Math.floor(Date.now() / 1000);
  const signature = createHmac('sha256', key).update(`${id}.${ts}.${body}`).digest('base64');
  const response = await pool.request({
    path: '/hook',
    method: 'POST',
    headers: { 'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': `v1,${signature}` },
    body,
  });
  await response.body.dump();
  return response.statusCode;
}
