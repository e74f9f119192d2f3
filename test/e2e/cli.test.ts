/**
 * The real program, as an operator runs it: `node bin/helpdesk.js serve` in a child process,
 * trusting the test CA through NODE_EXTRA_CA_CERTS, killed with SIGTERM or SIGKILL.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { Webhook as StandardWebhook } from 'standardwebhooks';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/databases.js';
import { freePort, spawnHelpdesk, type Exit } from '../helpers/processes.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { ADMIN_TOKEN, SECRET_KEY, startTestServer } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';

const TOKEN = 'e2e-admin-token-0123456789';

interface RunningServer {
  process: ChildProcess;
  base: string;
  stdout: () => string;
  exited: Promise<Exit>;
}

async function startServer(database: TestDatabase, env: Record<string, string> = {}): Promise<RunningServer> {
  const port = await freePort();
  const server = spawnHelpdesk('serve', {
    HELPDESK_PORT: String(port),
    HELPDESK_DATABASE_URL: database.url,
    HELPDESK_ALLOW_PRIVATE_TARGETS: 'true',
    HELPDESK_RETRY_SCHEDULE: '0.2,0.5,1',
    HELPDESK_LOG_LEVEL: 'warn',
    NODE_EXTRA_CA_CERTS: inject('tls').caPath,
    ...env,
  });
  const base = `http://127.0.0.1:${port}`;
  await waitFor(`the server to answer /healthz (output: ${server.output()})`, async () => {
    if (server.child.exitCode !== null) throw new Error(`server exited early: ${server.output()}`);
    return fetch(`${base}/healthz`).then((r) => r.ok, () => false);
  }, 20_000);
  return { process: server.child, base, stdout: server.output, exited: server.exited };
}

async function api(server: RunningServer, method: string, path: string, key: string, body?: unknown) {
  const response = await fetch(`${server.base}/helpdesk/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

describe('the helpdesk program', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function database(): Promise<TestDatabase> {
    const db = await createTestDatabase('sqlite');
    cleanups.push(() => db.drop());
    return db;
  }
  function track(server: RunningServer): RunningServer {
    cleanups.push(async () => {
      if (server.process.exitCode === null && server.process.signalCode === null) {
        server.process.kill('SIGKILL');
        await server.exited;
      }
    });
    return server;
  }
  async function receiver(options: Parameters<typeof startReceiver>[0] = {}): Promise<Receiver> {
    const r = await startReceiver(options);
    cleanups.push(() => r.close());
    return r;
  }

  it('prints an admin key once on the first start of an empty database', async () => {
    const db = await database();
    const first = track(await startServer(db));
    const key = /hdk_[A-Za-z0-9_-]{43}/.exec(first.stdout())?.[0];
    expect(key).toBeDefined();
    expect((await api(first, 'GET', '/webhooks', key!)).status).toBe(200);
    first.process.kill('SIGTERM');
    expect(await first.exited).toEqual({ code: 0, signal: null });

    const second = track(await startServer(db));
    expect(second.stdout()).not.toMatch(/hdk_/);
    expect((await api(second, 'GET', '/webhooks', key!)).status).toBe(200);
    expect((await api(second, 'GET', '/webhooks', 'hdk_not-a-key')).status).toBe(401);
  });

  it('delivers a signed event over HTTPS trusted through NODE_EXTRA_CA_CERTS, and exits 0 on SIGTERM', async () => {
    const server = track(await startServer(await database(), { HELPDESK_ADMIN_TOKEN: TOKEN }));
    const target = await receiver();
    const webhook = await api(server, 'POST', '/webhooks', TOKEN, { webhook: { name: 'e2e', targetUrl: target.url(), events: ['ticket.created'] } });
    expect(webhook.status).toBe(201);
    const ticket = await api(server, 'POST', '/tickets', TOKEN, { ticket: { subject: 'from a real process' } });
    const [request] = await target.waitForRequests(1);
    const payload = new StandardWebhook(webhook.body.webhook.signingSecret).verify(request!.body, request!.headers);
    expect(payload).toEqual({ event: 'ticket.created', timestamp: ticket.body.ticket.createdAt, data: { ticket: ticket.body.ticket } });
    server.process.kill('SIGTERM');
    expect(await server.exited).toEqual({ code: 0, signal: null });
  });

  it('loses nothing when killed with SIGKILL mid-delivery: the restarted server sends it again, same webhook-id', async () => {
    const db = await database();
    // The shortest lease allowed: the restarted server takes the delivery over once it expires.
    const env = { HELPDESK_ADMIN_TOKEN: TOKEN, HELPDESK_DELIVERY_LEASE_SECONDS: '20' };
    const first = track(await startServer(db, env));
    // The first request hangs: the server is killed while the delivery is in flight.
    const target = await receiver({ responder: (_request, index) => (index === 0 ? { status: 200, hang: true } : { status: 200 }) });
    const webhook = await api(first, 'POST', '/webhooks', TOKEN, { webhook: { name: 'crash', targetUrl: target.url(), events: ['ticket.created'] } });
    expect((await api(first, 'POST', '/tickets', TOKEN, { ticket: { subject: 'survives' } })).status).toBe(201);
    await target.waitForRequests(1);
    first.process.kill('SIGKILL');
    expect((await first.exited).signal).toBe('SIGKILL');

    track(await startServer(db, env));
    const [inFlight, again] = await target.waitForRequests(2, 45_000);
    expect(again!.headers['webhook-id']).toBe(inFlight!.headers['webhook-id']);
    expect(again!.body).toBe(inFlight!.body);
    expect(() => new StandardWebhook(webhook.body.webhook.signingSecret).verify(again!.body, again!.headers)).not.toThrow();
  }, 90_000);

  it('runs delivery alone as `helpdesk worker`, beside an API that sends nothing itself', async () => {
    const db = await database();
    const target = await receiver();
    const apiOnly = await startTestServer('sqlite', { database: db, startWorker: false });
    cleanups.push(() => apiOnly.close());
    const webhook = await apiOnly.request('POST', '/webhooks', { body: { webhook: { name: 'w', targetUrl: target.url(), events: ['ticket.created'] } } });
    await apiOnly.request('POST', '/tickets', { body: { ticket: { subject: 'for the worker' } } });

    const child = spawn(process.execPath, ['bin/helpdesk.js', 'worker'], {
      env: {
        PATH: process.env.PATH ?? '',
        HELPDESK_DATABASE_URL: db.url,
        HELPDESK_ALLOW_PRIVATE_TARGETS: 'true',
        HELPDESK_ADMIN_TOKEN: ADMIN_TOKEN,
        // The key the API process sealed the signing secret with: without it the worker refuses to start.
        HELPDESK_SECRET_KEY: SECRET_KEY,
        HELPDESK_LOG_LEVEL: 'warn',
        NODE_EXTRA_CA_CERTS: inject('tls').caPath,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    cleanups.push(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    });
    const [request] = await Promise.race([
      target.waitForRequests(1),
      exited.then((how) => Promise.reject(new Error(`the worker exited (${JSON.stringify(how)}): ${stderr}`))),
    ]);
    expect(() => new StandardWebhook(webhook.body.webhook.signingSecret).verify(request!.body, request!.headers)).not.toThrow();
    // Idle, it keeps running until told to stop.
    expect(child.exitCode).toBeNull();
    child.kill('SIGTERM');
    expect(await exited).toEqual({ code: 0, signal: null });
  });

  it('refuses to start with invalid configuration, exit code 2', async () => {
    const child = spawn(process.execPath, ['bin/helpdesk.js', 'serve'], {
      env: { PATH: process.env.PATH ?? '', HELPDESK_ADMIN_TOKEN: 'short' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise((resolve) => child.on('exit', resolve));
    expect(code).toBe(2);
    expect(stderr).toMatch(/HELPDESK_ADMIN_TOKEN must be at least 16 characters/);
  });
});

describe('helpdesk migrate', () => {
  it('lets two processes migrate one new SQLite file at once: both succeed, tables made once', async () => {
    for (let round = 0; round < 5; round += 1) {
      const db = await createTestDatabase('sqlite');
      try {
        const run = () =>
          new Promise<{ code: number | null; output: string }>((resolve) => {
            const child = spawn(process.execPath, ['bin/helpdesk.js', 'migrate'], {
              env: { PATH: process.env.PATH ?? '', HELPDESK_DATABASE_URL: db.url, HELPDESK_LOG_LEVEL: 'error' },
              stdio: ['ignore', 'pipe', 'pipe'],
            });
            let output = '';
            child.stdout.on('data', (c: Buffer) => (output += c.toString()));
            child.stderr.on('data', (c: Buffer) => (output += c.toString()));
            child.on('exit', (code) => resolve({ code, output }));
          });
        const results = await Promise.all([run(), run()]);
        expect(results).toEqual([{ code: 0, output: '' }, { code: 0, output: '' }]);
      } finally {
        await db.drop();
      }
    }
  });
});
