import type { FastifyInstance } from 'fastify';
import { ADMIN, pageQueryProperties } from '../http/schemas.js';
import { parsePageRequest } from '../shared/pagination.js';
import type { DeliveryLogService } from './delivery-log.service.js';

const ISO_TIME = '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,3})?Z$';

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
    since: { type: 'string', pattern: ISO_TIME },
    until: { type: 'string', pattern: ISO_TIME },
  },
} as const;

const recoverBody = {
  type: 'object',
  additionalProperties: false,
  required: ['since'],
  properties: {
    since: { type: 'string', pattern: ISO_TIME },
    until: { type: 'string', pattern: ISO_TIME },
  },
} as const;

/** Action bodies whose fields are all optional: none at all, or an empty object. */
const emptyBody = { type: 'object', additionalProperties: false, properties: {} } as const;

type ListQuery = { limit?: string; cursor?: string; status?: 'pending' | 'succeeded' | 'failed'; event?: string; since?: string; until?: string };

export function registerDeliveryLogRoutes(api: FastifyInstance, deliveries: DeliveryLogService): void {
  const config = { roles: ADMIN };

  api.get<{ Params: { id: string }; Querystring: ListQuery }>(
    '/webhooks/:id/deliveries',
    { config, schema: { params: webhookParams, querystring: listQuery } },
    async (request) => {
      const { status, event, since, until } = request.query;
      const filter = {
        ...(status === undefined ? {} : { status }),
        ...(event === undefined ? {} : { event }),
        ...(since === undefined ? {} : { since }),
        ...(until === undefined ? {} : { until }),
      };
      const page = await deliveries.list(request.params.id, filter, parsePageRequest(request.query));
      return { deliveries: page.items, nextCursor: page.nextCursor };
    },
  );

  api.get<{ Params: { id: string; deliveryId: string } }>(
    '/webhooks/:id/deliveries/:deliveryId',
    { config, schema: { params: deliveryParams } },
    async (request) => ({ delivery: await deliveries.get(request.params.id, request.params.deliveryId) }),
  );

  api.post<{ Params: { id: string; deliveryId: string } }>(
    '/webhooks/:id/deliveries/:deliveryId/redeliver',
    { config: { ...config, bodyOptional: true }, schema: { params: deliveryParams, body: emptyBody } },
    async (request, reply) => reply.status(202).send({ delivery: await deliveries.redeliver(request.params.id, request.params.deliveryId) }),
  );

  api.post<{ Params: { id: string }; Body: { since: string; until?: string } }>(
    '/webhooks/:id/recover',
    { config, schema: { params: webhookParams, body: recoverBody } },
    async (request, reply) => reply.status(202).send({ recovered: await deliveries.recover(request.params.id, request.body) }),
  );

  api.post<{ Params: { id: string } }>(
    '/webhooks/:id/test',
    { config: { ...config, bodyOptional: true }, schema: { params: webhookParams, body: emptyBody } },
    async (request, reply) => reply.status(202).send({ delivery: await deliveries.sendTest(request.params.id) }),
  );
}
