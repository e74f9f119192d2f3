import type { FastifyInstance } from 'fastify';
import { idOf, idParamsSchema, isoTime, isoTimeOrNull, noContent, pageOf, pageQuerySchema, ref, wrapped } from '../http/schemas.js';
import { ADMIN } from '../http/route-config.js';
import { parsePageRequest } from '../shared/pagination.js';
import { SUBSCRIBABLE_EVENT_TYPES, TICKET_EVENT_TYPES, type SubscribableEventType } from '../events/event-types.js';
import { MAX_SECRET_OVERLAP_SECONDS, MAX_TARGET_URL_LENGTH } from './webhook.js';
import { FILTER_OPERATORS, MAX_FILTER_BYTES, MAX_FILTER_DEPTH } from './webhook-filter.js';
import { MASKED_HEADER_VALUE, MAX_HEADERS, MAX_HEADER_VALUE_LENGTH, MAX_RATE_LIMIT } from './webhook-limits.js';
import { FILTER_PREVIEW_EVENTS, type WebhookInput, type WebhooksService } from './webhooks.service.js';
import type { WebhookFilter } from './webhook-filter.js';

const webhookFields = {
  name: { type: 'string', minLength: 1, maxLength: 200 },
  targetUrl: { type: 'string', minLength: 1, maxLength: MAX_TARGET_URL_LENGTH },
  events: { type: 'array', minItems: 1, items: { type: 'string', enum: SUBSCRIBABLE_EVENT_TYPES } },
  active: { type: 'boolean' },
  filter: {
    type: ['object', 'null'],
    additionalProperties: true,
    description: `Which ticket events of the subscribed types make a delivery (operational events are not filtered): a MongoDB query over \`{event, ticket, changes}\` using ${FILTER_OPERATORS.join(' ')}, at most ${MAX_FILTER_BYTES} bytes as JSON and ${MAX_FILTER_DEPTH} levels deep. Null (the default) for every event.`,
  },
  headers: {
    type: 'object',
    maxProperties: MAX_HEADERS,
    additionalProperties: { type: 'string', minLength: 1, maxLength: MAX_HEADER_VALUE_LENGTH },
    description: `Extra request headers sent with every attempt. A PUT replaces the whole set; a value of \`${MASKED_HEADER_VALUE}\` keeps the stored value of that name.`,
  },
  rateLimit: { type: ['integer', 'null'], minimum: 1, maximum: MAX_RATE_LIMIT, description: 'The most deliveries a second, across every worker; null (the default) for no limit.' },
} as const;

const webhookProperties = {
  id: idOf('whk'),
  name: { type: 'string' },
  targetUrl: { type: 'string' },
  events: webhookFields.events,
  active: { type: 'boolean' },
  filter: { type: ['object', 'null'], additionalProperties: true, description: 'The filter as given, or null: every event of the subscribed types.' },
  headers: { type: 'object', additionalProperties: { type: 'string', enum: [MASKED_HEADER_VALUE] }, description: 'The names of the extra headers; their values are never shown.' },
  rateLimit: webhookFields.rateLimit,
  disabledReason: { type: ['string', 'null'], enum: ['gone', 'failing', null], description: 'Why the delivery engine deactivated it: a 410 answer, or five days of failures. Null otherwise.' },
  disabledAt: isoTimeOrNull,
  createdAt: isoTime,
  updatedAt: isoTime,
} as const;

/** The webhook object of the published reference, plus `disabledReason` and `disabledAt` (docs/api.md). */
export const webhookSchema = {
  $id: 'Webhook',
  type: 'object',
  additionalProperties: false,
  required: Object.keys(webhookProperties),
  properties: webhookProperties,
} as const;

/** The same with the signing secret: only in the answers to creation and rotation. */
export const webhookWithSecretSchema = {
  $id: 'WebhookWithSecret',
  type: 'object',
  additionalProperties: false,
  required: [...Object.keys(webhookProperties), 'signingSecret'],
  properties: {
    ...webhookProperties,
    signingSecret: { type: 'string', pattern: '^whsec_[A-Za-z0-9+/]{43}=$', description: 'Shown once: store it. `whsec_` and the base64 of 32 random bytes (Standard Webhooks).' },
  },
} as const;

const oneWebhook = wrapped('webhook', ref('Webhook'));
const withSecret = wrapped('webhook', ref('WebhookWithSecret'));

const createSchema = wrapped('webhook', {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'targetUrl', 'events'],
  properties: webhookFields,
});
const updateSchema = wrapped('webhook', { type: 'object', additionalProperties: false, properties: webhookFields });

const rotateSchema = {
  type: 'object',
  additionalProperties: false,
  properties: { expireCurrentInSeconds: { type: 'integer', minimum: 0, maximum: MAX_SECRET_OVERLAP_SECONDS, description: 'How long the current secret stays valid beside the new one (default 86400).' } },
} as const;

const previewSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['filter'],
  properties: {
    filter: webhookFields.filter,
    events: { ...webhookFields.events, description: 'If given, an event of another type is shown as not matched, as the webhook would not get it.' },
  },
} as const;

const previewResponse = {
  type: 'object',
  additionalProperties: false,
  required: ['events'],
  properties: {
    events: {
      type: 'array',
      maxItems: FILTER_PREVIEW_EVENTS,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'type', 'ticketId', 'ticketVersion', 'createdAt', 'document', 'matched'],
        properties: {
          id: idOf('evt'),
          type: { type: 'string', enum: TICKET_EVENT_TYPES },
          ticketId: idOf('tkt'),
          ticketVersion: { type: ['integer', 'null'] },
          createdAt: isoTime,
          document: {
            type: 'object',
            additionalProperties: false,
            required: ['event', 'ticket', 'changes'],
            description: 'What the filter is matched against: the event type, the whole ticket after the change (as it was, for ticket.deleted), and the change.',
            properties: { event: { type: 'string' }, ticket: { type: 'object', additionalProperties: true }, changes: { type: 'object', additionalProperties: true } },
          },
          matched: { type: 'boolean', description: 'Whether a webhook with this filter (and these event types, if given) would have got the event.' },
        },
      },
    },
  },
} as const;

export function registerWebhookRoutes(api: FastifyInstance, webhooks: WebhooksService): void {
  const config = { roles: ADMIN };

  api.get<{ Querystring: { limit?: string; cursor?: string } }>('/webhooks', { config, schema: { summary: 'List webhooks', tags: ['webhooks'], querystring: pageQuerySchema, response: { 200: pageOf('webhooks', 'Webhook') } } }, async (request) => {
    const page = await webhooks.list(parsePageRequest(request.query));
    return { webhooks: page.items, nextCursor: page.nextCursor };
  });

  api.get<{ Params: { id: string } }>('/webhooks/:id', { config, schema: { summary: 'Retrieve a webhook', tags: ['webhooks'], params: idParamsSchema, response: { 200: oneWebhook } } }, async (request) => ({
    webhook: await webhooks.get(request.params.id),
  }));

  api.post<{ Body: { webhook: Required<Pick<WebhookInput, 'name' | 'targetUrl' | 'events'>> & WebhookInput } }>(
    '/webhooks',
    { config, schema: { summary: 'Create a webhook (the signing secret is in this answer only)', tags: ['webhooks'], body: createSchema, response: { 201: withSecret } } },
    async (request, reply) => reply.status(201).send({ webhook: await webhooks.create(request.body.webhook) }),
  );

  api.post<{ Body: { filter: WebhookFilter | null; events?: SubscribableEventType[] } }>(
    '/webhooks/filter-preview',
    {
      config,
      schema: { summary: `Try a filter on the last ${FILTER_PREVIEW_EVENTS} ticket events (nothing is saved)`, tags: ['webhooks'], body: previewSchema, response: { 200: previewResponse } },
    },
    async (request) => ({ events: await webhooks.previewFilter(request.body.filter, request.body.events) }),
  );

  api.put<{ Params: { id: string }; Body: { webhook: WebhookInput } }>(
    '/webhooks/:id',
    { config, schema: { summary: 'Update a webhook (only the fields given change)', tags: ['webhooks'], params: idParamsSchema, body: updateSchema, response: { 200: oneWebhook } } },
    async (request) => ({ webhook: await webhooks.update(request.params.id, request.body.webhook) }),
  );

  api.post<{ Params: { id: string }; Body: { expireCurrentInSeconds?: number } | undefined }>(
    '/webhooks/:id/rotate-secret',
    { config: { ...config, bodyOptional: true }, schema: { summary: 'Rotate the signing secret (the new one is in this answer only)', tags: ['webhooks'], params: idParamsSchema, body: rotateSchema, response: { 200: withSecret } } },
    async (request) => ({ webhook: await webhooks.rotateSecret(request.params.id, request.body?.expireCurrentInSeconds) }),
  );

  api.delete<{ Params: { id: string } }>('/webhooks/:id', { config, schema: { summary: 'Delete a webhook and its deliveries', tags: ['webhooks'], params: idParamsSchema, response: { 204: noContent } } }, async (request, reply) => {
    await webhooks.delete(request.params.id);
    return reply.status(204).send();
  });
}
