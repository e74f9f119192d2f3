import type { FastifyInstance } from 'fastify';
import { ADMIN, idParamsSchema, pageQuerySchema, wrapped } from '../http/schemas.js';
import { parsePageRequest } from '../shared/pagination.js';
import type { AuthService, Role } from './auth.service.js';

const userSchema = wrapped('user', {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'email', 'role'],
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 200 },
    email: { type: 'string', minLength: 3, maxLength: 254 },
    role: { type: 'string', enum: ['admin', 'agent'] },
  },
});

const apiKeySchema = wrapped('apiKey', {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'userId'],
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 200 },
    userId: { type: 'string', minLength: 1 },
  },
});

type PageQuery = { limit?: string; cursor?: string };

export function registerAuthRoutes(api: FastifyInstance, auth: AuthService): void {
  const config = { roles: ADMIN };

  api.post<{ Body: { user: { name: string; email: string; role: Role } } }>(
    '/users',
    { config, schema: { body: userSchema } },
    async (request, reply) => reply.status(201).send({ user: await auth.createUser(request.body.user) }),
  );

  api.get<{ Querystring: PageQuery }>('/users', { config, schema: { querystring: pageQuerySchema } }, async (request) => {
    const page = await auth.listUsers(parsePageRequest(request.query));
    return { users: page.items, nextCursor: page.nextCursor };
  });

  api.get<{ Params: { id: string } }>('/users/:id', { config, schema: { params: idParamsSchema } }, async (request) => ({
    user: await auth.getUser(request.params.id),
  }));

  api.post<{ Body: { apiKey: { name: string; userId: string } } }>(
    '/api-keys',
    { config, schema: { body: apiKeySchema } },
    async (request, reply) => reply.status(201).send({ apiKey: await auth.createApiKey(request.body.apiKey) }),
  );

  api.get<{ Querystring: PageQuery }>('/api-keys', { config, schema: { querystring: pageQuerySchema } }, async (request) => {
    const page = await auth.listApiKeys(parsePageRequest(request.query));
    return { apiKeys: page.items, nextCursor: page.nextCursor };
  });

  api.delete<{ Params: { id: string } }>('/api-keys/:id', { config, schema: { params: idParamsSchema } }, async (request, reply) => {
    await auth.deleteApiKey(request.params.id);
    return reply.status(204).send();
  });
}
