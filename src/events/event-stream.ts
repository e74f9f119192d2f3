/**
 * `GET /events/stream` (docs/api.md, "The event stream"): Server-Sent Events in commit order, one
 * message per feed event, resumable from any event id it sent (`Last-Event-ID` or `?after=`),
 * across restarts, with nothing missed and nothing repeated (events.repository.ts says how the
 * positions make that hold on PostgreSQL too).
 *
 * One hub per process serves every stream. It reads new events when a change of this process
 * commits (at once), and every `pollMs` while a stream is open (changes of other processes);
 * streams at the same position share one read. Memory per stream is bounded: an event is written
 * only while the connection's buffer is below its high-water mark; a stream whose buffer has not
 * drained for `stallMs` is dropped, and its client resumes from the last event it read.
 */
import type { Logger } from 'pino';
import type { Capabilities } from '../db/capabilities.js';
import type { Db } from '../db/connection.js';
import { AppError } from '../errors.js';
import { eventsAfter, latestPosition, positionOf, sequenceEvents, type StreamedEventRow } from './events.repository.js';

/** Told by whatever commits events in this process, so that open streams send them at once. */
export interface EventsCommittedListener {
  eventsCommitted(): void;
}

/** What the hub reports, for metrics; the metrics module implements it. */
export interface EventStreamObserver {
  streamOpened(): void;
  streamClosed(reason: StreamCloseReason): void;
  /** A stream refused for want of a free place (429). */
  streamRefused(): void;
  eventsStreamed(count: number): void;
}

/** Why a stream ended: its client left, it stopped reading, or the server is stopping. */
export type StreamCloseReason = 'client' | 'slow' | 'shutdown';

export const NO_STREAM_OBSERVER: EventStreamObserver = { streamOpened: () => undefined, streamClosed: () => undefined, streamRefused: () => undefined, eventsStreamed: () => undefined };

/** The connection a stream writes to (the HTTP response, once its headers are sent). */
export interface StreamConnection {
  /** Like a writable stream's write: false once the buffer is over its high-water mark. */
  write(chunk: string): boolean;
  onDrain(listener: () => void): void;
  onClose(listener: () => void): void;
  /** The client left already (while the stream's start was being looked up). */
  isClosed(): boolean;
  /** Ends the response cleanly (the server is stopping). */
  end(): void;
  /** Drops the connection (a stalled client). */
  destroy(): void;
}

export interface EventStreamOptions {
  db: Db;
  capabilities: Capabilities;
  logger: Logger;
  /** Streams open at once in this process; one more is a 429. */
  maxStreams: number;
  /** A comment line this often keeps proxies from closing an idle stream. */
  heartbeatMs?: number;
  /** How often open streams look for events committed by other processes. */
  pollMs?: number;
  /** A stream whose buffer has not drained for this long is dropped. */
  stallMs?: number;
  observer?: EventStreamObserver;
}

export const DEFAULT_HEARTBEAT_MS = 15_000;
const DEFAULT_POLL_MS = 250;
const DEFAULT_STALL_MS = 30_000;
/** Events read per query; a stream behind by more reads page after page. */
const PAGE_SIZE = 200;

/** Where a stream starts: after an event it names, or (none named) after the latest committed one. */
export interface StreamStart {
  /** An event id, from `Last-Event-ID` or `?after=`, and which of the two it came in. */
  after?: { id: string; from: 'Last-Event-ID' | 'after' };
  /** Only these types are sent (every feed type when absent). */
  types?: readonly string[];
}

interface Stream {
  position: number;
  readonly types: ReadonlySet<string> | null;
  readonly connection: StreamConnection;
  /**
   * Set while the connection's buffer is full: nothing more is written until it drains, and the
   * stream is dropped if that takes stallMs.
   */
  stallTimer: NodeJS.Timeout | null;
  closed: boolean;
}

/** One SSE message: the payload is JSON on one line (JSON escapes every line break inside it). */
function message(row: StreamedEventRow): string {
  return `id: ${row.id}\nevent: ${row.type}\ndata: ${row.payload}\n\n`;
}

export class EventStreamHub implements EventsCommittedListener {
  readonly #options: Required<Omit<EventStreamOptions, 'observer'>> & { observer: EventStreamObserver };
  readonly #streams = new Set<Stream>();
  /** Places taken by streams being opened (their start is being looked up), so that the limit holds while they wait. */
  #opening = 0;
  #pumping = false;
  #pumpAgain = false;
  #heartbeat: NodeJS.Timeout | null = null;
  #poll: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(options: EventStreamOptions) {
    this.#options = {
      heartbeatMs: DEFAULT_HEARTBEAT_MS,
      pollMs: DEFAULT_POLL_MS,
      stallMs: DEFAULT_STALL_MS,
      observer: NO_STREAM_OBSERVER,
      ...options,
    };
  }

  get openStreams(): number {
    return this.#streams.size;
  }

  /**
   * Takes a place and finds where the stream starts; throws the request's error (429 past the
   * limit, 400 for an event it does not keep) before anything is written. `connect` is called
   * once the start is known, to send the response's headers and return the connection.
   */
  async open(start: StreamStart, connect: () => StreamConnection): Promise<void> {
    if (this.#closed) throw new AppError('unavailable', 'The server is stopping; connect again in a moment.');
    if (this.#streams.size + this.#opening >= this.#options.maxStreams) {
      this.#options.observer.streamRefused();
      throw new AppError('rate_limited', `This server already serves ${this.#options.maxStreams} event streams (HELPDESK_EVENT_STREAMS); close one or try again later.`);
    }
    this.#opening += 1;
    let position: number;
    try {
      position = await this.#startPosition(start);
    } finally {
      this.#opening -= 1;
    }
    if (this.#closed) throw new AppError('unavailable', 'The server is stopping; connect again in a moment.');
    const connection = connect();
    // Its close event has passed: listening for it now would keep the stream forever.
    if (connection.isClosed()) return;
    const stream: Stream = { position, types: start.types ? new Set(start.types) : null, connection, stallTimer: null, closed: false };
    this.#streams.add(stream);
    this.#options.observer.streamOpened();
    stream.connection.onClose(() => this.#remove(stream, 'client'));
    stream.connection.onDrain(() => {
      if (stream.stallTimer) clearTimeout(stream.stallTimer);
      stream.stallTimer = null;
      this.wake();
    });
    stream.connection.write(': stream open\n\n');
    this.#startTimers();
    this.wake();
  }

  async #startPosition(start: StreamStart): Promise<number> {
    const { db, capabilities } = this.#options;
    // Whatever committed before now is numbered first: a stream without a cursor starts after it,
    // and an event a client can name (it read it, so it had committed) has its position now.
    await sequenceEvents(db, capabilities);
    if (start.after === undefined) return latestPosition(db);
    const position = await positionOf(db, start.after.id);
    if (position === undefined) {
      throw AppError.invalidField(
        start.after.from,
        'names no event this server keeps: it is not an event id, or the event is older than the retention period. Catch up with GET /events, then open the stream without it.',
      );
    }
    return position;
  }

  eventsCommitted(): void {
    this.wake();
  }

  /** Events were committed (by this process: at once; by others: the poll finds them). */
  wake(): void {
    if (this.#streams.size === 0 || this.#closed) return;
    if (this.#pumping) {
      this.#pumpAgain = true;
      return;
    }
    this.#pumping = true;
    void this.#pump()
      .catch((error: unknown) => this.#options.logger.warn({ err: error }, 'event streams could not read new events; trying again at the next poll'))
      .finally(() => {
        this.#pumping = false;
        if (this.#pumpAgain) {
          this.#pumpAgain = false;
          this.wake();
        }
      });
  }

  async #pump(): Promise<void> {
    const { db, capabilities, observer } = this.#options;
    await sequenceEvents(db, capabilities);
    for (;;) {
      // Streams at one position share a read; a stalled stream waits for its drain.
      const byPosition = new Map<number, Stream[]>();
      for (const stream of this.#streams) {
        if (stream.closed || stream.stallTimer !== null) continue;
        const group = byPosition.get(stream.position);
        if (group) group.push(stream);
        else byPosition.set(stream.position, [stream]);
      }
      let morePages = false;
      for (const [position, streams] of byPosition) {
        const rows = await eventsAfter(db, position, PAGE_SIZE);
        if (rows.length === PAGE_SIZE) morePages = true;
        for (const stream of streams) observer.eventsStreamed(this.#send(stream, rows));
      }
      if (!morePages || this.#closed) return;
    }
  }

  /**
   * Writes the rows the stream wants, in order, until its buffer is full; its position moves past
   * every row written or skipped (another type), so that a resumed read starts after them.
   */
  #send(stream: Stream, rows: readonly StreamedEventRow[]): number {
    let sent = 0;
    for (const row of rows) {
      if (stream.closed || stream.stallTimer !== null) break;
      stream.position = row.position;
      if (stream.types !== null && !stream.types.has(row.type)) continue;
      sent += 1;
      if (!stream.connection.write(message(row))) this.#stalled(stream);
    }
    return sent;
  }

  #stalled(stream: Stream): void {
    stream.stallTimer = setTimeout(() => {
      this.#options.logger.info({ stalledMs: this.#options.stallMs }, 'dropped an event stream that stopped reading; its client can resume with Last-Event-ID');
      this.#remove(stream, 'slow');
      stream.connection.destroy();
    }, this.#options.stallMs);
  }

  #remove(stream: Stream, reason: StreamCloseReason): void {
    if (stream.closed) return;
    stream.closed = true;
    if (stream.stallTimer) clearTimeout(stream.stallTimer);
    this.#streams.delete(stream);
    this.#options.observer.streamClosed(reason);
    if (this.#streams.size === 0) this.#stopTimers();
  }

  #startTimers(): void {
    if (this.#heartbeat === null) {
      this.#heartbeat = setInterval(() => {
        for (const stream of this.#streams) if (stream.stallTimer === null) stream.connection.write(': heartbeat\n\n');
      }, this.#options.heartbeatMs);
      this.#heartbeat.unref();
    }
    if (this.#poll === null) {
      this.#poll = setInterval(() => this.wake(), this.#options.pollMs);
      this.#poll.unref();
    }
  }

  #stopTimers(): void {
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    if (this.#poll) clearInterval(this.#poll);
    this.#heartbeat = null;
    this.#poll = null;
  }

  /** Ends every stream (the server is stopping): clients reconnect to another process or after the restart. */
  close(): void {
    this.#closed = true;
    for (const stream of [...this.#streams]) {
      this.#remove(stream, 'shutdown');
      stream.connection.end();
    }
    this.#stopTimers();
  }
}
