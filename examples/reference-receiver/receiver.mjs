#!/usr/bin/env node
// A reference receiver of Helpdesk webhooks that keeps a copy of the tickets and converges on the
// server's, whatever the network does: see README.md beside this file.
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { parseArgs } from 'node:util';
import { Webhook } from 'standardwebhooks';
import { HelpdeskApi } from './helpdesk-api.mjs';
import { Reconciler } from './reconciler.mjs';
import { TicketStore } from './ticket-store.mjs';

const USAGE = `Usage: node examples/reference-receiver/receiver.mjs --secret whsec_... --api-key <admin key> [options]

  --secret <whsec_...>        the webhook's signing secret (or HELPDESK_WEBHOOK_SECRET)
  --api-key <key>             an admin API key, to read the event feed (or HELPDESK_API_KEY)
  --api-url <url>             the Helpdesk server (default http://127.0.0.1:8080)
  --port <n>                  port to listen on (default 3000; 0 for any free one)
  --host <address>            address to listen on (default 127.0.0.1)
  --cert <file> --key <file>  serve HTTPS with this certificate and key (default: plain HTTP,
                              behind "helpdesk listen" or a TLS proxy)
  --store <file>              the SQLite file of the copy (default ./reference-receiver.db)
  --catch-up-margin-seconds <s>  how far before the newest event seen a catch-up starts
                              (default 300)
  --catch-up-every-seconds <s>   how often to look for deliveries answered with an error and
                              not retried since, and catch up from the feed (default 300)
  --forget-after-days <d>     how long a webhook-id is remembered (default 7)
  --refuse-rate <0..1>        FAULT INJECTION, for drills only: answer 503 to this share of
                              deliveries, chosen at random (default 0)
`;

function fail(message) {
  process.stderr.write(`reference-receiver: ${message}\n\n${USAGE}`);
  process.exit(2);
}

function numberOption(value, name, { min, max = Number.POSITIVE_INFINITY }) {
  const number = Number(value);
  if (value === undefined || value.trim() === '' || !Number.isFinite(number) || number < min || number > max) fail(`--${name} must be a number from ${min} to ${max}`);
  return number;
}

let parsed;
try {
  parsed = parseArgs({
    options: {
      secret: { type: 'string' },
      'api-key': { type: 'string' },
      'api-url': { type: 'string', default: 'http://127.0.0.1:8080' },
      port: { type: 'string', default: '3000' },
      host: { type: 'string', default: '127.0.0.1' },
      cert: { type: 'string' },
      key: { type: 'string' },
      store: { type: 'string', default: './reference-receiver.db' },
      'catch-up-margin-seconds': { type: 'string', default: '300' },
      'catch-up-every-seconds': { type: 'string', default: '300' },
      'forget-after-days': { type: 'string', default: '7' },
      'refuse-rate': { type: 'string', default: '0' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  }).values;
} catch (error) {
  fail(error.message);
}
if (parsed.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const secret = parsed.secret ?? process.env.HELPDESK_WEBHOOK_SECRET;
const apiKey = parsed['api-key'] ?? process.env.HELPDESK_API_KEY;
if (!secret) fail('--secret (or HELPDESK_WEBHOOK_SECRET) is required');
if (!apiKey) fail('--api-key (or HELPDESK_API_KEY) is required: gaps and downtime are caught up from the event feed');
if ((parsed.cert === undefined) !== (parsed.key === undefined)) fail('--cert and --key go together');
const port = numberOption(parsed.port, 'port', { min: 0, max: 65535 });
const marginMs = numberOption(parsed['catch-up-margin-seconds'], 'catch-up-margin-seconds', { min: 0 }) * 1000;
const catchUpEveryMs = numberOption(parsed['catch-up-every-seconds'], 'catch-up-every-seconds', { min: 1 }) * 1000;
const forgetAfterMs = numberOption(parsed['forget-after-days'], 'forget-after-days', { min: 1 }) * 86_400_000;
const refuseRate = numberOption(parsed['refuse-rate'], 'refuse-rate', { min: 0, max: 1 });

// A mistyped secret would otherwise be taken as some other key, and every delivery refused.
if (!/^whsec_[A-Za-z0-9+/]+={0,2}$/.test(secret)) fail('--secret must be the webhook\'s signing secret, whsec_ and base64');
const webhook = new Webhook(secret);
const log = (line) => process.stdout.write(`${new Date().toISOString()} ${line}\n`);
const store = new TicketStore(parsed.store);
const reconciler = new Reconciler({ store, api: new HelpdeskApi(parsed['api-url'], apiKey), marginMs, log });
const MAX_BODY_BYTES = 1024 * 1024;

/** One delivery: `[status, body]`, the status 2xx only once its outcome is committed. */
async function receive(headers, body) {
  let payload;
  try {
    payload = webhook.verify(body, headers);
  } catch {
    store.count('rejected');
    return [401, { error: 'bad signature' }];
  }
  const messageId = headers['webhook-id'];
  if (refuseRate > 0 && Math.random() < refuseRate) {
    store.recordMissed(messageId, payload.timestamp);
    store.count('refused');
    return [503, { error: 'refused (fault injection: --refuse-rate)' }];
  }
  let outcome = store.receive(messageId, payload);
  if (outcome === 'gap') {
    try {
      await reconciler.fillGap(payload.data.ticket.id, payload.data.ticket.version);
      outcome = store.receive(messageId, payload, true);
    } catch (error) {
      log(`could not fill the gap of ${payload.data.ticket.id} before version ${payload.data.ticket.version}: ${error.message}`);
    }
    if (outcome === 'gap') {
      // Not answered 2xx: the server retries, and the next catch-up covers it if it gives up.
      store.recordMissed(messageId, payload.timestamp);
      store.count('failed');
      return [503, { error: 'gap not filled yet' }];
    }
  }
  return [200, { outcome }];
}

function status() {
  return { counters: store.counters(), lastEventAt: store.lastEventAt(), catchingUp: reconciler.catchingUp, missed: store.hasMissed() };
}

async function handle(request) {
  const path = new URL(request.url, 'http://receiver').pathname;
  if (request.method === 'GET' && path === '/stats') return [200, status()];
  if (request.method === 'GET' && path === '/tickets') return [200, { tickets: store.tickets() }];
  if (request.method === 'GET' && path === '/healthz') return [200, { status: 'ok' }];
  if (request.method !== 'POST') return [405, { error: 'POST deliveries; GET /stats, /tickets, /healthz' }];
  const chunks = [];
  let size = 0;
  for await (const chunk of request) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return [413, { error: 'body too large' }];
    chunks.push(chunk);
  }
  return receive(request.headers, Buffer.concat(chunks).toString('utf8'));
}

const onRequest = (request, response) => {
  handle(request).then(
    ([code, body]) => response.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body)),
    (error) => {
      log(`delivery failed: ${error.stack ?? error}`);
      response.writeHead(500, { 'content-type': 'application/json' }).end('{"error":"internal"}');
    },
  );
};
const tls = parsed.cert === undefined ? null : { cert: readFileSync(parsed.cert), key: readFileSync(parsed.key) };
const server = tls ? createHttpsServer(tls, onRequest) : createHttpServer(onRequest);

// The catch-up after downtime, tried until the API answers; deliveries are served meanwhile
// (an event the catch-up also brings is stale the second time, whichever comes first).
let stopping = false;
let retryTimer = null;
function catchUpUntilDone(delayMs = 1000) {
  reconciler.catchUp().catch((error) => {
    log(`catch-up failed, trying again in ${delayMs / 1000} s: ${error.message}`);
    if (!stopping) retryTimer = setTimeout(() => catchUpUntilDone(Math.min(delayMs * 2, 30_000)), delayMs);
  });
}
const sweep = setInterval(() => {
  store.pruneMessages(new Date(Date.now() - forgetAfterMs).toISOString());
  // A delivery refused a moment ago is still being retried; one refused a whole period ago and
  // not answered 2xx since may have been given up on.
  if (store.hasMissed(new Date(Date.now() - catchUpEveryMs).toISOString()) && !reconciler.catchingUp) catchUpUntilDone();
}, catchUpEveryMs);

server.listen(port, parsed.host, () => {
  const { port: actual } = server.address();
  log(`Listening on ${tls ? 'https' : 'http'}://${parsed.host}:${actual}${refuseRate > 0 ? ` (refusing ${refuseRate * 100} % of deliveries: fault injection)` : ''}`);
  catchUpUntilDone();
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.once(signal, () => {
    stopping = true;
    clearInterval(sweep);
    clearTimeout(retryTimer);
    server.close(() => {
      store.close();
      process.exit(0);
    });
    server.closeIdleConnections();
    // Connections the server keeps alive close after their answer; none waits for long.
    setTimeout(() => server.closeAllConnections(), 5000).unref();
  });
}
