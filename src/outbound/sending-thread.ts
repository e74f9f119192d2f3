/**
 * Delivery attempts sent from a worker thread of their own: TLS, the HTTP exchange and reading
 * the answer run beside the main thread, which keeps the database work, the API and the
 * bookkeeping of each attempt. One Node thread doing all of it was the ceiling of a process on
 * more than one core (docs/benchmarks.md, "Issue 19"). The thread runs this module's OutboundHttp
 * unchanged; requests and answers cross in batches, one message per turn of either loop. Off
 * by default (HELPDESK_SENDING_THREAD): its first seconds after a start, while its code is cold,
 * are slower than the main thread's.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker, type ResourceLimits } from 'node:worker_threads';
import type { OutboundClient, OutboundHttpOptions, OutboundResponse } from './http-client.js';

export type SendingThreadRequest =
  | { kind: 'batch'; posts: { id: number; url: string; headers: Record<string, string>; body: string }[]; cancels: number[] }
  | { kind: 'close' };

export type SendingThreadReply = { id: number; response: OutboundResponse } | { id: number; error: { name: string; message: string; code?: string } };

const ENTRY = new URL('./sending-thread-entry.js', import.meta.url);

/**
 * The thread's young generation: V8 grows it to 32 MB by default, far more than the attempts on
 * the wire need between two collections; 8 MB took 10 to 15 MB off a drain's peak resident
 * memory at the same CPU per delivery (docs/benchmarks.md, "Issue 19"). The old generation is
 * not capped: a thread over its cap can take the whole process down with it, and what it holds
 * grows with the payloads on the wire (up to 256 of up to 1 MB each).
 */
const THREAD_HEAP_LIMITS: ResourceLimits = { maxYoungGenerationSizeMb: 8 };

/** How long close() lets the thread close its connections before it ends the thread. */
const CLOSE_WAIT_MS = 2_000;

/**
 * Whether the thread's module is there to run: it is in the build (dist/), not beside the
 * TypeScript sources, which Node cannot load as a thread (in-process tests send inline).
 */
export function sendingThreadAvailable(): boolean {
  return existsSync(fileURLToPath(ENTRY));
}

interface Pending {
  resolve(response: OutboundResponse): void;
  reject(error: Error): void;
  cancel?: AbortSignal;
  onCancel?: () => void;
}

export class SendingThread implements OutboundClient {
  readonly #options: OutboundHttpOptions;
  #worker: Worker | null = null;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #posts: Extract<SendingThreadRequest, { kind: 'batch' }>['posts'] = [];
  #cancels: number[] = [];
  #flushScheduled = false;
  #closed = false;
  /** Resolves when the current thread has loaded its client (or has ended). */
  #ready: Promise<void> = Promise.resolve();

  /** `options` must be plain data (it is copied to the thread): a `lookup` function cannot cross. */
  constructor(options: OutboundHttpOptions) {
    if (options.lookup) throw new Error('a custom lookup cannot be used by the sending thread');
    this.#options = options;
  }

  post(url: string, headers: Record<string, string>, body: string, cancel?: AbortSignal): Promise<OutboundResponse> {
    if (this.#closed) return Promise.reject(new Error('the sending thread is closed'));
    const id = this.#nextId++;
    return new Promise<OutboundResponse>((resolve, reject) => {
      const pending: Pending = { resolve, reject };
      if (cancel) {
        pending.cancel = cancel;
        pending.onCancel = () => this.#queue(() => this.#cancels.push(id));
        cancel.addEventListener('abort', pending.onCancel, { once: true });
      }
      this.#pending.set(id, pending);
      this.#thread().ref();
      this.#queue(() => this.#posts.push({ id, url, headers, body }));
    });
  }

  /**
   * Starts the thread, which loads the HTTP client in its own thread, beside the main one, and
   * resolves once it is ready. Called as the runtime is built, so that the thread boots while
   * the main thread opens the database and builds the app: left to the first attempt, a new
   * thread's start (an isolate, its modules, cold code) delayed the first half second of
   * deliveries after a restart (docs/benchmarks.md, "Issue 19").
   */
  prepare(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    const worker = this.#thread();
    if (this.#pending.size === 0) worker.unref();
    return this.#ready;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const worker = this.#worker;
    this.#worker = null;
    if (!worker) return;
    // The thread closes its connections first, as the inline client does, then ends; a thread
    // that does not answer (stuck in a bug) is ended anyway, so that a stop never hangs on it.
    let timer: NodeJS.Timeout | undefined;
    const closed = new Promise<void>((resolve) => {
      worker.on('message', (message) => message === 'closed' && resolve());
      worker.once('exit', () => resolve());
      timer = setTimeout(resolve, CLOSE_WAIT_MS);
    });
    worker.postMessage({ kind: 'close' } satisfies SendingThreadRequest);
    await closed;
    clearTimeout(timer);
    await worker.terminate();
    this.#failAll(new Error('the sending thread was closed before the answer came'));
  }

  #queue(add: () => void): void {
    add();
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    // What one turn of the loop starts (a claim's worth of attempts) goes over in one message.
    setImmediate(() => {
      this.#flushScheduled = false;
      const posts = this.#posts;
      const cancels = this.#cancels;
      this.#posts = [];
      this.#cancels = [];
      if (posts.length === 0 && cancels.length === 0) return;
      this.#worker?.postMessage({ kind: 'batch', posts, cancels } satisfies SendingThreadRequest);
    });
  }

  #thread(): Worker {
    if (this.#worker) return this.#worker;
    const worker = new Worker(ENTRY, { workerData: this.#options, resourceLimits: THREAD_HEAP_LIMITS });
    let ready!: () => void;
    this.#ready = new Promise<void>((resolve) => (ready = resolve));
    worker.once('exit', () => ready());
    worker.on('message', (replies: SendingThreadReply[] | 'closed' | 'ready') => {
      if (replies === 'ready') return ready();
      if (replies === 'closed') return;
      for (const reply of replies) this.#settle(reply);
      if (this.#pending.size === 0) worker.unref();
    });
    // A thread that dies (a bug) fails what it held, each as an attempt that could not be
    // completed (the worker reschedules those); the next request starts a new thread.
    const died = (error: Error) => {
      if (this.#worker !== worker) return;
      this.#worker = null;
      this.#failAll(error);
    };
    worker.on('error', died);
    worker.on('exit', (code) => died(new Error(`the sending thread stopped (exit code ${code})`)));
    this.#worker = worker;
    return worker;
  }

  #settle(reply: SendingThreadReply): void {
    const pending = this.#pending.get(reply.id);
    if (!pending) return;
    this.#pending.delete(reply.id);
    if (pending.onCancel) pending.cancel?.removeEventListener('abort', pending.onCancel);
    if ('response' in reply) pending.resolve(reply.response);
    else pending.reject(Object.assign(new Error(reply.error.message), { name: reply.error.name, ...(reply.error.code ? { code: reply.error.code } : {}) }));
  }

  #failAll(error: Error): void {
    for (const [id, pending] of this.#pending) {
      this.#pending.delete(id);
      if (pending.onCancel) pending.cancel?.removeEventListener('abort', pending.onCancel);
      pending.reject(error);
    }
  }
}
