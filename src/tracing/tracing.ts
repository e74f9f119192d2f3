/**
 * OpenTelemetry tracing (docs/deployment.md, "Tracing"), as the rest of the server sees it: a
 * request span, the spans of a change's transaction, a span per delivery attempt. Spans meet
 * across processes and hours through W3C `traceparent` text: it is what a request brings, what
 * an event stores (events.traceparent) and what an attempt sends, so nothing above this layer
 * handles an OpenTelemetry type.
 *
 * Off, the SDK is never loaded (start-tracing.ts imports it only when on): callers hold TRACING_OFF,
 * whose `enabled` is false, and the hot paths test that one boolean before doing anything.
 */
/** `00-<trace id>-<span id>-<flags>`: a span's place in its trace (W3C Trace Context). */
export type Traceparent = string;

/** What an incoming request says of itself when its span starts. */
export interface RequestSpanStart {
  readonly method: string;
  /** The route's template (`/helpdesk/api/v1/tickets/:id`); undefined when no route matched. */
  readonly route: string | undefined;
  /** The path without the query string. */
  readonly path: string;
  readonly host: string | undefined;
  readonly clientAddress: string;
  readonly userAgent: string | undefined;
  /** The caller's `traceparent` header: the request span continues its trace. */
  readonly traceparent: string | undefined;
}

export interface RequestSpan {
  /** For the spans the request's work starts (its transaction's). */
  readonly traceparent: Traceparent;
  /** `error` names what failed when the request got no answer (an abort), its status then null. */
  end(statusCode: number | null, error?: string): void;
}

/** Spans around one database transaction: one per change it writes (a group commit writes many). */
export interface TransactionSpans {
  /** One per change, in order: the parent of the change's delivery attempts, stored with its events. */
  readonly traceparents: readonly (Traceparent | null)[];
  end(error?: unknown): void;
}

export interface AttemptSpanStart {
  /** The event's stored traceparent; null starts a trace of its own (an event made untraced). */
  readonly parent: Traceparent | null;
  readonly targetUrl: string;
  readonly webhookId: string;
  readonly deliveryId: string;
  readonly eventType: string;
  /** Attempts of its schedule made before this one (0 for the first). */
  readonly previousAttempts: number;
  /** An admin's redelivery of a finished delivery, outside its schedule. */
  readonly redelivery: boolean;
}

export interface AttemptSpan {
  /** Sent as the attempt's `traceparent` header. */
  readonly traceparent: Traceparent;
  /** `error` is the attempt's error kind (docs/delivery.md), null for a 2xx. */
  end(statusCode: number | null, error: string | null): void;
}

/** Spans handed to the collector so far, by how the export went (`/metrics`). */
export interface SpanExportCounts {
  readonly exported: number;
  /** Refused, timed out or unreachable: those spans are lost. */
  readonly failed: number;
  /** Never sent: the queue was full (the collector was slower than the spans came). */
  readonly dropped: number;
}

export interface Tracing {
  /** False: nothing is traced, and nothing needs to be asked. */
  readonly enabled: boolean;
  spanExports(): SpanExportCounts;
  startRequest(start: RequestSpanStart): RequestSpan;
  /** `change` names the work (`ticket.create`); `parents` are the spans of the requests it serves. */
  startTransaction(change: string, parents: readonly (Traceparent | null)[]): TransactionSpans;
  startAttempt(start: AttemptSpanStart): AttemptSpan;
  /** Exports what is still buffered, for at most `timeoutMs`, and stops. */
  shutdown(timeoutMs: number): Promise<void>;
}

/** Traceparents of an untraced transaction: none, whatever the index. */
export const UNTRACED: readonly (Traceparent | null)[] = Object.freeze([]);

const NO_REQUEST_SPAN: RequestSpan = Object.freeze({ traceparent: '', end: () => undefined });
const NO_TRANSACTION_SPANS: TransactionSpans = Object.freeze({ traceparents: UNTRACED, end: () => undefined });
const NO_ATTEMPT_SPAN: AttemptSpan = Object.freeze({ traceparent: '', end: () => undefined });

/** Tracing off: callers test `enabled` first; the methods answer without doing anything. */
const NO_EXPORTS: SpanExportCounts = Object.freeze({ exported: 0, failed: 0, dropped: 0 });

export const TRACING_OFF: Tracing = Object.freeze({
  enabled: false,
  spanExports: () => NO_EXPORTS,
  startRequest: () => NO_REQUEST_SPAN,
  startTransaction: () => NO_TRANSACTION_SPANS,
  startAttempt: () => NO_ATTEMPT_SPAN,
  shutdown: async () => undefined,
});

/**
 * Runs a transaction inside its spans (when tracing is on), handing `run` the traceparents its
 * events store; the spans end when it committed or failed.
 */
export async function inTransactionSpans<T>(
  tracing: Tracing,
  change: string,
  parents: readonly (Traceparent | null)[],
  run: (traceparents: readonly (Traceparent | null)[]) => Promise<T>,
): Promise<T> {
  if (!tracing.enabled) return run(UNTRACED);
  const spans = tracing.startTransaction(change, parents);
  try {
    const result = await run(spans.traceparents);
    spans.end();
    return result;
  } catch (error) {
    spans.end(error);
    throw error;
  }
}
