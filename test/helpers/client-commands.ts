/**
 * For the end-to-end tests of `helpdesk listen` and `helpdesk trigger`: a real `helpdesk serve`
 * (restartable on the same port and database), the API called over its socket, the whole event
 * feed read page by page, and a plain-HTTP receiver on localhost, the kind a developer runs.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestDatabase } from './databases.js';
import { freePort, spawnHelpdesk, type HelpdeskProcess } from './processes.js';
import { waitFor } from './wait.js';

export const CLIENT_TEST_TOKEN = 'client-commands-admin-token-0123456789';

export interface ServeProcess extends HelpdeskProcess {
  base: string;
  port: number;
}

/** `helpdesk serve` on `port` (a free one unless given), once /healthz answers. */
export async function startServe(database: TestDatabase, port?: number): Promise<ServeProcess> {
  const chosen = port ?? (await freePort());
  const server = spawnHelpdesk('serve', {
    HELPDESK_PORT: String(chosen),
    HELPDESK_DATABASE_URL: database.url,
    HELPDESK_ADMIN_TOKEN: CLIENT_TEST_TOKEN,
    // The same key on every start, so that a restart on PostgreSQL writes no key file in the tree.
    HELPDESK_SECRET_KEY: Buffer.alloc(32, 5).toString('base64'),
    HELPDESK_LOG_LEVEL: 'warn',
    HELPDESK_RATE_LIMIT: 'off',
  });
  const base = `http://127.0.0.1:${chosen}`;
  await waitFor(`the server to answer /healthz (output: ${server.output()})`, async () => {
    if (server.child.exitCode !== null) throw new Error(`the server exited early: ${server.output()}`);
    return fetch(`${base}/healthz`).then((r) => r.ok, () => false);
  }, 30_000);
  return { ...server, base, port: chosen };
}

export async function stopProcess(process: HelpdeskProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (process.child.exitCode === null && process.child.signalCode === null) process.child.kill(signal);
  await process.exited;
}

export interface ApiResult {
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests inspect arbitrary JSON
  body: any;
}

export async function callApi(base: string, method: string, path: string, body?: unknown, key = CLIENT_TEST_TOKEN): Promise<ApiResult> {
  const response = await fetch(`${base}/helpdesk/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

export interface FeedEvent {
  id: string;
  event: string;
  timestamp: string;
  data: { ticket: { id: string; version: number } } & Record<string, unknown>;
}

/** Every event of the feed matching `query`, newest first, as GET /events pages them. */
export async function readFeed(base: string, query = ''): Promise<FeedEvent[]> {
  const events: FeedEvent[] = [];
  let cursor: string | null = null;
  do {
    const page = await callApi(base, 'GET', `/events?limit=100${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    if (page.status !== 200) throw new Error(`GET /events answered ${page.status}: ${JSON.stringify(page.body)}`);
    events.push(...(page.body.events as FeedEvent[]));
    cursor = page.body.nextCursor as string | null;
  } while (cursor !== null);
  return events;
}

export interface PlainRequest {
  headers: Record<string, string>;
  body: string;
}

export interface PlainReceiver {
  url: string;
  readonly requests: PlainRequest[];
  waitForRequests(count: number, timeoutMs?: number): Promise<PlainRequest[]>;
  close(): Promise<void>;
}

/** A plain-HTTP receiver on localhost; `status` picks each answer (default 200). */
export async function startPlainReceiver(status: (request: PlainRequest, index: number) => number = () => 200): Promise<PlainReceiver> {
  const requests: PlainRequest[] = [];
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(request.headers)) if (typeof value === 'string') headers[name] = value;
      const received = { headers, body: Buffer.concat(chunks).toString('utf8') };
      const index = requests.push(received) - 1;
      response.writeHead(status(received, index)).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://localhost:${port}/webhooks`,
    requests,
    waitForRequests: (count, timeoutMs = 20_000) =>
      waitFor(`${count} requests at the receiver (${requests.length} so far)`, () => (requests.length >= count ? requests.slice(0, count) : null), timeoutMs),
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
