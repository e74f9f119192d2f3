/**
 * Configuration: the one place that reads `process.env`. Parsed once at start, validated, frozen.
 * Every option is documented in docs/configuration.md.
 */
import { dirname, join } from 'node:path';
import { AppError } from './errors.js';
import type { LogFormat } from './logger.js';
import { isCidr } from './outbound/address-policy.js';

export type DatabaseConfig =
  | { readonly kind: 'sqlite'; readonly path: string }
  | { readonly kind: 'postgres'; readonly connectionString: string };

export const SECRET_KEY_BYTES = 32;

/** Requests per API key: a token bucket (src/http/rate-limit.ts). */
export interface RateLimitPolicy {
  /** Tokens added per second: the sustained rate. */
  readonly perSecond: number;
  /** The bucket's size: requests a key may send at once after a quiet spell. */
  readonly burst: number;
}

/** 32 bytes as standard base64 (44 characters) or hex (64); null when it is neither. */
export function decodeSecretKey(text: string): Buffer | null {
  const trimmed = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(trimmed)) return Buffer.from(trimmed, 'hex');
  if (/^[A-Za-z0-9+/]{43}=$/.test(trimmed)) return Buffer.from(trimmed, 'base64');
  return null;
}

/**
 * Keys, comma-separated (white space around each is ignored): the first seals, every one opens,
 * so that a new key can be put first while the values sealed under the old one are resealed
 * (docs/configuration.md, "Rotating the secret key"). A mistake names the key by its position,
 * never by its text. `source` names where the list came from, for the message.
 */
export function decodeSecretKeyList(text: string, source: string): Buffer[] {
  const items = text.split(',');
  const keys: Buffer[] = [];
  items.forEach((item, index) => {
    const position = items.length === 1 ? 'its key' : `key ${index + 1} of ${items.length}`;
    if (item.trim() === '') throw AppError.config(`${source}: ${position} is empty (keys are separated by single commas)`);
    const key = decodeSecretKey(item);
    if (!key) throw AppError.config(`${source}: ${position} must be 32 bytes as standard base64 (44 characters) or hex (64), e.g. from "openssl rand -base64 32"`);
    const same = keys.findIndex((earlier) => earlier.equals(key));
    if (same >= 0) throw AppError.config(`${source}: key ${index + 1} of ${items.length} is key ${same + 1} again`);
    keys.push(key);
  });
  return keys;
}

/** Where the keys that seal signing secrets at rest come from. */
export type SecretKeySource =
  /** The first seals; every one opens. */
  | { readonly kind: 'value'; readonly keys: readonly Buffer[] }
  /** Read from the file (which may list several keys like the variable), or generated into it on a database that has no sealed secret yet. */
  | { readonly kind: 'file'; readonly path: string; /** Chosen by HELPDESK_SECRET_KEY_FILE rather than defaulted. */ readonly chosen: boolean };

export interface Config {
  readonly port: number;
  readonly host: string;
  readonly database: DatabaseConfig;
  /** A bootstrap admin key valid while set (docs/configuration.md); never stored. */
  readonly adminToken: string | null;
  /** Delays in seconds before each retry; its length + 1 is the number of attempts. */
  readonly retrySchedule: readonly number[];
  /** Lifts the private-address rule for deliveries (never the https rule). */
  readonly allowPrivateTargets: boolean;
  readonly logLevel: string;
  readonly logFormat: LogFormat;
  /** How long a worker's claim on a delivery lasts before another worker may take it over. */
  readonly deliveryLeaseSeconds: number;
  /** Ranges lifted from the private-address rule, for targets on a known intranet. */
  readonly allowedTargetCidrs: readonly string[];
  /** Finished deliveries, their attempts and payloads are pruned after this many days. */
  readonly retentionDays: number;
  /** How often a process tries to take the retention lease and prune (docs/deployment.md, "Retention"). */
  readonly retentionIntervalSeconds: number;
  /** Where `helpdesk worker` serves /healthz and /metrics (on HELPDESK_HOST); null when HELPDESK_WORKER_PORT=off. */
  readonly workerPort: number | null;
  /** Serve `GET /metrics` (Prometheus text format). */
  readonly metricsEnabled: boolean;
  /** `serve` also runs the delivery worker (false: API only, with `helpdesk worker` processes delivering). */
  readonly serveWorker: boolean;
  /** Delivery attempts sent from a thread of their own (docs/configuration.md). */
  readonly sendingThread: boolean;
  /** A request must arrive whole (headers and body) within this, or it is answered 408. */
  readonly requestTimeoutSeconds: number;
  /** Requests per API key (token bucket, per process); null when HELPDESK_RATE_LIMIT=off. */
  readonly rateLimit: RateLimitPolicy | null;
  /** Event streams (`GET /events/stream`) open at once in one process; one more is a 429. */
  readonly maxEventStreams: number;
  readonly secretKey: SecretKeySource;
  /** OpenTelemetry tracing (docs/deployment.md, "Tracing"); null when off. */
  readonly tracing: TracingConfig | null;
  readonly version: string;
}

/** The OTLP protocols spoken: OTLP/HTTP with a protobuf or a JSON body (gRPC is not). */
export const OTLP_PROTOCOLS = ['http/protobuf', 'http/json'] as const;
export type OtlpProtocol = (typeof OTLP_PROTOCOLS)[number];

/** OTEL_TRACES_SAMPLER's values (the OpenTelemetry specification's built-in samplers). */
export const TRACE_SAMPLERS = ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'] as const;
export type TraceSampler = (typeof TRACE_SAMPLERS)[number];

/** Tracing as the standard OTEL_* variables set it, read here so that nothing else reads them. */
export interface TracingConfig {
  readonly protocol: OtlpProtocol;
  /** Where spans are POSTed: the traces endpoint itself (…/v1/traces). */
  readonly endpoint: string;
  /** Sent with every export, e.g. a collector's API key. */
  readonly headers: Readonly<Record<string, string>>;
  readonly serviceName: string;
  /** OTEL_RESOURCE_ATTRIBUTES; service.name and service.version are set apart. */
  readonly resourceAttributes: Readonly<Record<string, string>>;
  readonly sampler: TraceSampler;
  /** The ratio of the *traceidratio samplers, from 0 to 1. */
  readonly samplerRatio: number;
  /** How long finished spans wait to be exported with the next ones (the batch's delay). */
  readonly batchDelayMs: number;
  /** One export gives up after this; spans are dropped, never retried into a backlog that blocks. */
  readonly exportTimeoutMs: number;
}

/** Stripe/Svix-like: 10 attempts over about three days. */
export const DEFAULT_RETRY_SCHEDULE_SECONDS: readonly number[] = [
  5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400,
];

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export const HELPDESK_VERSION = '0.1.0';

function fail(variable: string, message: string): never {
  throw AppError.config(`${variable} ${message}`);
}

export function parseDatabaseUrl(value: string, variable = 'HELPDESK_DATABASE_URL'): DatabaseConfig {
  if (value.startsWith('sqlite:')) {
    const path = value.slice('sqlite:'.length);
    if (path.length === 0) fail(variable, 'needs a path after "sqlite:"');
    return Object.freeze({ kind: 'sqlite', path });
  }
  if (value.startsWith('postgres://') || value.startsWith('postgresql://')) {
    return Object.freeze({ kind: 'postgres', connectionString: value });
  }
  return fail(variable, 'must be "sqlite:<path>" or "postgres://..."');
}

export function parseRetrySchedule(value: string): number[] {
  const parts = value.split(',').map((part) => part.trim());
  const seconds = parts.map((part) => Number(part));
  if (parts.length === 0 || parts.some((part) => part === '') || seconds.some((s) => !Number.isFinite(s) || s < 0)) {
    fail('HELPDESK_RETRY_SCHEDULE', 'must be a comma-separated list of non-negative seconds, e.g. "0.2,0.5,1"');
  }
  return seconds;
}

function parsePort(value: string, variable = 'HELPDESK_PORT'): number {
  if (!/^\d+$/.test(value)) fail(variable, 'must be a whole number');
  const port = Number(value);
  if (port > 65535) fail(variable, 'must be at most 65535');
  return port;
}

function parseWorkerPort(value: string): number | null {
  if (value.trim().toLowerCase() === 'off') return null;
  if (!/^\d+$/.test(value)) fail('HELPDESK_WORKER_PORT', 'must be a port number or "off"');
  return parsePort(value, 'HELPDESK_WORKER_PORT');
}

/**
 * A lease must outlast one attempt (15 s at most) with room to record it; a shorter one would let
 * a second worker send a delivery that is still in flight.
 */
export const MIN_DELIVERY_LEASE_SECONDS = 20;

function parseLeaseSeconds(value: string): number {
  const seconds = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value) || seconds < MIN_DELIVERY_LEASE_SECONDS) {
    fail('HELPDESK_DELIVERY_LEASE_SECONDS', `must be a number of seconds, at least ${MIN_DELIVERY_LEASE_SECONDS}`);
  }
  return seconds;
}

/** `10.0.0.0/8,fd00::/8`: each an address and a prefix length valid for its family. */
export function parseCidrList(value: string): string[] {
  const entries = value.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '');
  for (const entry of entries) {
    if (!isCidr(entry)) fail('HELPDESK_ALLOWED_TARGET_CIDRS', `has "${entry}", which is not a CIDR range like 10.0.0.0/8 or fd00::/8`);
  }
  return entries;
}

function parseRetentionInterval(value: string): number {
  if (!/^\d+(\.\d+)?$/.test(value) || Number(value) < 1 || Number(value) > 86_400) {
    fail('HELPDESK_RETENTION_INTERVAL_SECONDS', 'must be a number of seconds from 1 to 86400');
  }
  return Number(value);
}

function parseEventStreams(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 10_000) fail('HELPDESK_EVENT_STREAMS', 'must be a whole number from 1 to 10000');
  return Number(value);
}

function parseRetentionDays(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) fail('HELPDESK_RETENTION_DAYS', 'must be a whole number of days, at least 1');
  return Number(value);
}

const TRUE_WORDS = ['true', '1', 'yes', 'on'];
const FALSE_WORDS = ['false', '0', 'no', 'off'];

/**
 * Every switch reads the same words, in any case: true, 1, yes, on, or false, 0, no, off.
 * Anything else is refused, so that a typo never silently leaves a switch in its default.
 */
function parseBoolean(variable: string, value: string | undefined, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  const word = value.trim().toLowerCase();
  if (TRUE_WORDS.includes(word)) return true;
  if (FALSE_WORDS.includes(word)) return false;
  return fail(variable, `must be true or false (also 1/0, yes/no, on/off), not "${value}"`);
}

function parseLogFormat(value: string | undefined, stdoutIsTerminal: boolean): LogFormat {
  if (value === undefined) return stdoutIsTerminal ? 'pretty' : 'json';
  if (value !== 'json' && value !== 'pretty') fail('HELPDESK_LOG_FORMAT', 'must be "json" or "pretty"');
  return value;
}

function parseRequestTimeout(value: string): number {
  if (!/^\d+(\.\d+)?$/.test(value) || Number(value) < 1 || Number(value) > 3600) {
    fail('HELPDESK_REQUEST_TIMEOUT_SECONDS', 'must be a number of seconds from 1 to 3600');
  }
  return Number(value);
}

/** `off`, or requests per second per key (decimals allowed), with a whole burst of at least 1. */
function parseRateLimit(rate: string, burst: string | undefined): RateLimitPolicy | null {
  if (rate === 'off') {
    if (burst !== undefined) fail('HELPDESK_RATE_LIMIT_BURST', 'has no effect with HELPDESK_RATE_LIMIT=off');
    return null;
  }
  const perSecond = Number(rate);
  if (!/^\d+(\.\d+)?$/.test(rate) || perSecond <= 0) fail('HELPDESK_RATE_LIMIT', 'must be "off" or a number of requests per second above 0, e.g. "100"');
  if (burst !== undefined && (!/^\d+$/.test(burst) || Number(burst) < 1)) fail('HELPDESK_RATE_LIMIT_BURST', 'must be a whole number of requests, at least 1');
  return Object.freeze({ perSecond, burst: burst === undefined ? Math.max(1, Math.round(2 * perSecond)) : Number(burst) });
}

/**
 * HELPDESK_SECRET_KEY wins; otherwise HELPDESK_SECRET_KEY_FILE, by default `secret.key` beside
 * the SQLite database, or in ./data for PostgreSQL (where the database is not a file).
 */
function parseSecretKey(value: string | undefined, file: string | undefined, database: DatabaseConfig): SecretKeySource {
  if (value !== undefined) {
    if (file !== undefined) fail('HELPDESK_SECRET_KEY_FILE', 'cannot be set together with HELPDESK_SECRET_KEY');
    return Object.freeze({ kind: 'value', keys: Object.freeze(decodeSecretKeyList(value, 'HELPDESK_SECRET_KEY')) });
  }
  if (file !== undefined && file.trim() === '') fail('HELPDESK_SECRET_KEY_FILE', 'must be a path');
  const directory = database.kind === 'sqlite' ? dirname(database.path) : './data';
  return Object.freeze({ kind: 'file', path: file ?? join(directory, 'secret.key'), chosen: file !== undefined });
}

/**
 * `k=v,k2=v2` with percent-encoded values (OTEL_EXPORTER_OTLP_HEADERS, OTEL_RESOURCE_ATTRIBUTES,
 * W3C Baggage's format as the OpenTelemetry specification uses it).
 */
export function parseKeyValueList(variable: string, value: string): Record<string, string> {
  const pairs: Record<string, string> = {};
  for (const entry of value.split(',')) {
    if (entry.trim() === '') continue;
    const equals = entry.indexOf('=');
    const key = equals < 0 ? '' : entry.slice(0, equals).trim();
    if (key === '') fail(variable, `must be a comma-separated list of key=value, not "${entry.trim()}"`);
    let decoded: string;
    try {
      decoded = decodeURIComponent(entry.slice(equals + 1).trim());
    } catch {
      return fail(variable, `has a badly percent-encoded value for "${key}"`);
    }
    pairs[key] = decoded;
  }
  return pairs;
}

/** OTLP/HTTP's path for traces, added to OTEL_EXPORTER_OTLP_ENDPOINT (not to the traces endpoint). */
const OTLP_TRACES_PATH = 'v1/traces';
const DEFAULT_OTLP_ENDPOINT = 'http://localhost:4318/';

function parseOtlpUrl(variable: string, value: string): URL {
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    return fail(variable, `must be an http:// or https:// URL, not "${value}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') fail(variable, `must be an http:// or https:// URL, not "${value}"`);
  return url;
}

function parseMilliseconds(variable: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value.trim() === '') return fallback;
  if (!/^\d+$/.test(value.trim()) || Number(value) < 1) fail(variable, 'must be a whole number of milliseconds, at least 1');
  return Number(value);
}

/**
 * Tracing is on when OTEL_TRACES_EXPORTER (`otlp`) or OTEL_EXPORTER_OTLP_ENDPOINT is set, and
 * OTEL_SDK_DISABLED is not true; off otherwise, whatever else is set (docs/configuration.md).
 */
function parseTracing(read: (name: Setting) => string | undefined, version: string): TracingConfig | null {
  if (parseBoolean('OTEL_SDK_DISABLED', read('OTEL_SDK_DISABLED'), false)) return null;
  const exporter = read('OTEL_TRACES_EXPORTER')?.trim();
  if (exporter !== undefined && exporter !== '' && exporter !== 'otlp' && exporter !== 'none') {
    fail('OTEL_TRACES_EXPORTER', `must be "otlp" or "none" (Helpdesk exports over OTLP/HTTP only), not "${exporter}"`);
  }
  const baseEndpoint = read('OTEL_EXPORTER_OTLP_ENDPOINT');
  if (exporter === 'none' || ((exporter === undefined || exporter === '') && (baseEndpoint === undefined || baseEndpoint.trim() === ''))) return null;
  const protocol = read('OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') ?? read('OTEL_EXPORTER_OTLP_PROTOCOL') ?? 'http/protobuf';
  if (!(OTLP_PROTOCOLS as readonly string[]).includes(protocol)) {
    fail(read('OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') === undefined ? 'OTEL_EXPORTER_OTLP_PROTOCOL' : 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', `must be ${OTLP_PROTOCOLS.join(' or ')} (gRPC is not supported), not "${protocol}"`);
  }
  const tracesEndpoint = read('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
  let endpoint: string;
  if (tracesEndpoint !== undefined && tracesEndpoint.trim() !== '') {
    endpoint = parseOtlpUrl('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', tracesEndpoint).href;
  } else {
    const base = baseEndpoint !== undefined && baseEndpoint.trim() !== '' ? parseOtlpUrl('OTEL_EXPORTER_OTLP_ENDPOINT', baseEndpoint) : new URL(DEFAULT_OTLP_ENDPOINT);
    if (!base.pathname.endsWith('/')) base.pathname += '/';
    endpoint = new URL(OTLP_TRACES_PATH, base).href;
  }
  const sampler = read('OTEL_TRACES_SAMPLER')?.trim() || 'parentbased_always_on';
  if (!(TRACE_SAMPLERS as readonly string[]).includes(sampler)) fail('OTEL_TRACES_SAMPLER', `must be one of ${TRACE_SAMPLERS.join(', ')}, not "${sampler}"`);
  const ratioText = read('OTEL_TRACES_SAMPLER_ARG')?.trim();
  const samplerRatio = ratioText === undefined || ratioText === '' ? 1 : Number(ratioText);
  if (!/^\d+(\.\d+)?$/.test(ratioText ?? '1') || samplerRatio > 1) fail('OTEL_TRACES_SAMPLER_ARG', 'must be a ratio from 0 to 1, e.g. 0.25');
  const resourceAttributes = parseKeyValueList('OTEL_RESOURCE_ATTRIBUTES', read('OTEL_RESOURCE_ATTRIBUTES') ?? '');
  const serviceName = read('OTEL_SERVICE_NAME')?.trim() || resourceAttributes['service.name'] || 'helpdesk';
  return Object.freeze({
    protocol: protocol as OtlpProtocol,
    endpoint,
    headers: Object.freeze({ ...parseKeyValueList('OTEL_EXPORTER_OTLP_HEADERS', read('OTEL_EXPORTER_OTLP_HEADERS') ?? ''), ...parseKeyValueList('OTEL_EXPORTER_OTLP_TRACES_HEADERS', read('OTEL_EXPORTER_OTLP_TRACES_HEADERS') ?? '') }),
    serviceName,
    resourceAttributes: Object.freeze({ ...resourceAttributes, 'service.version': version }),
    sampler: sampler as TraceSampler,
    samplerRatio,
    batchDelayMs: parseMilliseconds('OTEL_BSP_SCHEDULE_DELAY', read('OTEL_BSP_SCHEDULE_DELAY'), 5_000),
    exportTimeoutMs: parseMilliseconds(
      read('OTEL_EXPORTER_OTLP_TRACES_TIMEOUT') === undefined ? 'OTEL_EXPORTER_OTLP_TIMEOUT' : 'OTEL_EXPORTER_OTLP_TRACES_TIMEOUT',
      read('OTEL_EXPORTER_OTLP_TRACES_TIMEOUT') ?? read('OTEL_EXPORTER_OTLP_TIMEOUT'),
      10_000,
    ),
  });
}

/** Every variable loadConfig reads; HELPDESK_TEST_* belong to the test suite (README). */
export const SETTINGS = [
  'HELPDESK_PORT',
  'HELPDESK_HOST',
  'HELPDESK_DATABASE_URL',
  'HELPDESK_ADMIN_TOKEN',
  'HELPDESK_RETRY_SCHEDULE',
  'HELPDESK_ALLOW_PRIVATE_TARGETS',
  'HELPDESK_ALLOWED_TARGET_CIDRS',
  'HELPDESK_SECRET_KEY',
  'HELPDESK_SECRET_KEY_FILE',
  'HELPDESK_RETENTION_DAYS',
  'HELPDESK_RETENTION_INTERVAL_SECONDS',
  'HELPDESK_WORKER_PORT',
  'HELPDESK_METRICS',
  'HELPDESK_SERVE_WORKER',
  'HELPDESK_SENDING_THREAD',
  'HELPDESK_REQUEST_TIMEOUT_SECONDS',
  'HELPDESK_RATE_LIMIT',
  'HELPDESK_RATE_LIMIT_BURST',
  'HELPDESK_LOG_LEVEL',
  'HELPDESK_LOG_FORMAT',
  'HELPDESK_DELIVERY_LEASE_SECONDS',
  'HELPDESK_EVENT_STREAMS',
  // OpenTelemetry's own names, as every OpenTelemetry SDK reads them (docs/configuration.md, "Tracing").
  'OTEL_SDK_DISABLED',
  'OTEL_TRACES_EXPORTER',
  'OTEL_EXPORTER_OTLP_ENDPOINT',
  'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
  'OTEL_EXPORTER_OTLP_PROTOCOL',
  'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL',
  'OTEL_EXPORTER_OTLP_HEADERS',
  'OTEL_EXPORTER_OTLP_TRACES_HEADERS',
  'OTEL_EXPORTER_OTLP_TIMEOUT',
  'OTEL_EXPORTER_OTLP_TRACES_TIMEOUT',
  'OTEL_SERVICE_NAME',
  'OTEL_RESOURCE_ATTRIBUTES',
  'OTEL_TRACES_SAMPLER',
  'OTEL_TRACES_SAMPLER_ARG',
  'OTEL_BSP_SCHEDULE_DELAY',
] as const;

type Setting = (typeof SETTINGS)[number];

/** Letters to change, add or drop to turn one name into the other (Levenshtein). */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= b.length; j += 1) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}

/**
 * One warning per HELPDESK_* variable that nothing reads, naming the setting it was probably
 * meant to be: a misspelt name would otherwise leave its setting at the default, unseen.
 */
export function unknownSettingWarnings(env: NodeJS.ProcessEnv = process.env): string[] {
  // HELPDESK_API_KEY is read by listen and trigger, not by the server: known, not misspelt.
  const known: readonly string[] = [...SETTINGS, ...CLIENT_SETTINGS];
  return Object.keys(env)
    .filter((name) => name.startsWith('HELPDESK_') && !name.startsWith('HELPDESK_TEST_') && !known.includes(name))
    .sort()
    .map((name) => {
      const nearest = [...known].sort((a, b) => editDistance(name, a) - editDistance(name, b))[0]!;
      const hint = editDistance(name, nearest) <= 3 ? ` (did you mean ${nearest}?)` : '';
      return `${name} is not a Helpdesk setting and is ignored${hint}; the settings are listed in docs/configuration.md`;
    });
}

/**
 * `stdoutIsTerminal` picks the log format when HELPDESK_LOG_FORMAT is unset: readable lines for a
 * person at a terminal, JSON lines for a log collector.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, stdoutIsTerminal = false): Config {
  // Every variable is read by a name of SETTINGS, so the warnings about unknown ones cannot miss
  // a setting that is read.
  const read = (name: Setting): string | undefined => env[name];
  const adminToken = read('HELPDESK_ADMIN_TOKEN') ?? null;
  if (adminToken !== null && adminToken.length < 16) {
    fail('HELPDESK_ADMIN_TOKEN', 'must be at least 16 characters');
  }
  // It travels as "Authorization: Bearer <token>": white space could never match.
  if (adminToken !== null && /\s/.test(adminToken)) fail('HELPDESK_ADMIN_TOKEN', 'must not contain white space');
  const logLevel = read('HELPDESK_LOG_LEVEL') ?? 'info';
  if (!LOG_LEVELS.includes(logLevel)) fail('HELPDESK_LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}`);
  const retrySchedule = read('HELPDESK_RETRY_SCHEDULE');
  const database = parseDatabaseUrl(read('HELPDESK_DATABASE_URL') ?? 'sqlite:./data/helpdesk.db');
  return Object.freeze({
    port: parsePort(read('HELPDESK_PORT') ?? '8080'),
    host: read('HELPDESK_HOST') ?? '127.0.0.1',
    database,
    adminToken,
    retrySchedule: Object.freeze(retrySchedule === undefined ? [...DEFAULT_RETRY_SCHEDULE_SECONDS] : parseRetrySchedule(retrySchedule)),
    allowPrivateTargets: parseBoolean('HELPDESK_ALLOW_PRIVATE_TARGETS', read('HELPDESK_ALLOW_PRIVATE_TARGETS'), false),
    logLevel,
    logFormat: parseLogFormat(read('HELPDESK_LOG_FORMAT'), stdoutIsTerminal),
    deliveryLeaseSeconds: parseLeaseSeconds(read('HELPDESK_DELIVERY_LEASE_SECONDS') ?? '60'),
    allowedTargetCidrs: Object.freeze(parseCidrList(read('HELPDESK_ALLOWED_TARGET_CIDRS') ?? '')),
    retentionDays: parseRetentionDays(read('HELPDESK_RETENTION_DAYS') ?? '30'),
    retentionIntervalSeconds: parseRetentionInterval(read('HELPDESK_RETENTION_INTERVAL_SECONDS') ?? '600'),
    workerPort: parseWorkerPort(read('HELPDESK_WORKER_PORT') ?? '8081'),
    metricsEnabled: parseBoolean('HELPDESK_METRICS', read('HELPDESK_METRICS'), true),
    serveWorker: parseBoolean('HELPDESK_SERVE_WORKER', read('HELPDESK_SERVE_WORKER'), true),
    sendingThread: parseBoolean('HELPDESK_SENDING_THREAD', read('HELPDESK_SENDING_THREAD'), false),
    requestTimeoutSeconds: parseRequestTimeout(read('HELPDESK_REQUEST_TIMEOUT_SECONDS') ?? '30'),
    rateLimit: parseRateLimit(read('HELPDESK_RATE_LIMIT') ?? '100', read('HELPDESK_RATE_LIMIT_BURST')),
    maxEventStreams: parseEventStreams(read('HELPDESK_EVENT_STREAMS') ?? '100'),
    secretKey: parseSecretKey(read('HELPDESK_SECRET_KEY'), read('HELPDESK_SECRET_KEY_FILE'), database),
    tracing: parseTracing(read, HELPDESK_VERSION),
    version: HELPDESK_VERSION,
  });
}

/**
 * The settings of `helpdesk listen` and `helpdesk trigger`. They are API clients of a server that
 * runs elsewhere: they read only these, never loadConfig's, so that a developer's shell needs no
 * server configuration to run them (docs/configuration.md, "listen and trigger").
 */
export const CLIENT_SETTINGS = ['HELPDESK_API_KEY'] as const;

/** Where listen and trigger find the server when --url is not given: `serve`'s own default. */
export const DEFAULT_SERVER_URL = 'http://127.0.0.1:8080';

export interface ClientSettings {
  /** From HELPDESK_API_KEY; --api-key overrides it. Null when unset or blank. */
  readonly apiKey: string | null;
}

export function loadClientSettings(env: NodeJS.ProcessEnv = process.env): ClientSettings {
  const apiKey = env.HELPDESK_API_KEY?.trim();
  return Object.freeze({ apiKey: apiKey === undefined || apiKey === '' ? null : apiKey });
}
