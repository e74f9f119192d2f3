// Per-ticket order (issue 14): the cost of holding each ticket's later deliveries until the one
// before it is delivered. The same number of ticket.updated deliveries to one webhook, queued
// with the worker off and drained by one `helpdesk serve`: `ordered`, many changes to each of
// fewer tickets (one delivery per ticket due at a time, the next released when it lands), and
// `unordered`, one change to each of as many tickets (nothing held). Deliveries/s of each.
// The machine drifts by more than the difference measured (one drain's rate moved by a third
// between two runs of the same code), so the two drains alternate, ROUNDS times each, and the
// ratio is of their medians.
import { loadConfig } from '../../dist/config.js';
import { createLogger } from '../../dist/logger.js';
import { createRuntime } from '../../dist/runtime.js';
import { dropDatabase, freePort, helpdeskEnv, measureDrain, newDatabaseUrl, RATE_LIMIT, startHelpdesk, SECRET_KEY, TOKEN } from '../lib.mjs';

/** Deliveries per drain, and changes per ticket in the ordered one. */
const DELIVERIES = 20_000;
const CHANGES_PER_TICKET = 20;
const ROUNDS = Number(process.env.BENCH_ORDERED_ROUNDS ?? 3);

/** Creates `tickets` tickets, subscribes one webhook to ticket.updated, then makes `changesPerTicket` changes to each, interleaved. */
export async function queueChanges(url, receiver, { tickets, changesPerTicket }) {
  const config = loadConfig({ HELPDESK_DATABASE_URL: url, HELPDESK_ADMIN_TOKEN: TOKEN, HELPDESK_SECRET_KEY: SECRET_KEY, HELPDESK_ALLOW_PRIVATE_TARGETS: 'true', HELPDESK_RATE_LIMIT: RATE_LIMIT });
  const runtime = await createRuntime(config, { logger: createLogger('silent') });
  await runtime.auth.bootstrap();
  const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
  const call = async (method, path, body) => {
    const response = await runtime.app.inject({ method, url: `/helpdesk/api/v1${path}`, headers, payload: JSON.stringify(body) });
    if (response.statusCode >= 300) throw new Error(`${method} ${path}: ${response.body}`);
    return JSON.parse(response.body);
  };
  const ids = [];
  let created = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (created < tickets) {
        created += 1;
        ids.push((await call('POST', '/tickets', { ticket: { subject: 'ordered benchmark', description: 'x'.repeat(600) } })).ticket.id);
      }
    }),
  );
  await call('POST', '/webhooks', { webhook: { name: 'bench', targetUrl: receiver.url, events: ['ticket.updated'] } });
  let next = 0;
  const total = tickets * changesPerTicket;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < total) {
        const n = next++;
        await call('PUT', `/tickets/${ids[n % tickets]}`, { ticket: { customFields: { n } } });
      }
    }),
  );
  await runtime.close(1000);
  return total;
}

async function drain(ctx, dialect, shape) {
  const url = await newDatabaseUrl(dialect);
  try {
    const queued = await queueChanges(url, ctx.receiver, shape);
    const before = await ctx.receiver.count();
    const server = await startHelpdesk('serve', helpdeskEnv(url, ctx.tls), { port: freePort() });
    let rate;
    try {
      rate = await measureDrain(ctx.receiver, before, queued);
    } catch (error) {
      // Not left running against a dropped database (a timed-out drain left one so).
      await server.kill();
      throw error;
    }
    const peakRssMb = await server.stop();
    return { deliveriesPerSecond: rate, peakRssMb };
  } finally {
    await dropDatabase(url);
  }
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

export async function run(ctx, dialect) {
  const unordered = [];
  const ordered = [];
  for (let round = 0; round < ROUNDS; round++) {
    // Alternating which goes first, so that a drift within a round weighs on both alike.
    const shapes = [
      [unordered, { tickets: DELIVERIES, changesPerTicket: 1 }],
      [ordered, { tickets: DELIVERIES / CHANGES_PER_TICKET, changesPerTicket: CHANGES_PER_TICKET }],
    ];
    if (round % 2 === 1) shapes.reverse();
    for (const [results, shape] of shapes) results.push(await drain(ctx, dialect, shape));
  }
  const orderedPerSecond = median(ordered.map((r) => r.deliveriesPerSecond));
  const unorderedPerSecond = median(unordered.map((r) => r.deliveriesPerSecond));
  return {
    deliveries: DELIVERIES,
    changesPerTicket: CHANGES_PER_TICKET,
    rounds: ROUNDS,
    orderedPerSecond,
    unorderedPerSecond,
    ratio: orderedPerSecond / unorderedPerSecond,
    orderedEach: ordered.map((r) => Math.round(r.deliveriesPerSecond)),
    unorderedEach: unordered.map((r) => Math.round(r.deliveriesPerSecond)),
    peakRssMb: Math.max(...[...ordered, ...unordered].map((r) => r.peakRssMb)),
  };
}
