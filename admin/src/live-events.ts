/**
 * Following `GET /events/stream` (docs/console.md, "Events"): read with fetch() so that it can
 * carry the admin key (an EventSource cannot send an Authorization header), and reconnected the
 * way an EventSource would, with `Last-Event-ID` set to the last event received, so that a
 * dropped connection or a server restart misses nothing and repeats nothing.
 */
import { API_BASE, type FeedEvent } from './api.js';
import { SseParser } from './sse.js';

/** What the follower is doing, as the page says it. */
export type FollowState =
  | { kind: 'connecting' }
  /** `resumed`: how many times the stream was picked up again after a drop. */
  | { kind: 'live'; resumed: number }
  /** Waiting `retryInMs` before the next try; `why` says what happened. */
  | { kind: 'reconnecting'; why: string; retryInMs: number; resumeAfter: string | null }
  /** Stopped: trying again would get the same answer (401, 403; 400 for `after`, an event the server no longer keeps). */
  | { kind: 'failed'; message: string; status: number; after: string | null };

export interface FollowOptions {
  key: string;
  /** Only these types (the stream's `type=`); empty for all. */
  types: readonly string[];
  /** Start right after this event; null to start at the present. */
  after: string | null;
  /** Called once each time a connection opens, with the id it resumed after. */
  onOpen: (resumedAfter: string | null) => void;
  onEvent: (event: FeedEvent) => void;
  onState: (state: FollowState) => void;
  /** Aborting it stops following: the connection is closed and nothing more is called. */
  signal: AbortSignal;
}

/** The first wait after a drop, doubled at each failed try up to the longest. */
const FIRST_RETRY_MS = 1_000;
const LONGEST_RETRY_MS = 15_000;
/**
 * The server sends a heartbeat every 15 s: nothing for this long means the connection is dead
 * without having said so (a laptop's sleep, a proxy that dropped it), and it is opened again.
 */
const SILENCE_MS = 40_000;
/** What the server asks a refused stream to wait is capped, so that a typo in a proxy's header cannot park the page. */
const LONGEST_RETRY_AFTER_MS = 60_000;

const wait = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });

async function errorOf(response: Response): Promise<{ code: string; message: string }> {
  try {
    const body = (await response.json()) as { error?: { code?: string; message?: string } };
    return { code: body.error?.code ?? 'unknown', message: body.error?.message ?? `The server answered ${response.status}.` };
  } catch {
    return { code: 'unknown', message: `The server answered ${response.status}.` };
  }
}

/** Why a refused stream was refused, in words an admin acts on. */
function refusal(status: number, error: { code: string; message: string }): string {
  if (status === 401) return `The key was refused (401 ${error.code}): it is unknown or has been revoked. Sign in again.`;
  if (status === 403) return `This key may not follow events (403 ${error.code}): the stream needs an admin key.`;
  if (status === 400) return `The server cannot resume the stream (400 ${error.code}): ${error.message}`;
  return `${error.message} (${status} ${error.code})`;
}

/** Follows the stream until `signal` aborts or the server refuses for good. */
export async function followEvents(options: FollowOptions): Promise<void> {
  const { signal } = options;
  let lastId = options.after;
  let retryMs = FIRST_RETRY_MS;
  let opened = 0;
  const query = new URLSearchParams(options.types.map((type) => ['type', type]));
  const url = `${API_BASE}/events/stream${options.types.length > 0 ? `?${query}` : ''}`;

  const retryLater = async (why: string, ms: number) => {
    options.onState({ kind: 'reconnecting', why, retryInMs: ms, resumeAfter: lastId });
    await wait(ms, signal);
  };

  while (!signal.aborted) {
    if (opened === 0) options.onState({ kind: 'connecting' });
    // One controller per connection: the silence watchdog aborts this one, not the follower.
    const connection = new AbortController();
    const stop = () => connection.abort();
    signal.addEventListener('abort', stop);
    try {
      let response: Response;
      try {
        response = await fetch(url, {
          headers: { authorization: `Bearer ${options.key}`, accept: 'text/event-stream', ...(lastId ? { 'last-event-id': lastId } : {}) },
          cache: 'no-store',
          signal: connection.signal,
        });
      } catch {
        if (signal.aborted) return;
        await retryLater('The server cannot be reached.', retryMs);
        retryMs = Math.min(retryMs * 2, LONGEST_RETRY_MS);
        continue;
      }
      if (!response.ok || !response.body) {
        const error = await errorOf(response);
        if (response.status === 429) {
          // Too many streams open on the server: its Retry-After says when a place may be free.
          const seconds = Number(response.headers.get('retry-after'));
          await retryLater(`The server has too many open streams (429 ${error.code}): ${error.message}`, Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds * 1000, LONGEST_RETRY_AFTER_MS) : retryMs);
          continue;
        }
        if (response.status >= 500) {
          // A proxy's 502 while the server restarts, say: it comes back.
          await retryLater(`${error.message} (${response.status})`, retryMs);
          retryMs = Math.min(retryMs * 2, LONGEST_RETRY_MS);
          continue;
        }
        options.onState({ kind: 'failed', message: refusal(response.status, error), status: response.status, after: lastId });
        return;
      }
      options.onState({ kind: 'live', resumed: opened });
      options.onOpen(opened === 0 ? options.after : lastId);
      opened++;
      retryMs = FIRST_RETRY_MS;
      await read(response.body, connection, (event) => {
        lastId = event.id;
        options.onEvent(event);
      });
      if (signal.aborted) return;
      await retryLater('The connection dropped.', retryMs);
      retryMs = Math.min(retryMs * 2, LONGEST_RETRY_MS);
    } finally {
      signal.removeEventListener('abort', stop);
      connection.abort();
    }
  }
}

/** Reads one connection to its end (the server closed it, the network broke, or the watchdog). */
async function read(body: ReadableStream<Uint8Array>, connection: AbortController, onEvent: (event: FeedEvent) => void): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const parser = new SseParser();
  let watchdog = setTimeout(() => connection.abort(), SILENCE_MS);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      clearTimeout(watchdog);
      watchdog = setTimeout(() => connection.abort(), SILENCE_MS);
      for (const message of parser.push(decoder.decode(value, { stream: true }))) {
        if (!message.id) continue;
        // The data line is the webhook payload, `{"event","timestamp","data"}`; the id is beside it.
        const payload = JSON.parse(message.data) as Omit<FeedEvent, 'id'>;
        onEvent({ id: message.id, event: payload.event, timestamp: payload.timestamp, data: payload.data });
      }
    }
  } catch {
    // A broken connection ends the read like a closed one: the follower reconnects either way.
  } finally {
    clearTimeout(watchdog);
    reader.releaseLock();
  }
}
