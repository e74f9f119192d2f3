/** The real program in a child process, as an operator runs it, for the end-to-end tests. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { inject } from 'vitest';
import { trackOpen } from './leaks.js';
import { waitFor } from './wait.js';

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface HelpdeskProcess {
  child: ChildProcess;
  /** Everything it wrote so far, stdout and stderr interleaved. */
  output(): string;
  /** What it wrote to stdout alone, and to stderr alone. */
  stdout(): string;
  stderr(): string;
  exited: Promise<Exit>;
}

/** A port that was free a moment ago, for a server the test starts. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * What a test's `serve` and `worker` processes share: the database, the admin token, receivers
 * on loopback trusted through the test CA, no rate limit the test reaches, warnings only.
 */
export function processEnv(databaseUrl: string, adminToken: string): Record<string, string> {
  return {
    HELPDESK_DATABASE_URL: databaseUrl,
    HELPDESK_ADMIN_TOKEN: adminToken,
    HELPDESK_ALLOW_PRIVATE_TARGETS: 'true',
    HELPDESK_RATE_LIMIT: '1000000',
    HELPDESK_LOG_LEVEL: 'warn',
    NODE_EXTRA_CA_CERTS: inject('tls').caPath,
  };
}

/**
 * `node bin/helpdesk.js <command>` (or `<command> <args...>` given as a list) with only PATH and
 * `env` in its environment.
 */
export function spawnHelpdesk(command: string | readonly string[], env: Record<string, string>): HelpdeskProcess {
  let output = '';
  let stdout = '';
  let stderr = '';
  const args = typeof command === 'string' ? [command] : [...command];
  const child = spawn(process.execPath, ['bin/helpdesk.js', ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (chunk: Buffer) => {
    output += chunk.toString();
    stdout += chunk.toString();
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    output += chunk.toString();
    stderr += chunk.toString();
  });
  const untrack = trackOpen(child, `helpdesk ${args[0]} (pid ${child.pid})`);
  const exited = new Promise<Exit>((resolve) =>
    child.on('exit', (code, signal) => {
      untrack();
      resolve({ code, signal });
    }),
  );
  return { child, output: () => output, stdout: () => stdout, stderr: () => stderr, exited };
}

/**
 * `helpdesk worker` with `env`, once it has logged its id (at info level): the id its leases
 * carry in the database, for tests that kill a worker and look at what it held. It serves its
 * /healthz and /metrics at `endpoints`, on a free port unless `env` sets HELPDESK_WORKER_PORT
 * (`endpoints` is null for `off`).
 */
export async function spawnWorker(env: Record<string, string>): Promise<HelpdeskProcess & { id: string; endpoints: string | null }> {
  const port = env.HELPDESK_WORKER_PORT ?? String(await freePort());
  // Its id is logged at info: a quieter level is raised to it, debug (a test reading more) kept.
  const worker = spawnHelpdesk('worker', { ...env, HELPDESK_LOG_LEVEL: env.HELPDESK_LOG_LEVEL === 'debug' ? 'debug' : 'info', HELPDESK_WORKER_PORT: port });
  const id = await waitFor(`the worker to start (output: ${worker.output()})`, () => /"workerId":"(wrk_[0-9a-f]+)"/.exec(worker.output())?.[1], 20_000);
  return { ...worker, id, endpoints: port === 'off' ? null : `http://127.0.0.1:${port}` };
}
