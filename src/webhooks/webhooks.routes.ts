import type { FastifyInstance } from 'fastify';
import { ADMIN, idParamsSchema, pageQuerySchema, wrapped } from '../http/schemas.js';
import { parsePageRequest } from '../shared/pagination.js';
import { MAX_SECRET_OVERLAP_SECONDS, MAX_TARGET_URL_LENGTH, WEBHOOK_EVENT_TYPES } from './webhook.js';
import type { WebhookInput, WebhooksService } from './webhooks.service.js';

const webhookFields = {
  name: { type: 'string', minLength: 1, maxLength: 200 },
  targetUrl: { type: 'string', minLength: 1, maxLength: MAX_TARGET_URL_LENGTH },
  events: { type: 'array', minItems: 1, items: { type: 'string', enum: WEBHOOK_EVENT_TYPES } },
  active: { type: 'boolean' },
} as const;

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
  properties: { expireCurrentInSeconds: { type: 'integer', minimum: 0, maximum: MAX_SECRET_OVERLAP_SECONDS } },
} as const;

export function registerWebhookRoutes(api: FastifyInstance, webhooks: WebhooksService): void {
  const config = { roles: ADMIN };

  api.get<{ Querystring: { limit?: string; cursor?: string } }>('/webhooks', { config, schema: { querystring: pageQuerySchema } }, async (request) => {
    const page = await webhooks.list(parsePageRequest(request.query));
    return { webhooks: page.items, nextCursor: page.nextCursor };
  });

  api.get<{ Params: { id: string } }>('/webhooks/:id', { config, schema: { params: idParamsSchema } }, async (request) => ({
    webhook: await webhooks.get(request.params.id),
  }));

  api.post<{ Body: { webhook: Required<Pick<WebhookInput, 'name' | 'targetUrl' | 'events'>> & WebhookInput } }>(
    '/webhooks',
    { config, schema: { body: createSchema } },
    async (request, reply) => reply.status(201).send({ webhook: await webhooks.create(request.body.webhook) }),
  );

  api.put<{ Params: { id: string }; Body: { webhook: WebhookInput } }>(
    '/webhooks/:id',
    { config, schema: { params: idParamsSchema, body: updateSchema } },
    async (request) => ({ webhook: await webhooks.update(request.params.id, request.body.webhook) }),
  );

  api.post<{ Params: { id: string }; Body: { expireCurrentInSeconds?: number } | undefined }>(
    '/webhooks/:id/rotate-secret',
    { config: { ...config, bodyOptional: true }, schema: { params: idParamsSchema, body: rotateSchema } },
    async (request) => ({ webhook: await webhooks.rotateSecret(request.params.id, request.body?.expireCurrentInSeconds) }),
  );

  api.delete<{ Params: { id: string } }>('/webhooks/:id', { config, schema: { params: idParamsSchema } }, async (request, reply) => {
    await webhooks.delete(request.params.id);
    return reply.status(204).send();
  });
}
