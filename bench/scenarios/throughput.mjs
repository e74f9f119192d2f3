// delivery throughput: EVENTS ticket events queued through the service layer with no worker
// running, then drained by one `helpdesk serve` (or by N `helpdesk worker` processes on
// PostgreSQL). Deliveries/s from the first arrival to the last.
import { loadConfig } from '../../dist/config.js';
import { createLogger } from '../../dist/logger.js';
import { createRuntime } from '../../dist/runtime.js';
import { dropDatabase, freePort, helpdeskEnv, measureDrain, newDatabaseUrl, RATE_LIMIT, startHelpdesk, SECRET_KEY, TOKEN } from '../lib.mjs';

/**
 * Queues `events` ticket.created events for `webhooks` webhooks through the API and service
 * layer, in process and with the worker off. Returns how many deliveries were queued.
 */
export async function queueBacklog(url, receiver, { events, webhooks = 1 }) {
  const config = loadConfig({ HELPDESK_DATABASE_URL: url, HELPDESK_ADMIN_TOKEN: TOKEN, HELPDESK_SECRET_KEY: SECRET_KEY, HELPDESK_ALLOW_PRIVATE_TARGETS: 'true', HELPDESK_RATE_LIMIT: RATE_LIMIT });
  const runtime = await createRuntime(config, { logger: createLogger('silent') });
  await runtime.auth.bootstrap();
  const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
  for (let i = 0; i < webhooks; i += 1) {
    const webhook = await runtime.app.inject({
      method: 'POST',
      url: '/helpdesk/api/v1/webhooks',
      headers,
      payload: JSON.stringify({ webhook: { name: `bench ${i}`, targetUrl: receiver.url, events: ['ticket.created'] } }),
    });
    if (webhook.statusCode !== 201) throw new Error(`webhook: ${webhook.body}`);
  }
  const payload = JSON.stringify({ ticket: { subject: 'benchmark ticket', description: 'x'.repeat(600), tags: ['bench'] } });
  // Sixteen at a time: PostgreSQL then overlaps the commits instead of waiting for each.
  let next = 0;
  const create = async () => {
    while (next < events) {
      next += 1;
      const response = await runtime.app.inject({ method: 'POST', url: '/helpdesk/api/v1/tickets', headers, payload });
      if (response.statusCode !== 201) throw new Error(`ticket: ${response.body}`);
    }
  };
  await Promise.all(Array.from({ length: 16 }, create));
  await runtime.close(1000);
  return events * webhooks;
}

/** One `helpdesk serve` drains a queued backlog; `env` adds to its environment. */
export async function drainWithServe(ctx, dialect, env = {}) {
  const url = await newDatabaseUrl(dialect);
  try {
    const queued = await queueBacklog(url, ctx.receiver, { events: ctx.events });
    const before = await ctx.receiver.count();
    const server = await startHelpdesk('serve', helpdeskEnv(url, ctx.tls, env), { port: freePort() });
    const rate = await measureDrain(ctx.receiver, before, queued);
    const peakRssMb = await server.stop();
    return { deliveriesPerSecond: rate, ratioToRawLimit: rate / ctx.raw, peakRssMb };
  } finally {
    await dropDatabase(url);
  }
}

/** 1, 2 and 4 `helpdesk worker` processes drain one PostgreSQL backlog together. */
export async function drainWithWorkers(ctx, processes) {
  const url = await newDatabaseUrl('postgres');
  try {
    const queued = await queueBacklog(url, ctx.receiver, { events: ctx.events });
    const before = await ctx.receiver.count();
    const workers = await Promise.all(Array.from({ length: processes }, () => startHelpdesk('worker', { ...helpdeskEnv(url, ctx.tls), HELPDESK_WORKER_PORT: 'off' })));
    const rate = await measureDrain(ctx.receiver, before, queued);
    const rss = await Promise.all(workers.map((w) => w.stop()));
    return { processes, deliveriesPerSecond: rate, ratioToRawLimit: rate / ctx.raw, peakRssMb: Math.max(...rss) };
  } finally {
    await dropDatabase(url);
  }
}
