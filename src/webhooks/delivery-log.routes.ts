import type { FastifyInstance } from 'fastify';
import { BREAKER_STATES } from '../delivery/circuit-breaker.js';
import { ATTEMPT_ERRORS, MAX_ERROR_MESSAGE_LENGTH } from '../outbound/http-client.js';
import { CLIENT_TIME_PATTERN, idOf, idQuery, timeWindowQueryProperties, isoTime, isoTimeOrNull, pageOf, pageQueryProperties, ref, wrapped } from '../http/schemas.js';
import { ADMIN } from '../http/route-config.js';
import { parsePageRequest } from '../shared/pagination.js';
import { DELIVERY_LIST_INCLUDES, type DeliveryListInclude, type DeliveryLogService } from './delivery-log.service.js';

/** `ticketVersion,lastError` as the names it lists; the route's schema has checked each one. */
function parseIncludes(include: string | undefined): DeliveryListInclude[] {
  if (include === undefined) return [];
  return [...new Set(include.split(','))].filter((name): name is DeliveryListInclude => (DELIVERY_LIST_INCLUDES as readonly string[]).includes(name));
}


const deliveryProperties = {
  id: idOf('msg'),
  webhookId: idOf('whk'),
  event: { type: 'string', description: 'The event type: a ticket event, an operational event, or `webhook.test`.' },
  status: { type: 'string', enum: ['pending', 'succeeded', 'failed'] },
  attemptCount: { type: 'integer', minimum: 0 },
  lastAttemptAt: isoTimeOrNull,
  nextAttemptAt: { ...isoTimeOrNull, description: 'When the next attempt is due; null once it succeeded or failed, and while a pending delivery is held behind an earlier one of its ticket (docs/delivery.md, "Order").' },
  lastStatusCode: { type: ['integer', 'null'] },
  createdAt: isoTime,
} as const;

/** Fields a delivery list adds only when asked (`include`), so that the default shape stays as documented. */
const includedProperties = {
  ticketVersion: { type: ['integer', 'null'], minimum: 1, description: 'Only with `include=ticketVersion` on a list: the ticket version its event carries (docs/api.md, "Versions"); null for `webhook.test`, operational events and events written before tickets had versions.' },
  ticketId: { type: ['string', 'null'], pattern: '^tkt_', description: 'Only with `include=ticketId` on a list: the ticket its event is about; null for `webhook.test` and operational events. The ticket may have been deleted since.' },
  lastError: { type: ['string', 'null'], enum: [...ATTEMPT_ERRORS, null], description: "Only with `include=lastError` on a list: the error kind of the last attempt (as an attempt's `error`), null when it succeeded or none was made. It tells a connection or TLS failure, which has no `lastStatusCode`, from a delivery not yet attempted." },
} as const;

/** One event sent to one webhook (docs/api.md, "Delivery management"); its id is the `webhook-id` header of every attempt. */
export const deliverySchema = {
  $id: 'Delivery',
  type: 'object',
  additionalProperties: false,
  required: Object.keys(deliveryProperties),
  properties: { ...deliveryProperties, ...includedProperties },
} as const;

export const attemptSchema = {
  $id: 'Attempt',
  type: 'object',
  additionalProperties: false,
  required: ['id', 'at', 'statusCode', 'durationMs', 'error', 'errorMessage', 'responseHeaders', 'responseBody'],
  properties: {
    id: idOf('att'),
    at: isoTime,
    statusCode: { type: ['integer', 'null'], description: 'Null when no answer came.' },
    durationMs: { type: 'integer', minimum: 0 },
    error: { type: ['string', 'null'], enum: [...ATTEMPT_ERRORS, null], description: 'Null on success.' },
    errorMessage: {
      type: ['string', 'null'],
      maxLength: MAX_ERROR_MESSAGE_LENGTH,
      description: 'For a failure without an answer (connection, TLS, DNS, timeout, blocked address), what the network said, e.g. `connect ECONNREFUSED 10.0.0.5:443` or `certificate has expired`; null otherwise, and for attempts recorded before it was kept.',
    },
    responseHeaders: { type: ['object', 'null'], additionalProperties: { type: 'string' } },
    responseBody: { type: ['string', 'null'], description: 'At most the first 20 KiB of the answer, as UTF-8.' },
  },
} as const;

export const deliveryDetailSchema = {
  $id: 'DeliveryDetail',
  type: 'object',
  additionalProperties: false,
  required: [...Object.keys(deliveryProperties), 'payload', 'attempts'],
  properties: {
    ...deliveryProperties,
    payload: { type: 'object', description: 'The body sent: `{"event", "timestamp", "data"}` (see the `webhooks` of this document).' },
    attempts: { type: 'array', items: ref('Attempt'), description: 'Oldest first.' },
  },
} as const;

const oneDelivery = wrapped('delivery', ref('Delivery'));

const count = { type: 'integer', minimum: 0 } as const;
const statsSchema = wrapped('stats', {
  type: 'object',
  additionalProperties: false,
  required: ['since', 'attempts', 'successRate', 'deliveries', 'deliverySuccessRate', 'lastDelivery', 'breaker'],
  properties: {
    since: isoTime,
    attempts: { type: 'object', additionalProperties: false, required: ['total', 'succeeded', 'failed'], properties: { total: count, succeeded: count, failed: count }, description: 'Attempts made since `since`, redeliveries included.' },
    successRate: { type: ['number', 'null'], minimum: 0, maximum: 1, description: 'Succeeded attempts over all attempts since `since`; null when there was none.' },
    deliveries: { type: 'object', additionalProperties: false, required: ['pending', 'succeeded', 'failed'], properties: { pending: count, succeeded: count, failed: count }, description: 'Deliveries created since `since`, by status.' },
    deliverySuccessRate: {
      type: ['number', 'null'],
      minimum: 0,
      maximum: 1,
      description: 'Of the deliveries created since `since` that are finished, the share that succeeded (after retries or not); null when none is finished. A delivery that succeeded on its second attempt counts once, as a success, where `successRate` counts one failed and one succeeded attempt.',
    },
    lastDelivery: { oneOf: [ref('Delivery'), { type: 'null' }], description: 'The delivery attempted last, whenever that was.' },
    breaker: {
      oneOf: [
        {
          type: 'object',
          additionalProperties: false,
          required: ['state', 'pausedUntil', 'reason'],
          properties: {
            state: { type: 'string', enum: BREAKER_STATES },
            pausedUntil: { ...isoTimeOrNull, description: 'When the pause ends; null when closed.' },
            reason: { type: ['string', 'null'], description: 'Why it paused: the failed attempts of the window when it opened; null when closed.' },
          },
        },
        { type: 'null' },
      ],
      description: "The webhook's circuit breaker in this process's worker (docs/delivery.md, \"Circuit breaker\"); null when this process runs no worker.",
    },
  },
});
const statsQuery = { type: 'object', additionalProperties: false, properties: { since: { type: 'string', pattern: CLIENT_TIME_PATTERN, description: 'Default: 24 hours ago.' } } } as const;

const webhookParams = { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] } as const;
const deliveryParams = {
  type: 'object',
  properties: { id: { type: 'string' }, deliveryId: { type: 'string' } },
  required: ['id', 'deliveryId'],
} as const;

const listQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...pageQueryProperties,
    status: { type: 'string', enum: ['pending', 'succeeded', 'failed'] },
    event: { type: 'string', minLength: 1 },
    ...timeWindowQueryProperties,
    id: idQuery('msg', 'Only the delivery with this id (the `webhook-id` a receiver logs): a list of one, or none.'),
    ticketId: idQuery('tkt', 'Only the deliveries of events about this ticket (a deleted one too).'),
    include: {
      type: 'string',
      pattern: `^(${DELIVERY_LIST_INCLUDES.join('|')})(,(${DELIVERY_LIST_INCLUDES.join('|')}))*$`,
      description: `Comma-separated (a name given twice counts once): ${DELIVERY_LIST_INCLUDES.map((name) => `\`${name}\``).join(', ')}; each delivery also carries those fields.`,
    },
  },
} as const;

const recoverBody = {
  type: 'object',
  additionalProperties: false,
  required: ['since'],
  properties: {
    since: { type: 'string', pattern: CLIENT_TIME_PATTERN },
    until: { type: 'string', pattern: CLIENT_TIME_PATTERN },
  },
} as const;

const recoveredSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['recovered'],
  properties: { recovered: { type: 'integer', minimum: 0, description: 'How many deliveries were queued again.' } },
} as const;

/** Action bodies whose fields are all optional: none at all, or an empty object. */
const emptyBody = { type: 'object', additionalProperties: false, properties: {} } as const;

type ListQuery = { limit?: string; cursor?: string; status?: 'pending' | 'succeeded' | 'failed'; event?: string; since?: string; until?: string; id?: string; ticketId?: string; include?: string };

export function registerDeliveryLogRoutes(api: FastifyInstance, deliveries: DeliveryLogService): void {
  const config = { roles: ADMIN };

  api.get<{ Params: { id: string }; Querystring: ListQuery }>(
    '/webhooks/:id/deliveries',
    { config, schema: { summary: "List a webhook's deliveries, newest first", tags: ['deliveries'], params: webhookParams, querystring: listQuery, response: { 200: pageOf('deliveries', 'Delivery') } } },
    async (request) => {
      const { status, event, since, until, id, ticketId, include } = request.query;
      const filter = {
        ...(status === undefined ? {} : { status }),
        ...(event === undefined ? {} : { event }),
        ...(since === undefined ? {} : { since }),
        ...(until === undefined ? {} : { until }),
        ...(id === undefined ? {} : { id }),
        ...(ticketId === undefined ? {} : { ticketId }),
      };
      const page = await deliveries.list(request.params.id, filter, parsePageRequest(request.query), parseIncludes(include));
      return { deliveries: page.items, nextCursor: page.nextCursor };
    },
  );

  api.get<{ Params: { id: string }; Querystring: { since?: string } }>(
    '/webhooks/:id/stats',
    { config, schema: { summary: "A webhook's health: attempts, success rate and deliveries since a time, and its last delivery", tags: ['deliveries'], params: webhookParams, querystring: statsQuery, response: { 200: statsSchema } } },
    async (request) => ({ stats: await deliveries.stats(request.params.id, request.query) }),
  );

  api.get<{ Params: { id: string; deliveryId: string } }>(
    '/webhooks/:id/deliveries/:deliveryId',
    { config, schema: { summary: 'Retrieve a delivery with its payload and every attempt', tags: ['deliveries'], params: deliveryParams, response: { 200: wrapped('delivery', ref('DeliveryDetail')) } } },
    async (request) => ({ delivery: await deliveries.get(request.params.id, request.params.deliveryId) }),
  );

  api.post<{ Params: { id: string; deliveryId: string } }>(
    '/webhooks/:id/deliveries/:deliveryId/redeliver',
    { config: { ...config, bodyOptional: true }, schema: { summary: 'Redeliver: one attempt now, same webhook-id, no new schedule', tags: ['deliveries'], params: deliveryParams, body: emptyBody, response: { 202: oneDelivery } } },
    async (request, reply) => reply.status(202).send({ delivery: await deliveries.redeliver(request.params.id, request.params.deliveryId) }),
  );

  api.post<{ Params: { id: string }; Body: { since: string; until?: string } }>(
    '/webhooks/:id/recover',
    { config: { ...config, errors: ['conflict'] }, schema: { summary: 'Queue every failed delivery of a time window again', tags: ['deliveries'], params: webhookParams, body: recoverBody, response: { 202: recoveredSchema } } },
    async (request, reply) => reply.status(202).send({ recovered: await deliveries.recover(request.params.id, request.body) }),
  );

  api.post<{ Params: { id: string } }>(
    '/webhooks/:id/test',
    { config: { ...config, bodyOptional: true }, schema: { summary: 'Send a webhook.test event (to an inactive webhook too)', tags: ['deliveries'], params: webhookParams, body: emptyBody, response: { 202: oneDelivery } } },
    async (request, reply) => reply.status(202).send({ delivery: await deliveries.sendTest(request.params.id, request.traceparent) }),
  );
}
