/**
 * The one module that sends HTTP requests out of the server. Every outbound request goes
 * through here so that the rules hold everywhere: https only, no redirects followed, 5 s to
 * connect and 15 s in all, the response body bounded, and no connection to a blocked address,
 * checked on the address actually connected to (a host name that resolves to 127.0.0.1 is
 * refused just like the literal), so DNS tricks cannot bypass it.
 */
import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions, type LookupOptions } from 'node:dns';
import { createRequire } from 'node:module';
import { createSecureContext, rootCertificates } from 'node:tls';
import type * as Undici from 'undici';
import { literalAddress, TargetAddressPolicy } from './address-policy.js';

/** The kinds of failed attempt (docs/delivery.md), as recorded and as the OpenAPI document lists them. */
export const ATTEMPT_ERRORS = ['timeout', 'connection_refused', 'connection_reset', 'dns', 'tls', 'blocked_address', 'redirect', 'http_status'] as const;

export type AttemptError = (typeof ATTEMPT_ERRORS)[number];

export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
export const DEFAULT_TOTAL_TIMEOUT_MS = 15_000;
/** What is kept of an answer's body. */
export const DEFAULT_MAX_RESPONSE_BYTES = 20 * 1024;

export interface OutboundResponse {
  statusCode: number | null;
  headers: Record<string, string> | null;
  /** At most `maxResponseBytes` of the body, decoded as UTF-8. */
  body: string | null;
  durationMs: number;
  /** Null for a 2xx answer. */
  error: AttemptError | null;
  /**
   * For a failure without an answer (connection, TLS, DNS, timeout, blocked address), what the
   * network said, e.g. `connect ECONNREFUSED 10.0.0.5:443` or `certificate has expired`: the
   * error kind says what to look at, this says what is wrong there. Null otherwise (the status
   * code and body say it).
   */
  errorMessage: string | null;
}

/** What is kept of a network error's message. */
export const MAX_ERROR_MESSAGE_LENGTH = 500;

/**
 * The most specific message in an error's cause chain (undici wraps the socket's error), made
 * one line and bounded.
 */
export function networkErrorMessage(error: unknown): string {
  const messages = causeChain(error).flatMap(({ message }) => (typeof message === 'string' && message.trim() !== '' ? [message.replace(/\s+/g, ' ').trim()] : []));
  const text = messages.at(-1) ?? String(error);
  return text.length > MAX_ERROR_MESSAGE_LENGTH ? `${text.slice(0, MAX_ERROR_MESSAGE_LENGTH - 1)}…` : text;
}

export interface OutboundHttpOptions {
  allowPrivateTargets: boolean;
  /** Ranges lifted from the private-address rule (HELPDESK_ALLOWED_TARGET_CIDRS). */
  allowedTargetCidrs?: readonly string[];
  connectTimeoutMs?: number;
  totalTimeoutMs?: number;
  maxResponseBytes?: number;
  /** Connections kept per origin. */
  connectionsPerOrigin?: number;
  /**
   * Extra trusted CA certificates (PEM), added to Node's bundled roots. Setting this replaces
   * the default store, so NODE_EXTRA_CA_CERTS is then not consulted: it is a seam for tests;
   * operators use NODE_EXTRA_CA_CERTS.
   */
  extraCaCertificates?: readonly string[];
  /**
   * How host names are resolved: node's dns.lookup unless given. A test seam, so that the
   * DNS-rebinding test can put a DNS server of its own behind it, one whose answer changes
   * between queries, and show that the address checked is the address connected to. Never set
   * in production: operators change resolution through the system's resolver.
   */
  lookup?: ResolveAll;
}

/** The shape of dns.lookup called with `all: true`: every address of the answer. */
export type ResolveAll = (
  hostname: string,
  options: LookupAllOptions,
  callback: (error: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void,
) => void;

const BLOCKED_CODE = 'HELPDESK_BLOCKED_ADDRESS';
const DNS_CODE = 'HELPDESK_DNS_FAILED';

class BlockedAddressError extends Error {
  readonly code = BLOCKED_CODE;
  constructor(host: string, address: string) {
    super(`refused to connect to ${host} (${address}): blocked address range`);
  }
}

/**
 * The name could not be resolved, whatever the resolver's own code says: a resolver that is not
 * the system's (c-ares, say) reports ECONNREFUSED or ETIMEOUT for its DNS server, which must not
 * read as the target refusing the connection, nor go unclassified.
 */
class LookupFailedError extends Error {
  readonly code = DNS_CODE;
  constructor(host: string, cause?: unknown) {
    super(`could not resolve ${host}`, { cause });
  }
}

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * Resolves the name and keeps only the addresses the policy allows. The socket connects to an
 * address from this answer: there is no second lookup for a rebinding DNS server to answer
 * differently.
 */
function guardedLookup(policy: TargetAddressPolicy, resolveAll: ResolveAll) {
  return (hostname: string, options: LookupOptions, callback: LookupCallback): void => {
    resolveAll(hostname, { ...options, all: true }, (error, addresses) => {
      if (error || addresses.length === 0) return callback(new LookupFailedError(hostname, error ?? undefined), []);
      const allowed = addresses.filter((entry) => !policy.refuses(entry.address));
      if (allowed.length === 0) return callback(new BlockedAddressError(hostname, addresses[0]?.address ?? '?'), []);
      if (options.all) return callback(null, allowed);
      const first = allowed[0]!;
      return callback(null, first.address, first.family);
    });
  };
}

const TLS_CODES = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED|HOSTNAME_MISMATCH|ERR_OSSL)/;

/** The error and the causes under it (undici wraps the socket's error), outermost first. */
function causeChain(error: unknown): { code?: unknown; name?: unknown; message?: unknown }[] {
  const chain: { code?: unknown; name?: unknown; message?: unknown; cause?: unknown }[] = [];
  let current: unknown = error;
  for (let depth = 0; current && depth < 5; depth += 1) {
    chain.push(current as (typeof chain)[number]);
    current = (current as { cause?: unknown }).cause;
  }
  return chain;
}

function errorCodes(error: unknown): string[] {
  return causeChain(error).flatMap(({ code, name }) => [code, name].filter((value): value is string => typeof value === 'string'));
}

/** Expected network failures, told apart; anything else is rethrown as a bug. */
export function classifyNetworkError(error: unknown): AttemptError | null {
  const codes = errorCodes(error);
  if (codes.includes(BLOCKED_CODE)) return 'blocked_address';
  if (codes.includes(DNS_CODE)) return 'dns';
  if (codes.some((c) => c === 'TimeoutError' || c === 'AbortError' || c.startsWith('UND_ERR_') && c.includes('TIMEOUT') || c === 'ETIMEDOUT')) return 'timeout';
  if (codes.some((c) => TLS_CODES.test(c))) return 'tls';
  if (codes.some((c) => c === 'ENOTFOUND' || c === 'EAI_AGAIN' || c === 'EAI_FAIL' || c === 'EAI_NODATA')) return 'dns';
  if (codes.includes('ECONNREFUSED')) return 'connection_refused';
  if (codes.some((c) => c === 'ECONNRESET' || c === 'EPIPE' || c === 'ECONNABORTED' || c === 'EHOSTUNREACH' || c === 'ENETUNREACH')) return 'connection_reset';
  // Whatever else the HTTP client reports about the exchange (a malformed answer, headers over
  // its limit, a socket closed early) is the receiver's connection failing us; it must count
  // as a failed attempt, or the delivery would be retried forever without being recorded.
  if (codes.some((c) => c.startsWith('UND_ERR_') || c.startsWith('HPE_') || c === 'HTTPParserError')) return 'connection_reset';
  return null;
}

/** What the delivery engine sends through: this module's client, in this thread or in one of its own (sending-thread.ts). */
export interface OutboundClient {
  /** `cancel` aborts the request from outside (shutdown); the caller then ignores the result. */
  post(url: string, headers: Record<string, string>, body: string, cancel?: AbortSignal): Promise<OutboundResponse>;
  /**
   * Loads what the first request needs, so that the first attempts do not wait for it; resolves
   * once it is loaded. A delivery worker waits for it before it claims.
   */
  prepare(): Promise<void>;
  close(): Promise<void>;
}

// undici is loaded when a worker starts or by the first request sent, not when the server
// starts: it is some sixty modules, and a process that is not yet healthy, or never delivers
// (an API-only serve), has nothing to send (docs/deployment.md, "Start-up"). With the sending
// thread, the main thread never loads it.
const require = createRequire(import.meta.url);

export class OutboundHttp implements OutboundClient {
  readonly #agentOptions: Undici.Agent.Options;
  #client: { agent: Undici.Agent; request: typeof Undici.request } | null = null;
  readonly #policy: TargetAddressPolicy;
  readonly #totalTimeoutMs: number;
  readonly #maxResponseBytes: number;

  constructor(options: OutboundHttpOptions) {
    this.#policy = new TargetAddressPolicy(options.allowPrivateTargets, options.allowedTargetCidrs);
    this.#totalTimeoutMs = options.totalTimeoutMs ?? DEFAULT_TOTAL_TIMEOUT_MS;
    this.#maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    // Private targets allowed and the system's resolver: the socket resolves as it would anyway.
    const lookup = options.allowPrivateTargets && !options.lookup ? null : guardedLookup(this.#policy, options.lookup ?? dnsLookup);
    this.#agentOptions = {
      connections: options.connectionsPerOrigin ?? 64,
      keepAliveTimeout: 30_000,
      headersTimeout: this.#totalTimeoutMs,
      bodyTimeout: this.#totalTimeoutMs,
      connect: {
        timeout: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
        ...(lookup ? { lookup } : {}),
        // One context, built once: given as `ca`, the 140-odd roots would be parsed again for
        // every new connection, at a cost in CPU and memory each (docs/reliability.md).
        ...(options.extraCaCertificates ? { secureContext: createSecureContext({ ca: [...rootCertificates, ...options.extraCaCertificates] }) } : {}),
      },
    };
  }

  async prepare(): Promise<void> {
    this.#undici();
  }

  #undici(): { agent: Undici.Agent; request: typeof Undici.request } {
    if (this.#client === null) {
      const { Agent, request } = require('undici') as typeof Undici;
      this.#client = { agent: new Agent(this.#agentOptions), request };
    }
    return this.#client;
  }

  /** `cancel` aborts the request from outside (shutdown); the caller then ignores the result. */
  async post(url: string, headers: Record<string, string>, body: string, cancel?: AbortSignal): Promise<OutboundResponse> {
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    const parsed = new URL(url);
    if (parsed.protocol !== 'https:') throw new Error(`refusing a non-https target: ${parsed.protocol}`);
    const literal = literalAddress(parsed.hostname);
    if (literal !== null && this.#policy.refuses(literal)) {
      return { statusCode: null, headers: null, body: null, durationMs: elapsed(), error: 'blocked_address', errorMessage: `refused to connect to ${literal}: blocked address range` };
    }
    // One controller and one timer per request: AbortSignal.any and AbortSignal.timeout cost
    // several times more on the delivery hot path.
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new DOMException(`no complete answer within ${this.#totalTimeoutMs / 1000} s`, 'TimeoutError')), this.#totalTimeoutMs);
    const onCancel = () => abort.abort(cancel?.reason);
    cancel?.addEventListener('abort', onCancel, { once: true });
    try {
      const { agent, request } = this.#undici();
      const response = await request(parsed, { dispatcher: agent, method: 'POST', headers, body, signal: abort.signal });
      const statusCode = response.statusCode;
      // The status line decides; a body that stalls or breaks off only shortens what is kept.
      const responseBody = await this.#readBounded(response.body);
      return {
        statusCode,
        headers: flattenHeaders(response.headers),
        body: responseBody,
        durationMs: elapsed(),
        error: statusCode >= 200 && statusCode < 300 ? null : statusCode >= 300 && statusCode < 400 ? 'redirect' : 'http_status',
        errorMessage: null,
      };
    } catch (error) {
      const kind = classifyNetworkError(error);
      if (kind === null) throw error;
      return { statusCode: null, headers: null, body: null, durationMs: elapsed(), error: kind, errorMessage: networkErrorMessage(error) };
    } finally {
      clearTimeout(timer);
      cancel?.removeEventListener('abort', onCancel);
    }
  }

  /**
   * Keeps the first bytes of the body; past the bound the connection is dropped, not drained. A
   * body that breaks off (a reset) or is still coming when the time is up keeps what arrived.
   */
  async #readBounded(body: AsyncIterable<Buffer> & { destroy(): void }): Promise<string> {
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of body) {
        const room = this.#maxResponseBytes - size;
        chunks.push(chunk.length > room ? chunk.subarray(0, room) : chunk);
        size += Math.min(chunk.length, room);
        if (size >= this.#maxResponseBytes) {
          body.destroy();
          break;
        }
      }
    } catch {
      // The receiver's failure, not ours: what it sent before is its answer.
    }
    return withoutNul(Buffer.concat(chunks).toString('utf8'));
  }

  async close(): Promise<void> {
    await this.#client?.agent.destroy();
  }
}

/** A receiver's bytes are stored as text; PostgreSQL text cannot hold NUL, so it is replaced. */
function withoutNul(text: string): string {
  return text.includes('\u0000') ? text.replaceAll('\u0000', '\ufffd') : text;
}

function flattenHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) flat[withoutNul(name)] = withoutNul(Array.isArray(value) ? value.join(', ') : value);
  }
  return flat;
}
