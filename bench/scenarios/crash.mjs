// Crash recovery under load (issue 19, target 5): one `helpdesk serve` creates tickets (autocannon,
// 16 connections, BENCH_CRASH_EVENTS of them) and delivers them to the receiver meanwhile; once a
// quarter of them has arrived it is killed with SIGKILL, and started again at once on the same
// database. Read from the database at the kill: the deliveries it held leases on (`held`). Then:
//
// - restartToHealthyMs: from the new process's spawn to its /healthz answering;
// - restartToLastRedeliveryMs / killToLastRedeliveryMs: to the moment the last of the held
//   deliveries is recorded as succeeded (polled every 20 ms, so up to that much late; the record
//   follows the receiver's answer by a few ms);
// - duplicates: requests the receiver got beyond one per delivery, once everything has drained
//   (the dead process's attempts that had reached the receiver but not its record).
//
// With BENCH_CRASH_BASELINE (a checkout built before the workers' heartbeats, e.g. main before
// migration 0016, `npx tsc -p tsconfig.build.json`), the same runs with that build too, the two
// taking turns; without it, this build only. The lease is the default 60 s in both.
//
// BENCH_CRASH_BASELINE  a checkout built before the heartbeats (optional)
// BENCH_CRASH_ROUNDS    runs of each build (default 2)
// BENCH_CRASH_EVENTS    tickets created per run (default 20000)
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import autocannon from 'autocannon';
import Database from 'better-sqlite3';
import pg from 'pg';
import { dropDatabase, freePort, helpdeskEnv, newDatabaseUrl, sleep, startHelpdesk } from '../lib.mjs';
import { BODY, HEADERS } from './api.mjs';

export async function run(ctx, dialect) {
  const baseline = process.env.BENCH_CRASH_BASELINE;
  const rounds = Math.max(1, Number(process.env.BENCH_CRASH_ROUNDS ?? 2));
  const events = Number(process.env.BENCH_CRASH_EVENTS ?? 20_000);
  const builds = baseline ? ['heartbeat', 'baseline'] : ['heartbeat'];
  const runs = [];
  for (let round = 0; round < rounds; round += 1) {
    for (const build of builds.map((_, i) => builds[(i + round) % builds.length])) {
      const bin = build === 'baseline' ? resolve(baseline, 'bin/helpdesk.js') : 'bin/helpdesk.js';
      runs.push({ build, ...(await crashOnce(ctx, dialect, bin, events)) });
    }
  }
  const worst = (build, key) => Math.max(...runs.filter((r) => r.build === build).map((r) => r[key]));
  return {
    baseline: baseline ?? null,
    runs,
    restartToLastRedeliveryMs: worst('heartbeat', 'restartToLastRedeliveryMs'),
    ...(baseline ? { baselineRestartToLastRedeliveryMs: worst('baseline', 'restartToLastRedeliveryMs') } : {}),
    peakRssMb: Math.max(...runs.map((r) => r.peakRssMb)),
  };
}

/**
 * Ports of this scenario's own, above lib.mjs's range: another bench on the machine at the same
 * time takes lib.mjs's ports from the same start, and once found the restarted serve's /healthz
 * on its port and queued its tickets into this database.
 */
const PORT_OFFSET = 5_000;

async function crashOnce(ctx, dialect, bin, events) {
  const url = await newDatabaseUrl(dialect);
  const db = await openReader(url);
  const port = freePort() + PORT_OFFSET;
  const env = helpdeskEnv(url, ctx.tls);
  let server = null;
  try {
    server = await startHelpdesk('serve', env, { port, bin });
    const subscribed = await fetch(`http://127.0.0.1:${port}/helpdesk/api/v1/webhooks`, {
      method: 'POST',
      headers: HEADERS,
      body: JSON.stringify({ webhook: { name: 'bench', targetUrl: ctx.receiver.url, events: ['ticket.created'] } }),
    });
    if (subscribed.status !== 201) throw new Error(`webhook: ${subscribed.status} ${await subscribed.text()}`);
    const webhookId = (await subscribed.json()).webhook.id;
    if (!/^whk_\w+$/.test(webhookId)) throw new Error(`webhook id: ${webhookId}`);
    const before = await ctx.receiver.count();

    // Tickets go in while the same process delivers them; it dies a quarter of the way through.
    const load = autocannon({ url: `http://127.0.0.1:${port}/helpdesk/api/v1/tickets`, method: 'POST', headers: HEADERS, body: BODY, connections: 16, amount: events }, () => undefined);
    while ((await ctx.receiver.count()) - before < events / 4) await sleep(20);
    const load1 = loadavg()[0];
    const firstPeak = await server.kill('SIGKILL');
    const killedAt = performance.now();
    load.stop();
    const mine = `webhook_id = '${webhookId}'`;
    const held = (await db.query(`select id from deliveries where ${mine} and leased_by is not null`)).map((row) => row.id);
    const created = Number((await db.query(`select count(*) as n from deliveries where ${mine}`))[0].n);
    const others = Number((await db.query(`select count(*) as n from webhooks where id <> '${webhookId}'`))[0].n);
    if (others > 0) throw new Error('another process subscribed a webhook in this database: another bench took the same port');

    const restartAt = performance.now();
    server = await startHelpdesk('serve', env, { port, bin });
    const healthyAt = performance.now();
    const heldList = held.map((id) => `'${id}'`).join(',');
    const unfinished = async (where) => Number((await db.query(`select count(*) as n from deliveries where ${mine} and status <> 'succeeded'${where}`))[0].n);
    let lastRedeliveryAt = restartAt;
    if (held.length > 0) {
      while ((await unfinished(` and id in (${heldList})`)) > 0) {
        if (performance.now() - restartAt > 180_000) throw new Error('the held deliveries were not redelivered within 180 s');
        await sleep(20);
      }
      lastRedeliveryAt = performance.now();
    }
    while ((await unfinished('')) > 0) {
      if (performance.now() - restartAt > 600_000) throw new Error('the deliveries were not all delivered within 600 s of the restart');
      await sleep(50);
    }
    const duplicates = (await ctx.receiver.count()) - before - created;
    const peakRssMb = Math.max(firstPeak, await server.stop());
    server = null;
    return {
      held: held.length,
      created,
      restartToHealthyMs: Math.round(healthyAt - restartAt),
      restartToLastRedeliveryMs: Math.round(lastRedeliveryAt - restartAt),
      killToLastRedeliveryMs: Math.round(lastRedeliveryAt - killedAt),
      duplicates,
      loadAverage: Number(load1.toFixed(2)),
      peakRssMb,
    };
  } finally {
    await server?.kill();
    await db.close();
    await dropDatabase(url);
  }
}

/** Reads the database under test from here, beside the process that writes it. */
async function openReader(url) {
  if (url.startsWith('sqlite:')) {
    let sqlite = null;
    // The file exists once serve has migrated it.
    const open = () => (sqlite ??= new Database(url.slice('sqlite:'.length), { readonly: true, fileMustExist: true }));
    return { query: async (text) => open().prepare(text).all(), close: async () => sqlite?.close() };
  }
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  return { query: async (text) => (await client.query(text)).rows, close: () => client.end() };
}
