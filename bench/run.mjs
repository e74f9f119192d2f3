// Benchmark harness (issue 4, part 1): the raw limit of this machine and the delivery
// throughput of one `helpdesk serve` draining a queued backlog, on SQLite and PostgreSQL,
// measured in one run and printed as ratios. Run by hand: `npm run build && npm run bench`.
// BENCH_EVENTS (default 5000) and BENCH_SECONDS (raw limit duration, default 5) tune it.
import { execFileSync, spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { Pool } from 'undici';
import { loadConfig } from '../dist/config.js';
import { createLogger } from '../dist/logger.js';
import { createRuntime } from '../dist/runtime.js';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 5000);
const RAW_SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const IN_FLIGHT = 64;
const TOKEN = 'bench-admin-token-0123456789';
const POSTGRES_ADMIN = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

function certificates() {
  const dir = mkdtempSync(join(tmpdir(), 'helpdesk-bench-'));
  const run = (args) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=Bench CA']);
  writeFileSync(join(dir, 'leaf.ext'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n');
  run(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', '/CN=127.0.0.1']);
  run(['x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'leaf.pem', '-days', '1', '-extfile', 'leaf.ext']);
  return { dir, ca: join(dir, 'ca.pem'), cert: join(dir, 'leaf.pem'), key: join(dir, 'leaf.key') };
}

async function startReceiver(tls) {
  const child = spawn(process.execPath, ['bench/receiver.mjs', tls.cert, tls.key], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const port = await new Promise((resolve) => child.once('message', (m) => resolve(m.port)));
  const count = () =>
    new Promise((resolve) => {
      child.once('message', (m) => resolve(m.count));
      child.send('count');
    });
  return { url: `https://127.0.0.1:${port}/hook`, origin: `https://127.0.0.1:${port}`, count, stop: () => child.send('stop') };
}

/** What the machine can do: 64 signed 1 KB POSTs in flight over one keep-alive pool. */
async function rawLimit(receiver, tls) {
  const pool = new Pool(receiver.origin, { connections: IN_FLIGHT, connect: { ca: readFileSync(tls.ca, 'utf8') } });
  const body = JSON.stringify({ event: 'ticket.created', timestamp: new Date().toISOString(), data: { padding: 'x'.repeat(900) } });
  const key = randomBytes(32);
  let sent = 0;
  const deadline = performance.now() + RAW_SECONDS * 1000;
  const loop = async () => {
    while (performance.now() < deadline) {
      const id = `msg_${randomBytes(12).toString('hex')}`;
      const ts = Math.floor(Date.now() / 1000);
      const signature = createHmac('sha256', key).update(`${id}.${ts}.${body}`).digest('base64');
      const response = await pool.request({
        path: '/hook',
        method: 'POST',
        headers: { 'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': `v1,${signature}` },
        body,
      });
      await response.body.dump();
      if (response.statusCode === 200) sent += 1;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: IN_FLIGHT }, loop));
  const seconds = (performance.now() - started) / 1000;
  await pool.close();
  return sent / seconds;
}

async function databaseUrl(dialect) {
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

async function postgresReachable() {
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

/** Queues EVENTS ticket.created events through the API and service layer, worker off. */
async function queueBacklog(url, receiver) {
  const env = { HELPDESK_DATABASE_URL: url, HELPDESK_ADMIN_TOKEN: TOKEN, HELPDESK_ALLOW_PRIVATE_TARGETS: 'true', HELPDESK_LOG_LEVEL: 'silent' };
  const config = loadConfig(env);
  const runtime = await createRuntime(config, { logger: createLogger('silent') });
  await runtime.auth.bootstrap();
  const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
  const webhook = await runtime.app.inject({
    method: 'POST',
    url: '/helpdesk/api/v1/webhooks',
    headers,
    payload: JSON.stringify({ webhook: { name: 'bench', targetUrl: receiver.url, events: ['ticket.created'] } }),
  });
  if (webhook.statusCode !== 201) throw new Error(`webhook: ${webhook.body}`);
  const payload = JSON.stringify({ ticket: { subject: 'benchmark ticket', description: 'x'.repeat(600), tags: ['bench'] } });
  for (let i = 0; i < EVENTS; i += 1) {
    const response = await runtime.app.inject({ method: 'POST', url: '/helpdesk/api/v1/tickets', headers, payload });
    if (response.statusCode !== 201) throw new Error(`ticket: ${response.body}`);
  }
  await runtime.close(1000);
  return env;
}

/** One `helpdesk serve` process drains the backlog; deliveries/s from first to last arrival. */
async function drain(env, receiver, tls) {
  const before = await receiver.count();
  const child = spawn(process.execPath, ['bin/helpdesk.js', 'serve'], {
    env: { ...process.env, ...env, HELPDESK_PORT: '0', NODE_EXTRA_CA_CERTS: tls.ca },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  let firstAt = null;
  let firstCount = 0;
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    const delivered = (await receiver.count()) - before;
    if (firstAt === null && delivered > 0) {
      firstAt = performance.now();
      firstCount = delivered;
    }
    if (delivered >= EVENTS) {
      const seconds = (performance.now() - firstAt) / 1000;
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
      return (delivered - firstCount) / seconds;
    }
  }
}

const tls = certificates();
const receiver = await startReceiver(tls);
const results = { date: new Date().toISOString(), events: EVENTS, rawSeconds: RAW_SECONDS, scenarios: {} };
try {
  const raw = await rawLimit(receiver, tls);
  results.scenarios.rawLimit = { deliveriesPerSecond: raw };
  const dialects = ['sqlite', ...((await postgresReachable()) ? ['postgres'] : [])];
  for (const dialect of dialects) {
    const env = await queueBacklog(await databaseUrl(dialect), receiver);
    const rate = await drain(env, receiver, tls);
    results.scenarios[`throughput_${dialect}`] = { deliveriesPerSecond: rate, ratioToRawLimit: rate / raw };
  }
  // Measured again at the end: the machine is shared and drifts.
  results.scenarios.rawLimitAfter = { deliveriesPerSecond: await rawLimit(receiver, tls) };
} finally {
  receiver.stop();
}

const rows = Object.entries(results.scenarios).map(([name, r]) => [
  name.padEnd(22),
  r.deliveriesPerSecond.toFixed(0).padStart(10),
  r.ratioToRawLimit === undefined ? '' : `${r.ratioToRawLimit.toFixed(3)} x raw limit`,
]);
process.stdout.write(`\nscenario                  deliveries/s\n${rows.map((r) => r.join('  ')).join('\n')}\n`);
mkdirSync('bench/results', { recursive: true });
const file = join('bench/results', `${results.date.slice(0, 19).replaceAll(':', '-')}.json`);
writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
process.stdout.write(`written to ${file}\n`);
