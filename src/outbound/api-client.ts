/**
 * HTTP for the API client commands, `helpdesk listen` and `helpdesk trigger`: calls to a Helpdesk
 * server's API, its event stream, and listen's forwards to a receiver. They run on a developer's
 * machine at the developer's command, so unlike http-client.ts (the server's own deliveries, which
 * anyone with an admin key can aim) there is no address policy and plain http is allowed: the
 * server and the receiver are usually on localhost. https trusts what Node trusts, so
 * NODE_EXTRA_CA_CERTS adds a local CA as it does for any Node program.
 */
import { createParser } from 'eventsource-parser';
import { Agent, request } from 'undici';
import { API_BASE } from '../shared/api-base.js';
import { classifyNetworkError, DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_TOTAL_TIMEOUT_MS, networkErrorMessage, type AttemptError } from './http-client.js';

/** A call's answer must start within this (as a delivery's must end); a stream's next bytes too (see STREAM_SILENCE_MS). */
const CALL_TIMEOUT_MS = DEFAULT_TOTAL_TIMEOUT_MS;
/**
 * The server sends a heartbeat every 15 s: three missed ones mean the connection is dead even if
 * no FIN or RST ever arrives (a laptop that slept, a NAT that forgot it), and listen reconnects.
 */
const STREAM_SILENCE_MS = 45_000;
/** Far above any event (a ticket is at most about 1 MB of JSON), but not unbounded. */
const MAX_SSE_BUFFER_CHARS = 16 * 1024 * 1024;
/** What listen waits for a receiver's whole answer: what a delivery attempt waits. */
const FORWARD_TIMEOUT_MS = DEFAULT_TOTAL_TIMEOUT_MS;

/** The server could not be reached, or the connection failed before an answer. */
export class ServerUnreachableError extends Error {
  constructor(
    readonly serverUrl: string,
    readonly detail: string,
    options: { cause: unknown },
  ) {
    super(`cannot reach the Helpdesk server at ${serverUrl}: ${detail}`, options);
  }
}

export interface ApiAnswer {
  status: number;
  /** The JSON body, or the text when it is not JSON, or null when empty. */
  body: unknown;
  headers: Record<string, string>;
}

/** What an event stream gives: the server's comments (`stream open`, `heartbeat`) and its events. */
export type StreamItem =
  | { kind: 'comment'; text: string }
  | { kind: 'event'; id: string | null; type: string | null; data: string };

export type StreamOpening = { kind: 'refused'; answer: ApiAnswer } | { kind: 'open'; items: AsyncGenerator<StreamItem, void, undefined> };

export interface ForwardResult {
  /** Null when no answer came. */
  statusCode: number | null;
  durationMs: number;
  /** Null for a 2xx answer. */
  error: AttemptError | null;
  /** What the network said, for a failure without an answer. */
  errorMessage: string | null;
}

function flatten(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined) flat[name] = Array.isArray(value) ? value.join(', ') : value;
  return flat;
}

function parseBody(text: string): unknown {
  if (text === '') return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Once the caller aborted (Ctrl-C), whatever failed is that, not the network: passed through as it is. */
function isAbort(_error: unknown, signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

export class HelpdeskApiClient {
  readonly serverUrl: string;
  readonly #apiBase: string;
  readonly #apiKey: string;
  readonly #agent = new Agent({ connect: { timeout: DEFAULT_CONNECT_TIMEOUT_MS }, headersTimeout: CALL_TIMEOUT_MS, bodyTimeout: CALL_TIMEOUT_MS });
  readonly #streamAgent = new Agent({ connect: { timeout: DEFAULT_CONNECT_TIMEOUT_MS }, headersTimeout: CALL_TIMEOUT_MS, bodyTimeout: STREAM_SILENCE_MS });

  /** `serverUrl`: the server's base URL, e.g. `http://127.0.0.1:8080` (the API is under /helpdesk/api/v1). */
  constructor(serverUrl: string, apiKey: string) {
    this.serverUrl = serverUrl.replace(/\/+$/, '');
    this.#apiBase = `${this.serverUrl}${API_BASE}`;
    this.#apiKey = apiKey;
  }

  /** One API call; a JSON body is sent as JSON. Throws ServerUnreachableError when no answer came. */
  async call(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown, signal?: AbortSignal): Promise<ApiAnswer> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.#apiKey}`, accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    try {
      const response = await request(`${this.#apiBase}${path}`, {
        dispatcher: this.#agent,
        method,
        headers,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        ...(signal ? { signal } : {}),
      });
      const text = await response.body.text();
      return { status: response.statusCode, body: parseBody(text), headers: flatten(response.headers) };
    } catch (error) {
      if (isAbort(error, signal)) throw error;
      throw new ServerUnreachableError(this.serverUrl, networkErrorMessage(error), { cause: error });
    }
  }

  /**
   * `GET /events/stream`, resumed after `lastEventId` when given (as the Last-Event-ID header).
   * A non-200 answer is returned whole (the error body says why); a 200 gives the stream, which
   * ends when the server closes it and throws ServerUnreachableError when the connection fails.
   */
  async openEventStream(options: { types: readonly string[]; lastEventId: string | null; signal?: AbortSignal }): Promise<StreamOpening> {
    const query = new URLSearchParams(options.types.map((type): [string, string] => ['type', type]));
    const url = `${this.#apiBase}/events/stream${query.size > 0 ? `?${query}` : ''}`;
    const headers: Record<string, string> = { authorization: `Bearer ${this.#apiKey}`, accept: 'text/event-stream' };
    if (options.lastEventId !== null) headers['last-event-id'] = options.lastEventId;
    let response: Awaited<ReturnType<typeof request>>;
    try {
      response = await request(url, { dispatcher: this.#streamAgent, method: 'GET', headers, ...(options.signal ? { signal: options.signal } : {}) });
    } catch (error) {
      if (isAbort(error, options.signal)) throw error;
      throw new ServerUnreachableError(this.serverUrl, networkErrorMessage(error), { cause: error });
    }
    if (response.statusCode !== 200) {
      const text = await response.body.text().catch(() => '');
      return { kind: 'refused', answer: { status: response.statusCode, body: parseBody(text), headers: flatten(response.headers) } };
    }
    return { kind: 'open', items: this.#streamItems(response.body, options.signal) };
  }

  async *#streamItems(body: AsyncIterable<Buffer>, signal: AbortSignal | undefined): AsyncGenerator<StreamItem, void, undefined> {
    const parsed: StreamItem[] = [];
    const parser = createParser({
      maxBufferSize: MAX_SSE_BUFFER_CHARS,
      onEvent: (message) => parsed.push({ kind: 'event', id: message.id ?? null, type: message.event ?? null, data: message.data }),
      onComment: (comment) => parsed.push({ kind: 'comment', text: comment.trim() }),
    });
    const decoder = new TextDecoder();
    try {
      // Read only as fast as the caller takes events: a caller that is busy forwarding leaves the
      // bytes in the socket, and the server, not this process, decides when that is too slow.
      for await (const chunk of body) {
        parser.feed(decoder.decode(chunk, { stream: true }));
        while (parsed.length > 0) yield parsed.shift()!;
      }
    } catch (error) {
      if (isAbort(error, signal)) throw error;
      throw new ServerUnreachableError(this.serverUrl, networkErrorMessage(error), { cause: error });
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.#agent.destroy(), this.#streamAgent.destroy()]);
  }
}

/** listen's POSTs to the developer's receiver: one at a time, no redirects followed. */
export class EventForwarder {
  readonly #agent = new Agent({ connect: { timeout: DEFAULT_CONNECT_TIMEOUT_MS }, headersTimeout: FORWARD_TIMEOUT_MS, bodyTimeout: FORWARD_TIMEOUT_MS });

  async post(url: string, headers: Record<string, string>, body: string, signal?: AbortSignal): Promise<ForwardResult> {
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(new DOMException(`no complete answer within ${FORWARD_TIMEOUT_MS / 1000} s`, 'TimeoutError')), FORWARD_TIMEOUT_MS);
    const onAbort = () => timeout.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const response = await request(url, { dispatcher: this.#agent, method: 'POST', headers, body, signal: timeout.signal });
      // The status decides; the body is read only so that the connection can be kept.
      await response.body.dump({ limit: 64 * 1024 }).catch(() => undefined);
      const statusCode = response.statusCode;
      const ok = statusCode >= 200 && statusCode < 300;
      return { statusCode, durationMs: elapsed(), error: ok ? null : statusCode >= 300 && statusCode < 400 ? 'redirect' : 'http_status', errorMessage: null };
    } catch (error) {
      if (isAbort(error, signal)) throw error;
      const kind = classifyNetworkError(error) ?? 'connection_reset';
      return { statusCode: null, durationMs: elapsed(), error: kind, errorMessage: networkErrorMessage(error) };
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  async close(): Promise<void> {
    await this.#agent.destroy();
  }
}
