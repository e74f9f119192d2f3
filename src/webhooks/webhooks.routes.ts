import type { FastifyInstance } from 'fastify';
import { idOf, idParamsSchema, isoTime, isoTimeOrNull, noContent, pageOf, pageQuerySchema, ref, wrapped } from '../http/schemas.js';
import { ADMIN } from '../http/route-config.js';
import { parsePageRequest } from '../shared/pagination.js';
import { TICKET_EVENT_TYPES } from '../events/event-types.js';
import { MAX_SECRET_OVERLAP_SECONDS, MAX_TARGET_URL_LENGTH } from './webhook.js';
import type { WebhookInput, WebhooksService } from './webhooks.service.js';

const webhookFields = {
  name: { type: 'string', minLength: 1, maxLength: 200 },
  targetUrl: { type: 'string', minLength: 1, maxLength: MAX_TARGET_URL_LENGTH },
  events: { type: 'array', minItems: 1, items: { type: 'string', enum: TICKET_EVENT_TYPES } },
  active: { type: 'boolean' },
} as const;

const webhookProperties = {
  id: idOf('whk'),
  name: { type: 'string' },
  targetUrl: { type: 'string' },
  events: webhookFields.events,
  active: { type: 'boolean' },
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
