import type { FastifyInstance } from 'fastify';
import { idOf, idParamsSchema, isoTime, noContent, pageOf, pageQuerySchema, ref, wrapped } from '../http/schemas.js';
import { ADMIN } from '../http/route-config.js';
import { parsePageRequest } from '../shared/pagination.js';
import { ROLES, type Role } from '../shared/principal.js';
import type { AuthService } from './auth.service.js';

const userSchema = wrapped('user', {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'email', 'role'],
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 200 },
    email: { type: 'string', minLength: 3, maxLength: 254 },
    role: { type: 'string', enum: ROLES },
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

export const userResourceSchema = {
  $id: 'User',
  type: 'object',
  additionalProperties: false,
  required: ['id', 'name', 'email', 'role', 'createdAt', 'updatedAt'],
  properties: {
    id: idOf('usr'),
    name: { type: 'string' },
    email: { type: 'string' },
    role: { type: 'string', enum: ROLES },
    createdAt: isoTime,
    updatedAt: isoTime,
  },
} as const;

const apiKeyProperties = {
  id: idOf('key'),
  name: { type: 'string' },
  userId: idOf('usr'),
  createdAt: isoTime,
} as const;

export const apiKeyResourceSchema = {
  $id: 'ApiKey',
  type: 'object',
  additionalProperties: false,
  required: Object.keys(apiKeyProperties),
  properties: apiKeyProperties,
} as const;

/** The key itself is in the answer to its creation only; the server keeps a hash. */
export const newApiKeySchema = {
  $id: 'NewApiKey',
  type: 'object',
  additionalProperties: false,
  required: [...Object.keys(apiKeyProperties), 'key'],
  properties: { ...apiKeyProperties, key: { type: 'string', description: 'Shown once: send it as `Authorization: Bearer <key>`.' } },
} as const;

type PageQuery = { limit?: string; cursor?: string };

export function registerAuthRoutes(api: FastifyInstance, auth: AuthService): void {
  const config = { roles: ADMIN };

  api.post<{ Body: { user: { name: string; email: string; role: Role } } }>(
    '/users',
    { config: { ...config, errors: ['conflict'] }, schema: { summary: 'Create a user', tags: ['users and keys'], body: userSchema, response: { 201: wrapped('user', ref('User')) } } },
    async (request, reply) => reply.status(201).send({ user: await auth.createUser(request.body.user) }),
  );

  api.get<{ Querystring: PageQuery }>('/users', { config, schema: { summary: 'List users', tags: ['users and keys'], querystring: pageQuerySchema, response: { 200: pageOf('users', 'User') } } }, async (request) => {
    const page = await auth.listUsers(parsePageRequest(request.query));
    return { users: page.items, nextCursor: page.nextCursor };
  });

  api.get<{ Params: { id: string } }>('/users/:id', { config, schema: { summary: 'Retrieve a user', tags: ['users and keys'], params: idParamsSchema, response: { 200: wrapped('user', ref('User')) } } }, async (request) => ({
    user: await auth.getUser(request.params.id),
  }));

  api.post<{ Body: { apiKey: { name: string; userId: string } } }>(
    '/api-keys',
    { config, schema: { summary: 'Create an API key (the key is in this answer only)', tags: ['users and keys'], body: apiKeySchema, response: { 201: wrapped('apiKey', ref('NewApiKey')) } } },
    async (request, reply) => reply.status(201).send({ apiKey: await auth.createApiKey(request.body.apiKey) }),
  );

  api.get<{ Querystring: PageQuery }>('/api-keys', { config, schema: { summary: 'List API keys', tags: ['users and keys'], querystring: pageQuerySchema, response: { 200: pageOf('apiKeys', 'ApiKey') } } }, async (request) => {
    const page = await auth.listApiKeys(parsePageRequest(request.query));
    return { apiKeys: page.items, nextCursor: page.nextCursor };
  });

  api.delete<{ Params: { id: string } }>('/api-keys/:id', { config, schema: { summary: 'Revoke an API key (at once)', tags: ['users and keys'], params: idParamsSchema, response: { 204: noContent } } }, async (request, reply) => {
    await auth.deleteApiKey(request.params.id);
    return reply.status(204).send();
  });
}
