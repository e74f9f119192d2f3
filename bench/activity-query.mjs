// The cost of a webhook's activity (GET /webhooks/:id/activity, docs/api.md "Activity") on a busy
// webhook, outside `npm run bench`: `npm run build`, then
//   node bench/activity-query.mjs sqlite [attempts]
//   node bench/activity-query.mjs postgres [attempts] postgres://postgres@127.0.0.1:5432/<an empty database>
// It writes `attempts` attempts of one webhook in the last 24 h (two per delivery), as many older
// deliveries of it (retention's worth, no attempt in the window) and `attempts` attempts of another
// webhook in the window, then times the query three times, with and without latencies, for a
// webhook with none, and with the latency once more without migration 0015's index.
import { performance } from 'node:perf_hooks';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
const root = new URL('../dist/', import.meta.url).href;
const { parseDatabaseUrl } = await import(root + 'config.js');
const { openDatabase } = await import(root + 'db/connection.js');
const { migrateToLatest } = await import(root + 'db/migrate.js');
const { attemptActivity } = await import(root + 'delivery/delivery-log.repository.js');
const dialect = process.argv[2] ?? 'sqlite';
const N = Number(process.argv[3] ?? 1_000_000);
const file = join(tmpdir(), `helpdesk-activity-bench-${process.pid}.db`);
const url = dialect === 'sqlite' ? `sqlite:${file}` : process.argv[4];
if (!url) throw new Error('postgres needs the URL of an empty database');
const handle = openDatabase(parseDatabaseUrl(url));
const { db } = handle;
await migrateToLatest(db, handle.capabilities);
const now = Date.now();
const iso = (ms) => new Date(ms).toISOString();
await sql`insert into webhooks (id, name, target_url, events, active, signing_secret, created_at, updated_at) values ('whk_busy', 'b', 'https://x', '[]', 1, 's', ${iso(now)}, ${iso(now)}), ('whk_other', 'o', 'https://x', '[]', 1, 's', ${iso(now)}, ${iso(now)})`.execute(db);
await sql`insert into events (id, type, payload, created_at) values ('evt_1', 'ticket.created', '{}', ${iso(now)})`.execute(db);
const t0 = performance.now();
// Deliveries: N/2 of the busy webhook in the window (two attempts each), N older ones of it, N/2 of another in the window.
const batch = 20_000;
async function fill(prefix, webhook, count, startMs, spanMs, attemptsEach) {
  for (let from = 0; from < count; from += batch) {
    const n = Math.min(batch, count - from);
    const rows = Array.from({ length: n }, (_, k) => {
      const i = from + k;
      const at = startMs + Math.floor((i / count) * spanMs);
      return { id: `${prefix}${i}`, at };
    });
    await db.transaction().execute(async (trx) => {
      const deliveries = rows.map((r) => ({ id: r.id, webhook_id: webhook, event_id: 'evt_1', event_type: 'ticket.created', ticket_id: null, held: 0, expedited: 0, status: 'succeeded', attempt_count: attemptsEach, schedule_attempts: attemptsEach, next_attempt_at: null, last_attempt_at: iso(r.at + 1000), created_at: iso(r.at), updated_at: iso(r.at) }));
      for (let d = 0; d < deliveries.length; d += 1000) await trx.insertInto('deliveries').values(deliveries.slice(d, d + 1000)).execute();
      if (attemptsEach > 0) {
        const attempts = rows.flatMap((r, k) => Array.from({ length: attemptsEach }, (_, j) => ({ id: `att_${r.id}_${j}`, delivery_id: r.id, attempted_at: iso(r.at + j * 1000), status_code: j === 0 && k % 10 === 0 ? 500 : 200, duration_ms: 50 + ((k * 37) % 900), error: j === 0 && k % 10 === 0 ? 'http_status' : null })));
        for (let a = 0; a < attempts.length; a += 2000) await trx.insertInto('attempts').values(attempts.slice(a, a + 2000)).execute();
      }
    });
  }
}
const DAY = 86_400_000;
await fill('msg_busy_', 'whk_busy', N / 2, now - DAY + 60_000, DAY - 120_000, 2);
await fill('msg_old_', 'whk_busy', N, now - 30 * DAY, 29 * DAY - 60_000, 0);
await fill('msg_other_', 'whk_other', N / 2, now - DAY + 60_000, DAY - 120_000, 2);
if (dialect === 'postgres') await sql`analyze`.execute(db);
console.log(`filled in ${Math.round(performance.now() - t0)} ms`);
const window = { from: iso(Math.floor((now - DAY) / 900_000) * 900_000 + 900_000), to: iso(Math.floor(now / 900_000) * 900_000 + 900_000), intervalMinutes: 15 };
async function time(label, run) {
  const times = [];
  let rows;
  for (let i = 0; i < 3; i += 1) { const s = performance.now(); rows = await run(); times.push(performance.now() - s); }
  console.log(`${label}: ${times.map((t) => Math.round(t)).join(', ')} ms, ${rows.length} rows, ${rows.reduce((s, r) => s + Number(r.total), 0)} attempts`);
}
await time('busy webhook with latency', () => attemptActivity(db, handle.capabilities, ['whk_busy'], window, true));
await time('busy webhook, counts only', () => attemptActivity(db, handle.capabilities, ['whk_busy'], window, false));
await time('quiet webhook', () => attemptActivity(db, handle.capabilities, ['whk_none'], window, true));
await sql`drop index deliveries_webhook_attempted_idx`.execute(db);
if (dialect === 'postgres') await sql`analyze`.execute(db);
await time('busy webhook with latency, without the 0015 index', () => attemptActivity(db, handle.capabilities, ['whk_busy'], window, true));
await handle.close();
if (dialect === 'sqlite') for (const suffix of ['', '-wal', '-shm']) rmSync(file + suffix, { force: true });
