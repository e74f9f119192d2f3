import type { FastifyInstance } from 'fastify';
import { AGENT_OR_ADMIN, idParamsSchema, pageQueryProperties, wrapped } from '../http/schemas.js';
import { parsePageRequest } from '../shared/pagination.js';
import { TICKET_PRIORITIES, TICKET_STATUSES, type TicketPatch } from './ticket.js';
import type { NewTicket, TicketsService } from './tickets.service.js';

const MAX_TAGS = 100;
const MAX_CUSTOM_FIELDS = 100;

const ticketFields = {
  subject: { type: 'string', minLength: 1, maxLength: 250 },
  description: { type: 'string', maxLength: 65536 },
  status: { type: 'string', enum: TICKET_STATUSES },
  priority: { type: 'string', enum: TICKET_PRIORITIES },
  assigneeId: { type: ['string', 'null'], minLength: 1 },
  requesterEmail: { type: ['string', 'null'], maxLength: 254 },
  tags: { type: 'array', maxItems: MAX_TAGS, items: { type: 'string', minLength: 1, maxLength: 100 } },
  customFields: {
    type: ['object', 'null'],
    maxProperties: MAX_CUSTOM_FIELDS,
    propertyNames: { minLength: 1, maxLength: 100 },
    additionalProperties: { type: ['string', 'number', 'boolean', 'null'] },
  },
} as const;

const createSchema = wrapped('ticket', { type: 'object', additionalProperties: false, required: ['subject'], properties: ticketFields });
const updateSchema = wrapped('ticket', {
  type: 'object',
  additionalProperties: false,
  properties: { ...ticketFields, customFields: { ...ticketFields.customFields, type: 'object' } },
});

const listQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...pageQueryProperties,
    status: { type: 'string', enum: TICKET_STATUSES },
    assigneeId: { type: 'string', minLength: 1 },
  },
} as const;

export function registerTicketRoutes(api: FastifyInstance, tickets: TicketsService): void {
  const config = { roles: AGENT_OR_ADMIN };

  api.post<{ Body: { ticket: NewTicket } }>('/tickets', { config, schema: { body: createSchema } }, async (request, reply) =>
    reply.status(201).send({ ticket: await tickets.create(request.body.ticket, request.idempotency) }),
  );

  api.get<{ Querystring: { limit?: string; cursor?: string; status?: string; assigneeId?: string } }>(
    '/tickets',
    { config, schema: { querystring: listQuerySchema } },
    async (request) => {
      const { status, assigneeId } = request.query;
      const filter = {
        ...(status === undefined ? {} : { status }),
        ...(assigneeId === undefined ? {} : { assigneeId: assigneeId === 'none' ? null : assigneeId }),
      };
      const page = await tickets.list(filter, parsePageRequest(request.query));
      return { tickets: page.items, nextCursor: page.nextCursor };
    },
  );

  api.get<{ Params: { id: string } }>('/tickets/:id', { config, schema: { params: idParamsSchema } }, async (request) => ({
    ticket: await tickets.get(request.params.id),
  }));

  api.put<{ Params: { id: string }; Body: { ticket: TicketPatch } }>(
    '/tickets/:id',
    { config, schema: { params: idParamsSchema, body: updateSchema } },
    async (request) => ({ ticket: await tickets.update(request.params.id, request.body.ticket) }),
  );

  api.delete<{ Params: { id: string } }>('/tickets/:id', { config, schema: { params: idParamsSchema } }, async (request, reply) => {
    await tickets.delete(request.params.id);
    return reply.status(204).send();
  });
}
