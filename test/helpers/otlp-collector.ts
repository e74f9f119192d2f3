/**
 * A real OTLP/HTTP trace collector on 127.0.0.1: it takes `POST /v1/traces` in both protocols a
 * Helpdesk process may speak, protobuf (decoded with protobufjs from the subset of the OTLP
 * trace messages below) and JSON, and keeps the spans in one shape whatever the protocol.
 * `hang` makes it accept exports and never answer, like a collector that stalls.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import protobuf from 'protobufjs';
import { trackOpen } from './leaks.js';
import { waitFor } from './wait.js';

/** The messages of opentelemetry/proto/collector/trace/v1 and trace/v1 that a span export uses. */
const OTLP_TRACE_PROTO = `
syntax = "proto3";
package otlp;
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; string schema_url = 3; }
message Resource { repeated KeyValue attributes = 1; uint32 dropped_attributes_count = 2; }
message ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; string schema_url = 3; }
message InstrumentationScope { string name = 1; string version = 2; repeated KeyValue attributes = 3; uint32 dropped_attributes_count = 4; }
message Span {
  bytes trace_id = 1;
  bytes span_id = 2;
  string trace_state = 3;
  bytes parent_span_id = 4;
  string name = 5;
  int32 kind = 6;
  fixed64 start_time_unix_nano = 7;
  fixed64 end_time_unix_nano = 8;
  repeated KeyValue attributes = 9;
  uint32 dropped_attributes_count = 10;
  Status status = 15;
  fixed32 flags = 16;
}
message Status { string message = 2; int32 code = 3; }
message KeyValue { string key = 1; AnyValue value = 2; }
message AnyValue {
  oneof value {
    string string_value = 1;
    bool bool_value = 2;
    int64 int_value = 3;
    double double_value = 4;
    ArrayValue array_value = 5;
    KeyValueList kvlist_value = 6;
    bytes bytes_value = 7;
  }
}
message ArrayValue { repeated AnyValue values = 1; }
message KeyValueList { repeated KeyValue values = 1; }
`;

const ExportTraceServiceRequest = protobuf.parse(OTLP_TRACE_PROTO).root.lookupType('otlp.ExportTraceServiceRequest');

/** OTLP's SpanKind values. */
export const SPAN_KIND = { internal: 1, server: 2, client: 3 } as const;
/** OTLP's Status codes. */
export const STATUS_CODE = { unset: 0, ok: 1, error: 2 } as const;

export type AttributeValue = string | number | boolean | null;

export interface CollectedSpan {
  traceId: string;
  spanId: string;
  /** '' for a root span. */
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: Record<string, AttributeValue>;
  statusCode: number;
  /** The resource's attributes (service.name …) of the process that made the span. */
  resource: Record<string, AttributeValue>;
}

export interface OtlpCollector {
  /** `http://127.0.0.1:<port>`: an OTEL_EXPORTER_OTLP_ENDPOINT. */
  readonly origin: string;
  readonly spans: CollectedSpan[];
  /** The content type of every export received, in order. */
  readonly exports: string[];
  waitForSpans(what: string, found: (spans: CollectedSpan[]) => boolean, timeoutMs?: number): Promise<CollectedSpan[]>;
  close(): Promise<void>;
}

interface WireKeyValue {
  key: string;
  value?: Record<string, unknown>;
}

/** Both encodings decode to the same field names (protobufjs makes them camelCase). */
function attributesOf(list: readonly WireKeyValue[] | undefined): Record<string, AttributeValue> {
  const attributes: Record<string, AttributeValue> = {};
  for (const { key, value } of list ?? []) {
    const v = value ?? {};
    if (v.stringValue !== undefined) attributes[key] = v.stringValue as string;
    else if (v.boolValue !== undefined) attributes[key] = v.boolValue as boolean;
    else if (v.intValue !== undefined) attributes[key] = Number(v.intValue);
    else if (v.doubleValue !== undefined) attributes[key] = Number(v.doubleValue);
    else attributes[key] = null;
  }
  return attributes;
}

/** Ids: hex strings in OTLP/JSON, bytes in protobuf (given here as arrays of numbers). */
function hexId(id: unknown): string {
  if (id === undefined || id === null) return '';
  if (typeof id === 'string') return id.toLowerCase();
  return Buffer.from(id as number[]).toString('hex');
}

interface WireExport {
  resourceSpans?: {
    resource?: { attributes?: WireKeyValue[] };
    scopeSpans?: { spans?: { traceId: unknown; spanId: unknown; parentSpanId?: unknown; name: string; kind?: number; attributes?: WireKeyValue[]; status?: { code?: number } }[] }[];
  }[];
}

function spansOf(body: WireExport): CollectedSpan[] {
  return (body.resourceSpans ?? []).flatMap((resourceSpans) => {
    const resource = attributesOf(resourceSpans.resource?.attributes);
    return (resourceSpans.scopeSpans ?? []).flatMap((scope) =>
      (scope.spans ?? []).map((span) => ({
        traceId: hexId(span.traceId),
        spanId: hexId(span.spanId),
        parentSpanId: hexId(span.parentSpanId),
        name: span.name,
        kind: Number(span.kind ?? 0),
        attributes: attributesOf(span.attributes),
        statusCode: Number(span.status?.code ?? 0),
        resource,
      })),
    );
  });
}

function decode(contentType: string, body: Buffer): CollectedSpan[] {
  if (contentType.startsWith('application/json')) return spansOf(JSON.parse(body.toString('utf8')) as WireExport);
  if (contentType.startsWith('application/x-protobuf')) {
    const message = ExportTraceServiceRequest.decode(body);
    return spansOf(ExportTraceServiceRequest.toObject(message, { longs: Number, enums: Number, bytes: Array, defaults: false }) as WireExport);
  }
  throw new Error(`the collector got an export of type ${contentType}`);
}

export async function startOtlpCollector(options: { hang?: boolean } = {}): Promise<OtlpCollector> {
  const spans: CollectedSpan[] = [];
  const exports: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const contentType = request.headers['content-type'] ?? '';
      if (request.method !== 'POST' || request.url !== '/v1/traces') {
        response.writeHead(404).end();
        return;
      }
      exports.push(contentType);
      if (options.hang) return;
      try {
        spans.push(...decode(contentType, Buffer.concat(chunks)));
      } catch (error) {
        response.writeHead(400, { 'content-type': 'text/plain' }).end(String(error));
        return;
      }
      // An empty ExportTraceServiceResponse: full success, in the export's own encoding.
      if (contentType.startsWith('application/json')) response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      else response.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const untrack = trackOpen(server, 'OTLP collector');
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    spans,
    exports,
    async waitForSpans(what, found, timeoutMs = 20_000) {
      try {
        return await waitFor(what, () => found(spans) && spans, timeoutMs);
      } catch (error) {
        throw new Error(`${(error as Error).message}; the spans: ${JSON.stringify(spans.map((s) => [s.name, s.traceId, s.spanId, s.parentSpanId]))}`);
      }
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      untrack();
    },
  };
}
