/**
 * The OpenTelemetry SDK behind the Tracing port: spans batched (BatchSpanProcessor) and exported
 * over OTLP/HTTP, protobuf or JSON. Loaded by startTracing only when tracing is on. Attribute
 * names follow the OpenTelemetry semantic conventions for HTTP and databases; Helpdesk's own
 * start with `helpdesk.`.
 *
 * Contexts are passed explicitly, as traceparent text, never through a global context manager:
 * nothing else in the process is instrumented, and a span's parent is always known where it
 * starts.
 */
import { diag, DiagLogLevel, ROOT_CONTEXT, SpanKind, SpanStatusCode, type Attributes, type Context, type Span, type SpanContext, type Tracer } from '@opentelemetry/api';
import { ExportResultCode, W3CTraceContextPropagator, type ExportResult } from '@opentelemetry/core';
import { OTLPTraceExporter as JsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtobufTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import { AlwaysOffSampler, AlwaysOnSampler, BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler, type ReadableSpan, type Sampler, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import {
  ATTR_CLIENT_ADDRESS,
  ATTR_DB_NAMESPACE,
  ATTR_DB_OPERATION_BATCH_SIZE,
  ATTR_DB_OPERATION_NAME,
  ATTR_DB_QUERY_SUMMARY,
  ATTR_DB_SYSTEM_NAME,
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_REQUEST_RESEND_COUNT,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_SERVICE_NAME,
  ATTR_URL_FULL,
  ATTR_URL_PATH,
  ATTR_URL_SCHEME,
  ATTR_USER_AGENT_ORIGINAL,
} from '@opentelemetry/semantic-conventions';
import type { Logger } from 'pino';
import type { DatabaseConfig, TracingConfig } from '../config.js';
import type { AttemptSpan, AttemptSpanStart, RequestSpan, RequestSpanStart, SpanExportCounts, Traceparent, Tracing, TransactionSpans } from './tracing.js';

/** Helpdesk's own attributes. */
export const HELPDESK_ATTRIBUTES = {
  webhookId: 'helpdesk.webhook.id',
  deliveryId: 'helpdesk.delivery.id',
  eventType: 'helpdesk.event.type',
  /** 1 for a delivery's first attempt of its schedule. */
  attempt: 'helpdesk.delivery.attempt',
  redelivery: 'helpdesk.delivery.redelivery',
  change: 'helpdesk.change',
} as const;

const propagator = new W3CTraceContextPropagator();
const traceparentGetter = {
  get: (carrier: { traceparent?: string | undefined }, key: string) => (key === 'traceparent' ? carrier.traceparent : undefined),
  keys: () => ['traceparent'],
};

/** The context a traceparent names; the root (a new trace) when there is none or it is malformed. */
function contextOf(traceparent: string | null | undefined): Context {
  if (!traceparent) return ROOT_CONTEXT;
  return propagator.extract(ROOT_CONTEXT, { traceparent }, traceparentGetter);
}

function traceparentOf({ traceId, spanId, traceFlags }: SpanContext): Traceparent {
  return `00-${traceId}-${spanId}-${(traceFlags & 0xff).toString(16).padStart(2, '0')}`;
}

function samplerOf(config: TracingConfig): Sampler {
  const ratio = new TraceIdRatioBasedSampler(config.samplerRatio);
  switch (config.sampler) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return ratio;
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: ratio });
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
  }
}

/** What every transaction span says of its database (the db semantic conventions). */
function databaseAttributes(database: DatabaseConfig): Attributes {
  if (database.kind === 'sqlite') return { [ATTR_DB_SYSTEM_NAME]: 'sqlite', [ATTR_DB_NAMESPACE]: database.path };
  const url = new URL(database.connectionString);
  return {
    [ATTR_DB_SYSTEM_NAME]: 'postgresql',
    [ATTR_DB_NAMESPACE]: decodeURIComponent(url.pathname.replace(/^\//, '')) || 'postgres',
    [ATTR_SERVER_ADDRESS]: url.hostname,
    [ATTR_SERVER_PORT]: url.port === '' ? 5432 : Number(url.port),
  };
}

/**
 * The target as url.full may show it: user and password, and every query value, redacted, since
 * receivers put their tokens there (the semantic conventions' own advice for credentials).
 */
export function redactedUrl(targetUrl: string): string {
  const url = new URL(targetUrl);
  if (url.username !== '' || url.password !== '') {
    url.username = 'REDACTED';
    url.password = 'REDACTED';
  }
  if (url.search !== '') {
    const redacted = new URLSearchParams();
    for (const key of url.searchParams.keys()) redacted.append(key, 'REDACTED');
    url.search = redacted.toString();
  }
  return url.href;
}

/** How BatchSpanProcessor says that its queue was full (it has no counter to read). */
const DROPPED_SPANS = /^Dropped (\d+) spans because maxQueueSize reached/;

/** The OTLP exporter, with its outcomes counted for `/metrics`. */
class CountingExporter implements SpanExporter {
  exported = 0;
  failed = 0;

  constructor(private readonly inner: SpanExporter) {}

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.inner.export(spans, (result) => {
      if (result.code === ExportResultCode.SUCCESS) this.exported += spans.length;
      else this.failed += spans.length;
      done(result);
    });
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}

export class OpenTelemetryTracing implements Tracing {
  readonly enabled = true;
  readonly #provider: BasicTracerProvider;
  readonly #tracer: Tracer;
  readonly #database: Attributes;
  readonly #exporter: CountingExporter;
  #dropped = 0;

  constructor(config: TracingConfig, database: DatabaseConfig, logger: Logger) {
    // The SDK reports failed exports here: logged, never thrown at a request or an attempt. Spans
    // dropped from a full queue are only ever told here, so they are counted from the message.
    diag.setLogger(
      {
        error: (message, ...args) => logger.warn({ detail: args.map(String) }, `tracing: ${message}`),
        warn: (message, ...args) => {
          const dropped = DROPPED_SPANS.exec(message);
          if (dropped) this.#dropped += Number(dropped[1]);
          logger.warn({ detail: args.map(String) }, `tracing: ${message}`);
        },
        info: () => undefined,
        debug: () => undefined,
        verbose: () => undefined,
      },
      { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true },
    );
    const exporterOptions = { url: config.endpoint, headers: { ...config.headers }, timeoutMillis: config.exportTimeoutMs };
    const exporter = new CountingExporter(config.protocol === 'http/json' ? new JsonTraceExporter(exporterOptions) : new ProtobufTraceExporter(exporterOptions));
    this.#exporter = exporter;
    this.#provider = new BasicTracerProvider({
      resource: defaultResource().merge(resourceFromAttributes({ ...config.resourceAttributes, [ATTR_SERVICE_NAME]: config.serviceName })),
      sampler: samplerOf(config),
      // Spans wait in a bounded queue and go out in batches, off the request's and the attempt's
      // path; past the bound (a collector down for long) the newest are dropped, never waited for.
      spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: config.batchDelayMs, exportTimeoutMillis: config.exportTimeoutMs })],
    });
    this.#tracer = this.#provider.getTracer('helpdesk', config.resourceAttributes['service.version']);
    this.#database = databaseAttributes(database);
  }

  spanExports(): SpanExportCounts {
    return { exported: this.#exporter.exported, failed: this.#exporter.failed, dropped: this.#dropped };
  }

  startRequest(start: RequestSpanStart): RequestSpan {
    const name = start.route === undefined ? start.method : `${start.method} ${start.route}`;
    const attributes: Attributes = {
      [ATTR_HTTP_REQUEST_METHOD]: start.method,
      [ATTR_URL_PATH]: start.path,
      [ATTR_URL_SCHEME]: 'http',
      [ATTR_CLIENT_ADDRESS]: start.clientAddress,
    };
    if (start.route !== undefined) attributes[ATTR_HTTP_ROUTE] = start.route;
    if (start.userAgent !== undefined) attributes[ATTR_USER_AGENT_ORIGINAL] = start.userAgent;
    const host = start.host === undefined ? null : /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(start.host);
    if (host) {
      attributes[ATTR_SERVER_ADDRESS] = host[1]!;
      if (host[2] !== undefined) attributes[ATTR_SERVER_PORT] = Number(host[2]);
    }
    const span = this.#tracer.startSpan(name, { kind: SpanKind.SERVER, attributes }, contextOf(start.traceparent));
    let ended = false;
    return {
      traceparent: traceparentOf(span.spanContext()),
      end: (statusCode, error) => {
        if (ended) return;
        ended = true;
        if (statusCode !== null) span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, statusCode);
        // A server span fails on its own errors (5xx), not on the client's (4xx).
        const errorType = error ?? (statusCode !== null && statusCode >= 500 ? String(statusCode) : null);
        if (errorType !== null) {
          span.setAttribute(ATTR_ERROR_TYPE, errorType);
          span.setStatus({ code: SpanStatusCode.ERROR });
        }
        span.end();
      },
    };
  }

  startTransaction(change: string, parents: readonly (Traceparent | null)[]): TransactionSpans {
    const summary = `TRANSACTION ${change}`;
    const attributes: Attributes = { ...this.#database, [ATTR_DB_OPERATION_NAME]: 'TRANSACTION', [ATTR_DB_QUERY_SUMMARY]: summary, [HELPDESK_ATTRIBUTES.change]: change };
    // One transaction serves every change of a group commit: each change's trace gets its span.
    if (parents.length > 1) attributes[ATTR_DB_OPERATION_BATCH_SIZE] = parents.length;
    const spans: Span[] = parents.map((parent) => this.#tracer.startSpan(summary, { kind: SpanKind.CLIENT, attributes }, contextOf(parent)));
    return {
      traceparents: spans.map((span) => traceparentOf(span.spanContext())),
      end: (error) => {
        for (const span of spans) {
          if (error !== undefined) {
            span.setAttribute(ATTR_ERROR_TYPE, errorTypeOf(error));
            span.setStatus({ code: SpanStatusCode.ERROR });
          }
          span.end();
        }
      },
    };
  }

  startAttempt(start: AttemptSpanStart): AttemptSpan {
    const target = new URL(start.targetUrl);
    const attributes: Attributes = {
      [ATTR_HTTP_REQUEST_METHOD]: 'POST',
      [ATTR_URL_FULL]: redactedUrl(start.targetUrl),
      [ATTR_SERVER_ADDRESS]: target.hostname.replace(/^\[(.*)\]$/, '$1'),
      [ATTR_SERVER_PORT]: target.port === '' ? 443 : Number(target.port),
      [HELPDESK_ATTRIBUTES.webhookId]: start.webhookId,
      [HELPDESK_ATTRIBUTES.deliveryId]: start.deliveryId,
      [HELPDESK_ATTRIBUTES.eventType]: start.eventType,
      [HELPDESK_ATTRIBUTES.attempt]: start.previousAttempts + 1,
    };
    if (start.previousAttempts > 0) attributes[ATTR_HTTP_REQUEST_RESEND_COUNT] = start.previousAttempts;
    if (start.redelivery) attributes[HELPDESK_ATTRIBUTES.redelivery] = true;
    const span = this.#tracer.startSpan('POST', { kind: SpanKind.CLIENT, attributes }, contextOf(start.parent));
    return {
      traceparent: traceparentOf(span.spanContext()),
      end: (statusCode, error) => {
        if (statusCode !== null) span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, statusCode);
        if (error !== null) {
          // A status the receiver answered with is its code; a failure without one, its kind.
          span.setAttribute(ATTR_ERROR_TYPE, error === 'http_status' || error === 'redirect' ? String(statusCode) : error);
          span.setStatus({ code: SpanStatusCode.ERROR });
        }
        span.end();
      },
    };
  }

  async shutdown(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    // A collector that does not answer must not hold the process's exit past its grace.
    await Promise.race([
      this.#provider.shutdown().catch(() => undefined),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    diag.disable();
  }
}

function errorTypeOf(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code !== '') return code;
  return error instanceof Error ? error.name : 'error';
}
