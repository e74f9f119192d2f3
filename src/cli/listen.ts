/**
 * `helpdesk listen --forward-to <url>`: follows a server's event stream and POSTs every event,
 * signed like a delivery, to a receiver on the developer's machine (docs/configuration.md,
 * "listen and trigger"). A developer tool, not a delivery engine: a forward that fails is
 * printed and not retried, and nothing is stored. The stream is what is durable: after a lost
 * connection listen resumes after the last event it received, so nothing is missed or repeated.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { HELPDESK_VERSION } from '../config.js';
import { DELIVERY_HEADERS, deliveryUserAgent } from '../delivery/delivery-headers.js';
import { signatureHeader } from '../delivery/signing.js';
import { API_BASE } from '../shared/api-base.js';
import { TICKET_EVENT_TYPES } from '../events/event-types.js';
import { EventForwarder, HelpdeskApiClient, ServerUnreachableError, type ApiAnswer, type ForwardResult, type StreamItem } from '../outbound/api-client.js';
import { ClientFailure, describeAnswer, keyRefusal, serverSettings, UsageError, type ServerFlags } from './api-client-settings.js';

export interface ListenFlags extends ServerFlags {
  forwardTo?: string;
  events?: string;
  secret?: string;
}

export interface ListenOptions {
  forwardTo: string;
  /** Empty: every type. */
  eventTypes: readonly string[];
  serverUrl: string;
  apiKey: string;
  secret: string;
}

export interface Output {
  write(text: string): void;
}

const FIRST_RECONNECT_DELAY_MS = 500;
const MAX_RECONNECT_DELAY_MS = 10_000;
/** A 429's Retry-After is honoured up to this; a server asking for more is still tried again. */
const MAX_RETRY_AFTER_MS = 60_000;
const SECRET_PATTERN = /^whsec_[A-Za-z0-9+/]{22,}={0,2}$/;
const TYPE_COLUMN = Math.max(...TICKET_EVENT_TYPES.map((type) => type.length));

/** The same shape as a webhook's signing secret: `whsec_` + base64 of 32 random bytes. */
export function newSigningSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

export function listenOptions(flags: ListenFlags, env: NodeJS.ProcessEnv | undefined): ListenOptions {
  if (flags.forwardTo === undefined) throw new UsageError('listen needs --forward-to <url>: the receiver to POST each event to, e.g. --forward-to http://localhost:3000/webhooks');
  let forwardTo: URL;
  try {
    forwardTo = new URL(flags.forwardTo);
  } catch {
    throw new UsageError(`--forward-to must be an http or https URL, e.g. http://localhost:3000/webhooks, not "${flags.forwardTo}"`);
  }
  if (forwardTo.protocol !== 'http:' && forwardTo.protocol !== 'https:') {
    throw new UsageError(`--forward-to must be an http or https URL, e.g. http://localhost:3000/webhooks, not "${flags.forwardTo}"`);
  }
  const eventTypes = flags.events === undefined ? [] : [...new Set(flags.events.split(',').map((type) => type.trim()).filter((type) => type !== ''))];
  const known: readonly string[] = TICKET_EVENT_TYPES;
  const unknown = eventTypes.filter((type) => !known.includes(type));
  if (flags.events !== undefined && (eventTypes.length === 0 || unknown.length > 0)) {
    throw new UsageError(`--events takes event types separated by commas${unknown.length > 0 ? `, and ${unknown.map((t) => `"${t}"`).join(', ')} is not one` : ''}; the types are ${TICKET_EVENT_TYPES.join(', ')}`);
  }
  if (flags.secret !== undefined && !SECRET_PATTERN.test(flags.secret)) {
    throw new UsageError('--secret must look like a signing secret: whsec_ followed by base64, e.g. one that an earlier listen printed');
  }
  return { forwardTo: forwardTo.href, eventTypes, ...serverSettings(flags, env, 'listen'), secret: flags.secret ?? newSigningSecret() };
}

function pad(value: number, width = 2): string {
  return String(value).padStart(width, '0');
}

/** Local wall-clock time, to the second, like the terminal's own clock. */
function clock(now: Date): string {
  return `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())} ${pad(now.getHours())}:${pad(now.getMinutes())}:${pad(now.getSeconds())}`;
}

/**
 * One line per event: when, the type, the ticket, the event id (the `webhook-id` sent), then the
 * receiver's answer and how long it took. e.g.
 * `2026-12-04 18:01:24  ticket.created             tkt_0a1b...  evt_0a1b...  --> 200 (12 ms)`
 */
export function eventLine(now: Date, type: string, ticketId: string | null, eventId: string, result: ForwardResult): string {
  const answer =
    result.statusCode !== null
      ? `--> ${result.statusCode}${result.error === 'redirect' ? ' (redirects are not followed)' : ''} (${result.durationMs} ms)`
      : `--> failed: ${result.error?.replaceAll('_', ' ') ?? 'error'}${result.errorMessage ? `, ${result.errorMessage}` : ''} (${result.durationMs} ms)`;
  return `${clock(now)}  ${type.padEnd(TYPE_COLUMN)}  ${ticketId ?? '-'}  ${eventId}  ${answer}`;
}

function ticketIdOf(payload: unknown): string | null {
  const id = (payload as { data?: { ticket?: { id?: unknown } } } | null)?.data?.ticket?.id;
  return typeof id === 'string' ? id : null;
}

function parsePayload(data: string): unknown {
  try {
    return JSON.parse(data);
  } catch {
    return null;
  }
}

/** Seconds of a Retry-After header as milliseconds, or null. */
function retryAfterMs(answer: ApiAnswer): number | null {
  const seconds = Number(answer.headers['retry-after']);
  return Number.isFinite(seconds) && seconds >= 0 ? Math.min(seconds * 1000, MAX_RETRY_AFTER_MS) : null;
}

function seconds(ms: number): string {
  return `${ms / 1000} s`;
}

type Refusal = { fatal: ClientFailure } | { retryInMs: number | null; reason: string };

/** Why listen cannot start: any refusal of its first requests stops it, saying what to fix. */
function startRefusal(answer: ApiAnswer, options: ListenOptions): ClientFailure {
  const keyProblem = keyRefusal(answer, options.serverUrl);
  if (keyProblem) return keyProblem;
  if (answer.status === 404) {
    return new ClientFailure(`${options.serverUrl} has no event feed (${describeAnswer(answer)}): is --url the base URL of a Helpdesk server, and is it a version with GET ${API_BASE}/events?`);
  }
  if (answer.status === 429) {
    return new ClientFailure(`the server at ${options.serverUrl} has as many open event streams as it allows, or this key is over its rate limit (${describeAnswer(answer)}): stop another listen, or try again later`);
  }
  return new ClientFailure(`the server at ${options.serverUrl} refused listen: ${describeAnswer(answer)}`);
}

/** What a refused stream request means once listen was running. */
function judgeRefusal(answer: ApiAnswer, options: ListenOptions, resumingAfter: string | null, firstConnection: boolean): Refusal {
  if (firstConnection) return { fatal: startRefusal(answer, options) };
  const keyProblem = keyRefusal(answer, options.serverUrl);
  if (keyProblem) return { fatal: keyProblem };
  if (answer.status === 400 && resumingAfter !== null) {
    return {
      fatal: new ClientFailure(
        `the server no longer keeps ${resumingAfter}, the last event listen received (${describeAnswer(answer)}), so it cannot resume without missing events: start listen again to follow new events`,
      ),
    };
  }
  if (answer.status < 500 && answer.status !== 429) {
    return { fatal: new ClientFailure(`the server at ${options.serverUrl} refused the event stream: ${describeAnswer(answer)}`) };
  }
  // A server that is starting up or overloaded: worth waiting for, like a lost connection.
  return { retryInMs: answer.status === 429 ? retryAfterMs(answer) : null, reason: describeAnswer(answer) };
}

/**
 * The stream starts at the moment of the request (docs/api.md, "The event feed"): a connection
 * lost before the first event would have nothing to resume after, and what was written while it
 * was down would be missed. So listen starts after the newest event the feed holds, as a
 * position: events committed around the start may be forwarded, none is ever skipped. Null on a
 * server that has no event yet.
 */
async function newestEventId(client: HelpdeskApiClient, options: ListenOptions, stop: AbortSignal): Promise<string | null> {
  let answer: ApiAnswer;
  try {
    answer = await client.call('GET', '/events?limit=1', undefined, stop);
  } catch (error) {
    if (error instanceof ServerUnreachableError) throw new ClientFailure(`${error.message} (is "helpdesk serve" running there? --url chooses the server)`, { cause: error });
    throw error;
  }
  if (answer.status !== 200) throw startRefusal(answer, options);
  const newest = (answer.body as { events?: { id?: unknown }[] } | null)?.events?.[0]?.id;
  return typeof newest === 'string' ? newest : null;
}

/**
 * Runs until `stop` is aborted (exit 0) or something only the user can fix happens (throws
 * ClientFailure). `out` gets the Ready line, one line per event and the connection's news.
 */
export async function listen(options: ListenOptions, out: Output, stop: AbortSignal): Promise<void> {
  const client = new HelpdeskApiClient(options.serverUrl, options.apiKey);
  const forwarder = new EventForwarder();
  const say = (line: string) => out.write(`${line}\n`);
  const userAgent = deliveryUserAgent(HELPDESK_VERSION);
  let lastEventId: string | null = null;
  let ready = false;
  let connectedBefore = false;
  let delayMs = FIRST_RECONNECT_DELAY_MS;

  const forward = async (item: Extract<StreamItem, { kind: 'event' }>): Promise<void> => {
    const payload = parsePayload(item.data);
    const type = item.type ?? ((payload as { event?: unknown } | null)?.event as string | undefined) ?? 'message';
    if (item.id === null) {
      say(`${clock(new Date())}  ${type.padEnd(TYPE_COLUMN)}  ${ticketIdOf(payload) ?? '-'}  (no id)  --> not forwarded: the server sent it without an id`);
      return;
    }
    const timestamp = Math.floor(Date.now() / 1000);
    const headers = {
      'content-type': 'application/json',
      [DELIVERY_HEADERS.userAgent.name]: userAgent,
      [DELIVERY_HEADERS.id.name]: item.id,
      [DELIVERY_HEADERS.timestamp.name]: String(timestamp),
      [DELIVERY_HEADERS.signature.name]: signatureHeader([options.secret], item.id, timestamp, item.data),
      [DELIVERY_HEADERS.event.name]: type,
    };
    const result = await forwarder.post(options.forwardTo, headers, item.data, stop);
    say(eventLine(new Date(), type, ticketIdOf(payload), item.id, result));
  };

  const wait = async (ms: number): Promise<void> => {
    await sleep(ms, undefined, { signal: stop }).catch(() => undefined);
  };

  try {
    lastEventId = await newestEventId(client, options, stop);
    while (!stop.aborted) {
      let opening;
      try {
        opening = await client.openEventStream({ types: options.eventTypes, lastEventId, signal: stop });
      } catch (error) {
        if (stop.aborted) return;
        if (!(error instanceof ServerUnreachableError)) throw error;
        if (!connectedBefore) throw new ClientFailure(`${error.message} (is "helpdesk serve" running there? --url chooses the server)`);
        say(`Could not reconnect to ${options.serverUrl} (${error.detail}); trying again in ${seconds(delayMs)}`);
        await wait(delayMs);
        delayMs = Math.min(delayMs * 2, MAX_RECONNECT_DELAY_MS);
        continue;
      }
      if (opening.kind === 'refused') {
        const refusal = judgeRefusal(opening.answer, options, lastEventId, !connectedBefore);
        if ('fatal' in refusal) throw refusal.fatal;
        const pause = Math.max(refusal.retryInMs ?? 0, delayMs);
        say(`Could not reconnect to ${options.serverUrl} (${refusal.reason}); trying again in ${seconds(pause)}`);
        await wait(pause);
        delayMs = Math.min(delayMs * 2, MAX_RECONNECT_DELAY_MS);
        continue;
      }
      if (connectedBefore) {
        say(
          lastEventId === null
            ? `Reconnected to ${options.serverUrl}. No event had arrived before the connection was lost, so listen follows new events from now on`
            : `Reconnected to ${options.serverUrl}; resumed after ${lastEventId}`,
        );
      }
      connectedBefore = true;
      delayMs = FIRST_RECONNECT_DELAY_MS;
      let reason = 'the server closed the stream';
      try {
        for await (const item of opening.items) {
          // The server's first bytes are this comment, sent once it follows the events: an
          // event committed after the Ready line is certain to come.
          if (!ready && (item.kind === 'event' || item.text === 'stream open')) {
            ready = true;
            say(`Ready. Signing secret: ${options.secret}`);
            say(`Forwarding ${options.eventTypes.length === 0 ? 'every event' : options.eventTypes.join(', ')} from ${options.serverUrl} to ${options.forwardTo} (Ctrl-C stops)`);
          }
          if (item.kind !== 'event') continue;
          await forward(item);
          if (item.id !== null) lastEventId = item.id;
        }
      } catch (error) {
        if (stop.aborted) return;
        if (!(error instanceof ServerUnreachableError)) throw error;
        reason = error.detail;
      }
      if (stop.aborted) return;
      say(`Lost the connection to ${options.serverUrl} (${reason}); reconnecting in ${seconds(delayMs)}`);
      await wait(delayMs);
      delayMs = Math.min(delayMs * 2, MAX_RECONNECT_DELAY_MS);
    }
  } finally {
    await Promise.all([client.close(), forwarder.close()]);
  }
}
