// backlog growth: claiming must cost the same whether 10,000 or BENCH_BACKLOG (default
// 1,000,000) deliveries are pending. For each size, the pending rows are bulk-inserted in SQL,
// then the claim query the worker runs is timed directly, and one `helpdesk serve` delivers for
// BENCH_SECONDS (the backlog is not drained).
import Database from 'better-sqlite3';
import { CompiledQuery } from 'kysely';
import pg from 'pg';
import { loadConfig } from '../../dist/config.js';
import { claimDueDeliveries, releaseLeases } from '../../dist/delivery/deliveries.repository.js';
import { openMigratedDatabase } from '../../dist/runtime.js';
import { dropDatabase, freePort, helpdeskEnv, newDatabaseUrl, percentile, sleep, startHelpdesk, SECRET_KEY, TOKEN } from '../lib.mjs';
import { queueBacklog } from './throughput.mjs';

const SMALL = 10_000;
const CLAIMS = 200;
/** Claims run first and not timed: the first ones pay for cold pages and statement preparation. */
const WARMUP_CLAIMS = 10;
const CLAIM_LIMIT = 16;
const WORKER_ID = 'bench-claimer';
const FIRST_DELIVERY_TIMEOUT_MS = 60_000;

export async function run(ctx, dialect) {
  const small = await measure(ctx, dialect, SMALL);
  const large = await measure(ctx, dialect, ctx.backlog);
  return {
    small,
    large,
    ratio: large.deliveriesPerSecond / small.deliveriesPerSecond,
    claimRatio: large.claimMedianMs / small.claimMedianMs,
  };
}

async function measure(ctx, dialect, pending) {
  const url = await newDatabaseUrl(dialect);
  try {
    const config = loadConfig({ HELPDESK_DATABASE_URL: url, HELPDESK_ADMIN_TOKEN: TOKEN, HELPDESK_SECRET_KEY: SECRET_KEY, HELPDESK_ALLOW_PRIVATE_TARGETS: 'true' });
    // Migrates, and makes the webhook and one real event (with its payload) through the service.
    await queueBacklog(url, ctx.receiver, { events: 1 });
    const started = performance.now();
    const at = new Date(Date.now() - 1000).toISOString();
    await (dialect === 'sqlite' ? fillSqlite(config.database.path, pending, at) : fillPostgres(url, pending, at));
    const insertSeconds = (performance.now() - started) / 1000;
    const claims = await timeClaims(config);
    const serve = await serveRate(ctx, url, pending);
    return { pending, insertSeconds, ...claims, ...serve };
  } finally {
    await dropDatabase(url);
  }
}

// The seed's one delivery is replaced so that exactly `count` rows are pending, all due, for the
// seed's webhook and event. Every row has the same due time: they are claimed in `seq` order.
const COLUMNS = `id, webhook_id, event_id, event_type, status, attempt_count, schedule_attempts, next_attempt_at,
  lease_expires_at, leased_by, last_attempt_at, last_status_code, created_at, updated_at`;

async function fillPostgres(connectionString, count, at) {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    const { rows } = await client.query('select webhook_id, event_id, event_type from deliveries');
    const [seed] = rows;
    await client.query('begin');
    await client.query('delete from deliveries');
    await client.query(
      `insert into deliveries (${COLUMNS})
       select 'msg_bench_' || n, $1, $2, $3, 'pending', 0, 0, $4, null, null, null, null, $4, $4
       from generate_series(1, $5::int) as n`,
      [seed.webhook_id, seed.event_id, seed.event_type, at, count],
    );
    await client.query('commit');
    await client.query('analyze');
  } finally {
    await client.end();
  }
}

/** One statement (a recursive CTE) rather than a prepared insert per row: 1M rows stay in SQLite's C code. */
function fillSqlite(path, count, at) {
  const sqlite = new Database(path);
  try {
    const seed = sqlite.prepare('select webhook_id, event_id, event_type from deliveries').get();
    sqlite.transaction(() => {
      sqlite.prepare('delete from deliveries').run();
      sqlite
        .prepare(
          `with recursive n(i) as (select 1 union all select i + 1 from n where i < @count)
           insert into deliveries (${COLUMNS})
           select 'msg_bench_' || i, @webhook_id, @event_id, @event_type, 'pending', 0, 0, @at, null, null, null, null, @at, @at
           from n`,
        )
        .run({ ...seed, count, at });
    })();
    sqlite.exec('analyze');
  } finally {
    sqlite.close();
  }
}

/**
 * Times the worker's claim (the built repository function, so whatever SQL it runs today) for
 * CLAIM_LIMIT rows, each claim's leases released before the next so that every claim faces the
 * same full backlog.
 */
async function timeClaims(config) {
  const database = await openMigratedDatabase(config);
  try {
    const times = [];
    for (let i = 0; i < WARMUP_CLAIMS + CLAIMS; i += 1) {
      const now = Date.now();
      const started = performance.now();
      const claimed = await claimDueDeliveries(database.db, database.capabilities, {
        workerId: WORKER_ID,
        now: new Date(now).toISOString(),
        leaseExpiresAt: new Date(now + 60_000).toISOString(),
        limit: CLAIM_LIMIT,
        skipWebhookIds: [],
      });
      const elapsed = performance.now() - started;
      if (claimed.length !== CLAIM_LIMIT) throw new Error(`claimed ${claimed.length} of ${CLAIM_LIMIT}`);
      await releaseLeases(database.db, WORKER_ID, claimed.map((d) => d.id));
      if (i >= WARMUP_CLAIMS) times.push(elapsed);
    }
    return { claimMedianMs: percentile(times, 50), claimP99Ms: percentile(times, 99), claimPlan: await claimPlan(database) };
  } finally {
    await database.close();
  }
}

/**
 * The plan of the claim's statement as the worker sends it (caught as it is compiled): on
 * PostgreSQL `EXPLAIN (ANALYZE, BUFFERS)`, run in a transaction that is rolled back; on SQLite
 * `EXPLAIN QUERY PLAN`, which runs nothing.
 */
async function claimPlan(database) {
  let claim = null;
  const catching = database.db.withPlugin({
    transformQuery: ({ node, queryId }) => {
      if (claim === null && node.kind === 'UpdateQueryNode') claim = database.db.getExecutor().compileQuery(node, queryId);
      return node;
    },
    transformResult: async ({ result }) => result,
  });
  const now = Date.now();
  const claimed = await claimDueDeliveries(catching, database.capabilities, {
    workerId: WORKER_ID,
    now: new Date(now).toISOString(),
    leaseExpiresAt: new Date(now + 60_000).toISOString(),
    limit: CLAIM_LIMIT,
    skipWebhookIds: [],
  });
  await releaseLeases(database.db, WORKER_ID, claimed.map((d) => d.id));
  const postgres = database.capabilities.dialect === 'postgres';
  const explain = CompiledQuery.raw(`${postgres ? 'explain (analyze, buffers)' : 'explain query plan'} ${claim.sql}`, [...claim.parameters]);
  return database.db.connection().execute(async (connection) => {
    if (postgres) await connection.executeQuery(CompiledQuery.raw('begin'));
    try {
      const { rows } = await connection.executeQuery(explain);
      return rows.map((row) => (postgres ? row['QUERY PLAN'] : row.detail));
    } finally {
      if (postgres) await connection.executeQuery(CompiledQuery.raw('rollback'));
    }
  });
}

/**
 * Deliveries/s of one `helpdesk serve` over ctx.seconds from its first delivery (start-up is not
 * timed). The window ends early once most of the backlog is gone: a small backlog drained
 * within it would show an emptying queue, not the cost of a full one.
 */
async function serveRate(ctx, url, pending) {
  const before = await ctx.receiver.count();
  const server = await startHelpdesk('serve', helpdeskEnv(url, ctx.tls), { port: freePort() });
  try {
    const from = await firstDelivery(ctx.receiver, before);
    const startedAt = performance.now();
    let [delivered, countedAt] = [from, startedAt];
    while (countedAt - startedAt < ctx.seconds * 1000 && delivered - before < pending * 0.8) {
      await sleep(100);
      delivered = await ctx.receiver.count();
      countedAt = performance.now();
    }
    const deliveriesPerSecond = (delivered - from) / ((countedAt - startedAt) / 1000);
    return { deliveriesPerSecond, peakRssMb: await server.stop() };
  } catch (error) {
    await server.kill();
    throw error;
  }
}

/** The receiver's count once the first delivery since `before` has arrived. */
async function firstDelivery(receiver, before) {
  const deadline = performance.now() + FIRST_DELIVERY_TIMEOUT_MS;
  for (;;) {
    const count = await receiver.count();
    if (count > before) return count;
    if (performance.now() > deadline) throw new Error('no delivery arrived');
    await sleep(50);
  }
}
