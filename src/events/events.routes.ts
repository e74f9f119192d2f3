import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { idParamsSchema, idPattern, idQuery, timeWindowQueryProperties, isoTime, pageOf, pageQueryProperties, ref, wrapped } from '../http/schemas.js';
import { ADMIN } from '../http/route-config.js';
import { parsePageRequest } from '../shared/pagination.js';
import type { EventFeedService } from './event-feed.service.js';
import type { EventStreamHub, StreamConnection, StreamStart } from './event-stream.js';
import { FEED_EVENT_TYPES } from './event-types.js';

const EVENT_ID_PATTERN = idPattern('evt');

/** One event of the feed: the payload a webhook receives (`event`, `timestamp`, `data`) and its id. */
export const feedEventSchema = {
  $id: 'FeedEvent',
  type: 'object',
  additionalProperties: false,
  required: ['id', 'event', 'timestamp', 'data'],
  properties: {
    id: { type: 'string', pattern: '^evt_', description: 'The event id: the `id:` of its stream message, and what `after` and `Last-Event-ID` name.' },
    event: { type: 'string', enum: [...FEED_EVENT_TYPES] },
    timestamp: isoTime,
    data: { type: 'object', description: "Exactly the webhook payload's `data` (see the `webhooks` of this document); `data.ticket.version` is the ticket's version after the change." },
  },
} as const;

const typeFilter = {
  type: 'array',
  items: { type: 'string', enum: [...FEED_EVENT_TYPES] },
  minItems: 1,
  description: 'Only events of these types; repeat the parameter for several (`type=ticket.created&type=ticket.deleted`).',
} as const;

const listQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...pageQueryProperties,
    type: typeFilter,
    ticketId: idQuery('tkt', 'Only the events of this ticket (a deleted one too).'),
    ...timeWindowQueryProperties,
  },
} as const;

const streamQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    after: { type: 'string', pattern: EVENT_ID_PATTERN, description: 'Start right after this event (as `Last-Event-ID` does; the header wins when both are sent).' },
    type: typeFilter,
  },
} as const;

const streamHeaders = {
  type: 'object',
  properties: { 'last-event-id': { type: 'string', pattern: EVENT_ID_PATTERN, description: 'Resume right after this event: what an EventSource sends when it reconnects.' } },
} as const;

type ListQuery = { limit?: string; cursor?: string; type?: string[]; ticketId?: string; since?: string; until?: string };
type StreamQuery = { after?: string; type?: string[] };

/** A repeated query parameter arrives as an array, a single one as a string: the schema sees an array either way. */
async function typeAsList(request: FastifyRequest): Promise<void> {
  const query = request.query as { type?: unknown };
  if (typeof query.type === 'string') query.type = [query.type];
}

/** How long a client refused for want of a free stream waits before it tries again. */
const STREAM_RETRY_AFTER_SECONDS = 5;

/** The response, once its headers are sent, as the hub writes to it. */
function sseConnection(request: FastifyRequest, reply: FastifyReply): StreamConnection {
  reply.hijack();
  const raw = reply.raw;
  // The headers set so far (the rate limit's) go out with the stream's own.
  for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) raw.setHeader(name, value);
  raw.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    'x-accel-buffering': 'no',
    connection: 'keep-alive',
    'x-request-id': request.id,
  });
  raw.flushHeaders();
  return {
    write: (chunk) => raw.write(chunk),
    onDrain: (listener) => raw.on('drain', listener),
    onClose: (listener) => raw.on('close', listener),
    isClosed: () => raw.destroyed || request.raw.destroyed || request.raw.socket.destroyed,
    end: () => raw.end(),
    destroy: () => raw.destroy(),
  };
}

export function registerEventRoutes(api: FastifyInstance, feed: EventFeedService, streams: EventStreamHub): void {
  const config = { roles: ADMIN };

  api.get<{ Querystring: ListQuery }>(
    '/events',
    { config, preValidation: typeAsList, schema: { summary: 'List events, newest first: every change of every ticket, kept for the retention period', tags: ['events'], querystring: listQuery, response: { 200: pageOf('events', 'FeedEvent') } } },
    async (request) => {
      const { type, ticketId, since, until } = request.query;
      const filter = {
        ...(type === undefined ? {} : { types: [...new Set(type)] }),
        ...(ticketId === undefined ? {} : { ticketId }),
        ...(since === undefined ? {} : { since }),
        ...(until === undefined ? {} : { until }),
      };
      const page = await feed.list(filter, parsePageRequest(request.query));
      return { events: page.items, nextCursor: page.nextCursor };
    },
  );

  api.get<{ Querystring: StreamQuery; Headers: { 'last-event-id'?: string } }>(
    '/events/stream',
    {
      config,
      preValidation: typeAsList,
      schema: {
        summary: 'Follow events as they commit (Server-Sent Events), resuming after Last-Event-ID',
        tags: ['events'],
        querystring: streamQuery,
        headers: streamHeaders,
        produces: ['text/event-stream'],
        response: {
          200: {
            type: 'string',
            description:
              'A `text/event-stream`: `: stream open`, then per event in commit order `id: <event id>`, `event: <type>`, `data: <the webhook payload as JSON>`, and a `: heartbeat` comment every 15 s (docs/api.md, "The event stream").',
          },
        },
      },
    },
    async (request, reply) => {
      const header = request.headers['last-event-id'];
      const { after, type } = request.query;
      const start: StreamStart = {
        ...(header !== undefined ? { after: { id: header, from: 'Last-Event-ID' as const } } : after !== undefined ? { after: { id: after, from: 'after' as const } } : {}),
        ...(type === undefined ? {} : { types: type }),
      };
      try {
        await streams.open(start, () => sseConnection(request, reply));
      } catch (error) {
        if ((error as { code?: unknown }).code === 'rate_limited') reply.header('retry-after', STREAM_RETRY_AFTER_SECONDS);
        throw error;
      }
    },
  );

  api.get<{ Params: { id: string } }>(
    '/events/:id',
    { config, schema: { summary: 'Retrieve an event', tags: ['events'], params: idParamsSchema, response: { 200: wrapped('event', ref('FeedEvent')) } } },
    async (request) => ({ event: await feed.get(request.params.id) }),
  );
}
