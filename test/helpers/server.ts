/**
 * A Helpdesk server for a test: its own database, the real runtime (API, outbox, worker), HTTPS
 * receivers trusted through the test CA. API calls go through `app.inject` (no socket needed);
 * deliveries cross real sockets to real HTTPS receivers.
 */
import { inject } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { DEFAULT_BREAKER_POLICY } from '../../src/delivery/circuit-breaker.js';
import type { DialectName } from '../../src/db/capabilities.js';
import type { DestinationStream } from 'pino';
import { createLogger } from '../../src/logger.js';
import { createRuntime, type Runtime, type RuntimeOptions } from '../../src/runtime.js';
import { createTestDatabase, type TestDatabase } from './databases.js';
import { trackOpen } from './leaks.js';
import { OpenApiResponseChecker } from './openapi-check.js';

export const ADMIN_TOKEN = 'test-admin-token-0123456789abcdef';
export const API = '/helpdesk/api/v1';
/** The key that seals signing secrets in test databases (a restart must reuse it). */
export const SECRET_KEY = Buffer.alloc(32, 7).toString('base64');

export interface ApiResponse {
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests inspect arbitrary JSON
  body: any;
  headers: Record<string, string | string[] | number | undefined>;
}

export interface RequestOptions {
  body?: unknown;
  /** Raw body text, sent as is. */
  rawBody?: string;
  /** Defaults to the admin token; null sends no Authorization header. */
  key?: string | null;
  headers?: Record<string, string>;
}

export interface TestServer {
  readonly runtime: Runtime;
  readonly database: TestDatabase;
  request(method: string, path: string, options?: RequestOptions): Promise<ApiResponse>;
  /** Creates a user of the role and returns an API key for it. */
  keyFor(role: 'admin' | 'agent'): Promise<{ key: string; userId: string }>;
  close(): Promise<void>;
}

export interface TestServerOptions {
  env?: Record<string, string>;
  startWorker?: boolean;
  runtime?: Partial<Omit<RuntimeOptions, 'logger'>>;
  /** Where log lines go (JSON), for tests that read them; the level is then `info`. */
  logDestination?: DestinationStream;
  /** Reuse a database (a restart); it is then not dropped on close. */
  database?: TestDatabase;
}

let counter = 0;

export async function startTestServer(dialect: DialectName, options: TestServerOptions = {}): Promise<TestServer> {
  const ownsDatabase = options.database === undefined;
  const database = options.database ?? (await createTestDatabase(dialect));
  const config = loadConfig({
    HELPDESK_DATABASE_URL: database.url,
    HELPDESK_ADMIN_TOKEN: ADMIN_TOKEN,
    HELPDESK_ALLOW_PRIVATE_TARGETS: 'true',
    HELPDESK_RETRY_SCHEDULE: '0.05,0.1,0.2',
    // Suites send hundreds of requests a second with one key; the limiter still runs (its
    // headers are on every response) but only the rate-limit suite sets a limit it can reach.
    HELPDESK_RATE_LIMIT: '1000000',
    // A suite about the key file sets HELPDESK_SECRET_KEY_FILE, which excludes a key value.
    ...(options.env?.HELPDESK_SECRET_KEY_FILE === undefined ? { HELPDESK_SECRET_KEY: SECRET_KEY } : {}),
    HELPDESK_LOG_LEVEL: process.env.HELPDESK_TEST_LOG_LEVEL ?? 'silent',
    ...options.env,
  });
  const runtime = await createRuntime(config, {
    logger: options.logDestination ? createLogger('info', options.logDestination) : createLogger(config.logLevel),
    ...options.runtime,
    outbound: { extraCaCertificates: [inject('tls').ca], ...options.runtime?.outbound },
    // Receivers come and go on ephemeral ports, and a new one may get the port of a closed one
    // whose failures the breaker still remembers: the breaker stays out of tests not about it
    // (those pass their own policy).
    worker: { breakerPolicy: { ...DEFAULT_BREAKER_POLICY, minimumAttempts: Number.MAX_SAFE_INTEGER }, ...options.runtime?.worker },
  });
  const untrack = trackOpen(runtime, `Helpdesk server and worker [${dialect}]`);
  await runtime.auth.bootstrap();
  await runtime.app.ready();
  if (options.startWorker !== false) runtime.worker.start();

  let checker: OpenApiResponseChecker | undefined;
  const request = async (method: string, path: string, opts: RequestOptions = {}): Promise<ApiResponse> => {
    const headers: Record<string, string> = { ...opts.headers };
    const key = opts.key === undefined ? ADMIN_TOKEN : opts.key;
    if (key !== null) headers.authorization = `Bearer ${key}`;
    let payload: string | undefined;
    if (opts.rawBody !== undefined) payload = opts.rawBody;
    else if (opts.body !== undefined) {
      payload = JSON.stringify(opts.body);
      headers['content-type'] ??= 'application/json';
    }
    const url = path.startsWith('/') && !path.startsWith(API) && path !== '/healthz' ? `${API}${path}` : path;
    const response = await runtime.app.inject({ method: method as 'GET', url, headers, ...(payload === undefined ? {} : { payload }) });
    const text = response.body;
    // Every answer of the suite is checked against the published OpenAPI document.
    checker ??= new OpenApiResponseChecker(runtime.app.swagger());
    const problem = checker.problem({ method: method.toUpperCase(), url, status: response.statusCode, contentType: response.headers['content-type'] as string | undefined, body: text });
    if (problem !== null) throw new Error(`The answer does not match the OpenAPI document: ${problem}`);
    return { status: response.statusCode, body: text === '' ? undefined : JSON.parse(text), headers: response.headers };
  };

  return {
    runtime,
    database,
    request,
    async keyFor(role) {
      counter += 1;
      const user = await request('POST', '/users', { body: { user: { name: `${role} ${counter}`, email: `${role}${counter}-${Date.now()}@example.com`, role } } });
      if (user.status !== 201) throw new Error(`could not create user: ${JSON.stringify(user.body)}`);
      const apiKey = await request('POST', '/api-keys', { body: { apiKey: { name: 'test', userId: user.body.user.id } } });
      if (apiKey.status !== 201) throw new Error(`could not create key: ${JSON.stringify(apiKey.body)}`);
      return { key: apiKey.body.apiKey.key as string, userId: user.body.user.id as string };
    },
    async close() {
      await runtime.close(2_000);
      untrack();
      if (ownsDatabase) await database.drop();
    },
  };
}
