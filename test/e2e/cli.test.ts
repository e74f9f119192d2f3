/**
 * The real program, as an operator runs it: `node bin/helpdesk.js serve` in a child process,
 * trusting the test CA through NODE_EXTRA_CA_CERTS, killed with SIGTERM or SIGKILL.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { Webhook as StandardWebhook } from 'standardwebhooks';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { HELPDESK_VERSION } from '../../src/config.js';
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
        // Its endpoints are another test's; the default port may be taken on a shared machine.
        HELPDESK_WORKER_PORT: 'off',
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

  it('refuses to start with invalid configuration: one line on stderr, exit code 1', async () => {
    const result = await runHelpdesk(['serve'], { HELPDESK_ADMIN_TOKEN: 'short' });
    expect(result).toEqual({ code: 1, stdout: '', stderr: 'helpdesk: HELPDESK_ADMIN_TOKEN must be at least 16 characters\n' });
  });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `node bin/helpdesk.js ...args` with only PATH and `env`, run to its exit. */
function runHelpdesk(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['bin/helpdesk.js', ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('helpdesk --help and --version', () => {
  let directory: string;
  beforeEach(() => {
    directory = mkdtempSync(join(tmpdir(), 'helpdesk-cli-'));
  });
  afterEach(() => rmSync(directory, { recursive: true, force: true }));

  /** Settings that would make a real start visible: a database file to create and a port to take. */
  async function sideEffectSettings() {
    return { HELPDESK_DATABASE_URL: `sqlite:${join(directory, 'data', 'helpdesk.db')}`, HELPDESK_PORT: String(await freePort()), HELPDESK_ADMIN_TOKEN: 'short' };
  }

  it.each([['--help'], ['-h'], ['help']])('`helpdesk %s` lists the commands, exit 0', async (flag) => {
    const result = await runHelpdesk([flag], await sideEffectSettings());
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(/^Usage: helpdesk \[options\] \[command\]/);
    for (const command of ['serve', 'worker', 'migrate', 'reseal']) expect(result.stdout).toMatch(new RegExp(`^  ${command} `, 'm'));
    expect(result.stdout).toContain('docs/configuration.md');
  });

  it.each([['serve'], ['worker'], ['migrate'], ['reseal']])('`helpdesk %s` with --help, -h, --version, -V (and `help` before it) answers without reading the configuration or starting anything', async (command) => {
    const settings = await sideEffectSettings();
    for (const args of [[command, '--help'], [command, '-h'], ['help', command]]) {
      const result = await runHelpdesk(args, settings);
      expect(result, args.join(' ')).toMatchObject({ code: 0, stderr: '' });
      expect(result.stdout).toMatch(new RegExp(`^Usage: helpdesk ${command} \\[options\\]`));
      expect(result.stdout).toContain('HELPDESK_DATABASE_URL');
    }
    for (const args of [[command, '--version'], [command, '-V']]) expect(await runHelpdesk(args, settings)).toEqual({ code: 0, stdout: `${HELPDESK_VERSION}\n`, stderr: '' });
    // The invalid admin token would have stopped a real start with exit 1; nothing was created.
    expect(existsSync(join(directory, 'data'))).toBe(false);
  });

  it('prints the version with --version and -V', async () => {
    expect(HELPDESK_VERSION).toBe((JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version);
    for (const flag of ['--version', '-V']) expect(await runHelpdesk([flag])).toEqual({ code: 0, stdout: `${HELPDESK_VERSION}\n`, stderr: '' });
  });

  it('refuses an unknown command or option, suggesting the nearest, exit 1', async () => {
    const typo = await runHelpdesk(['sreve'], await sideEffectSettings());
    expect(typo.code).toBe(1);
    expect(typo.stdout).toBe('');
    expect(typo.stderr).toMatch(/^error: unknown command 'sreve'\n\(Did you mean serve\?\)/);
    const option = await runHelpdesk(['serve', '--port', '9000'], await sideEffectSettings());
    expect(option.code).toBe(1);
    expect(option.stderr).toMatch(/^error: unknown option '--port'/);
    expect(existsSync(join(directory, 'data'))).toBe(false);
  });
});

describe('helpdesk start-up failures', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  async function sqliteUrl(): Promise<string> {
    const db = await createTestDatabase('sqlite');
    cleanups.push(() => db.drop());
    return db.url;
  }

  it('says in one line on stderr that the port is taken, exit 1, and logs no stack on stdout', async () => {
    const blocker = createNetServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => blocker.close(resolve)));
    const { port } = blocker.address() as AddressInfo;
    const result = await runHelpdesk(['serve'], { HELPDESK_DATABASE_URL: await sqliteUrl(), HELPDESK_PORT: String(port), HELPDESK_ADMIN_TOKEN: TOKEN, HELPDESK_LOG_LEVEL: 'warn' });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`helpdesk: serve failed: port ${port} on 127.0.0.1 is already in use by another process: stop it, or set HELPDESK_PORT to another port\n`);
    expect(result.stdout).not.toMatch(/stack|EADDRINUSE/);
  });

  it('says in one line that PostgreSQL cannot be reached, without the password, exit 1', async () => {
    const port = await freePort();
    const result = await runHelpdesk(['worker'], { HELPDESK_DATABASE_URL: `postgres://helpdesk:hunter2@127.0.0.1:${port}/helpdesk`, HELPDESK_SECRET_KEY: SECRET_KEY });
    expect(result).toEqual({
      code: 1,
      stdout: '',
      stderr: `helpdesk: worker failed: cannot reach PostgreSQL at postgres://helpdesk@127.0.0.1:${port}/helpdesk: connection refused (is PostgreSQL running there?); check HELPDESK_DATABASE_URL\n`,
    });
  });

  it('says in one line that a file is not a SQLite database, exit 1', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'helpdesk-cli-')), 'notes.txt');
    writeFileSync(path, 'these are not the tables you are looking for\n'.repeat(200));
    cleanups.push(async () => rmSync(dirname(path), { recursive: true, force: true }));
    const result = await runHelpdesk(['migrate'], { HELPDESK_DATABASE_URL: `sqlite:${path}` });
    expect(result).toEqual({ code: 1, stdout: '', stderr: `helpdesk: migrate failed: the SQLite file ${path} is not a SQLite database; point HELPDESK_DATABASE_URL at a Helpdesk database, or at a new path\n` });
  });

  it('warns about a HELPDESK_* variable it does not know, and goes on', async () => {
    const result = await runHelpdesk(['migrate'], { HELPDESK_DATABASE_URL: await sqliteUrl(), HELPDESK_ALLOW_PRIVATE_TARGET: 'true' });
    expect(result.code).toBe(0);
    expect(result.stderr).toBe(
      'helpdesk: warning: HELPDESK_ALLOW_PRIVATE_TARGET is not a Helpdesk setting and is ignored (did you mean HELPDESK_ALLOW_PRIVATE_TARGETS?); the settings are listed in docs/configuration.md\n',
    );
  });

  it('says loudly, with PostgreSQL and no HELPDESK_SECRET_KEY, which key file seals the secrets', async () => {
    const port = await freePort();
    const result = await runHelpdesk(['serve'], { HELPDESK_DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/helpdesk` });
    const [warning, failure, ...rest] = result.stderr.split('\n');
    expect(warning).toMatch(/^helpdesk: warning: HELPDESK_SECRET_KEY is not set, so signing secrets are sealed with the key file data\/secret\.key on this machine .*Every process that shares this PostgreSQL database needs the same key/);
    expect(failure).toMatch(/^helpdesk: serve failed: cannot reach PostgreSQL/);
    expect(rest).toEqual(['']);
    // Set, or with SQLite (the key file beside the database), there is nothing to say.
    const set = await runHelpdesk(['serve'], { HELPDESK_DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/helpdesk`, HELPDESK_SECRET_KEY: SECRET_KEY });
    expect(set.stderr).not.toMatch(/warning/);
  });

  it('writes readable log lines when HELPDESK_LOG_FORMAT=pretty, one per request', async () => {
    const port = await freePort();
    const server = spawnHelpdesk('serve', { HELPDESK_DATABASE_URL: await sqliteUrl(), HELPDESK_PORT: String(port), HELPDESK_ADMIN_TOKEN: TOKEN, HELPDESK_LOG_FORMAT: 'pretty' });
    cleanups.push(async () => {
      server.child.kill('SIGTERM');
      await server.exited;
    });
    await waitFor('the server to say it is ready', () => server.output().includes('is ready'), 20_000);
    expect(server.output()).toMatch(new RegExp(`INFO.*Helpdesk ${HELPDESK_VERSION.replaceAll('.', '\\.')} is ready: console http://127\\.0\\.0\\.1:${port}/admin/`));
    await fetch(`http://127.0.0.1:${port}/healthz`);
    await waitFor('the request to be logged', () => /GET \/healthz 200 [\d.]+ ms/.test(server.output()));
    expect(server.output().match(/\/healthz/g)).toHaveLength(2); // the ready line's address, and the request's one line
    expect(server.output()).not.toMatch(/^\{/m);
  });
});

/** The migrations in src/db/migrations, by name, in the order they run. */
const MIGRATIONS = readdirSync('src/db/migrations').map((file) => file.replace(/\.ts$/, '')).sort();

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
        // One applies them all, under the migrator's lock; the other then finds none pending.
        const results = await Promise.all([run(), run()]);
        expect(results.map((r) => r.output).sort()).toEqual([
          `Applied ${MIGRATIONS.length} migrations: ${MIGRATIONS.join(', ')}. The database is at ${MIGRATIONS.at(-1)}.\n`,
          `No migrations were pending: the database is at ${MIGRATIONS.at(-1)}.\n`,
        ]);
        expect(results.map((r) => r.code)).toEqual([0, 0]);
      } finally {
        await db.drop();
      }
    }
  });
});
