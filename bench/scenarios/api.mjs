// API throughput: POST /helpdesk/api/v1/tickets under autocannon (64 connections) against
// `helpdesk serve` with one subscribed webhook, and against a bare Fastify serving the same route
// definition with no auth, database or events, measured in the same run. Helpdesk is measured
// twice: as an API-only process (HELPDESK_SERVE_WORKER=false: every ticket still writes its event
// and delivery in its transaction, and nothing is sent), which is the figure held against the
// target, and as the default `serve`, whose worker also delivers to the receiver meanwhile on the
// same two cores. Every server runs in its own process; autocannon runs here.
//
// Run as `node bench/scenarios/api.mjs bare` this file is that bare server: it reports its port
// to its parent over IPC.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { request } from 'undici';
import { dropDatabase, freePort, helpdeskEnv, newDatabaseUrl, startHelpdesk, TOKEN } from '../lib.mjs';

const PATH = '/helpdesk/api/v1/tickets';
const CONNECTIONS = 64;
export const HEADERS = { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` };
export const BODY = JSON.stringify({ ticket: { subject: 'benchmark ticket', description: 'x'.repeat(600), tags: ['bench'] } });

export async function run(ctx, dialect) {
  const url = await newDatabaseUrl(dialect);
  const withWorkerUrl = await newDatabaseUrl(dialect);
  try {
    const helpdesk = await measureHelpdesk(ctx, url, { HELPDESK_SERVE_WORKER: 'false' });
    const withWorker = await measureHelpdesk(ctx, withWorkerUrl, {});
    const bare = await measureBare(ctx);
    return {
      helpdeskRps: helpdesk.rps,
      helpdeskP99Ms: helpdesk.p99Ms,
      helpdeskNon2xx: helpdesk.non2xx,
      withWorkerRps: withWorker.rps,
      withWorkerP99Ms: withWorker.p99Ms,
      bareRps: bare.rps,
      bareP99Ms: bare.p99Ms,
      ratio: helpdesk.rps / bare.rps,
      withWorkerRatio: withWorker.rps / bare.rps,
      peakRssMb: Math.max(helpdesk.peakRssMb, withWorker.peakRssMb),
    };
  } finally {
    await dropDatabase(url);
    await dropDatabase(withWorkerUrl);
  }
}

async function measureHelpdesk(ctx, url, env) {
  const port = freePort();
  const server = await startHelpdesk('serve', helpdeskEnv(url, ctx.tls, env), { port });
  try {
    await subscribeReceiver(port, ctx.receiver);
    const figures = await load(port, ctx.seconds);
    return { ...figures, peakRssMb: await server.stop() };
  } catch (error) {
    await server.kill();
    throw error;
  }
}

/** One webhook for ticket.created, so every ticket created also queues one delivery. */
async function subscribeReceiver(port, receiver) {
  const response = await request(`http://127.0.0.1:${port}/helpdesk/api/v1/webhooks`, {
    method: 'POST',
    headers: HEADERS,
    body: JSON.stringify({ webhook: { name: 'bench', targetUrl: receiver.url, events: ['ticket.created'] } }),
  });
  const text = await response.body.text();
  if (response.statusCode !== 201) throw new Error(`webhook: ${response.statusCode} ${text}`);
}

async function measureBare(ctx) {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'bare'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    const port = await new Promise((resolve, reject) => {
      child.once('message', (m) => resolve(m.port));
      exited.then((code) => reject(new Error(`bare Fastify exited with ${code}`)));
    });
    return await load(port, ctx.seconds);
  } finally {
    child.kill();
    await exited;
  }
}

/** The same autocannon run against either server (and the filters scenario's). Only 2xx answers count as served requests. */
export async function load(port, seconds) {
  const result = await autocannon({
    url: `http://127.0.0.1:${port}${PATH}`,
    method: 'POST',
    headers: HEADERS,
    body: BODY,
    connections: CONNECTIONS,
    duration: seconds,
  });
  if (result['2xx'] === 0) throw new Error(`autocannon: no 2xx (${result.non2xx} non-2xx, ${result.errors} errors)`);
  return { rps: result['2xx'] / result.duration, p99Ms: result.latency.p99, non2xx: result.non2xx, created: result['2xx'] };
}

/**
 * The baseline: Helpdesk's own ticket routes (so the very same body schema, which
 * tickets.routes.ts does not export) on a plain Fastify, with a service that builds the ticket
 * in memory. What Helpdesk adds on top — auth, hooks, the transaction, the queued event — is
 * what the ratio measures.
 */
async function serveBare() {
  const { default: Fastify } = await import('fastify');
  const { API_BASE } = await import('../../dist/api/app.js');
  const { registerTicketRoutes, ticketSchema } = await import('../../dist/tickets/tickets.routes.js');
  // The validator options of src/api/app.ts, so both servers validate the body the same way.
  const app = Fastify({
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: true, allowUnionTypes: true } },
  });
  // As in src/api/app.ts: the response schemas refer to the Ticket resource by $id, and answers
  // are serialised as they are.
  app.addSchema(ticketSchema);
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  let next = 0;
  const tickets = {
    create: async (input) => {
      next += 1;
      const now = new Date().toISOString();
      return { id: `tkt_${next}`, status: 'open', priority: 'normal', description: '', tags: [], ...input, createdAt: now, updatedAt: now };
    },
  };
  await app.register(async (api) => registerTicketRoutes(api, tickets), { prefix: API_BASE });
  await app.listen({ host: '127.0.0.1', port: 0 });
  process.send({ port: app.server.address().port });
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] === 'bare') await serveBare();
