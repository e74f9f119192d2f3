import type { FastifyInstance } from 'fastify';
import { idOf, idParamsSchema, isoTime, noContent, pageOf, pageQueryProperties, ref, wrapped } from '../http/schemas.js';
import { AGENT_OR_ADMIN } from '../http/route-config.js';
import { parsePageRequest } from '../shared/pagination.js';
import { TICKET_PRIORITIES, TICKET_STATUSES, type TicketPatch } from './ticket.js';
import type { NewTicket, TicketsService } from './tickets.service.js';

const MAX_TAGS = 100;
const MAX_CUSTOM_FIELDS = 100;

const ticketFields = {
  subject: { type: 'string', minLength: 1, maxLength: 250 },
  description: { type: 'string', maxLength: 65536 },
  status: { type: 'string', enum: TICKET_STATUSES, description: '`closed` is final: only `tags` may change after it.' },
  priority: { type: 'string', enum: TICKET_PRIORITIES },
  assigneeId: { type: ['string', 'null'], minLength: 1, description: 'The id of an existing user, or null.' },
  requesterEmail: { type: ['string', 'null'], maxLength: 254 },
  tags: { type: 'array', maxItems: MAX_TAGS, items: { type: 'string', minLength: 1, maxLength: 100 } },
  customFields: {
    type: ['object', 'null'],
    maxProperties: MAX_CUSTOM_FIELDS,
    propertyNames: { minLength: 1, maxLength: 100 },
    additionalProperties: { type: ['string', 'number', 'boolean', 'null'] },
  },
} as const;

/** `version` as the ticket and its events carry it: read-only, so no request schema lists it. */
export const ticketVersionSchema = {
  type: 'integer',
  minimum: 1,
  description:
    'Read-only. 1 at creation, one more per committed change that changes something; the events of one change carry the version it made. A receiver drops an event at or below the version it has applied, and fetches the ticket when one is skipped.',
} as const;

/** The ticket as the API answers with it (docs/api.md, "Tickets"); `Ticket` in the OpenAPI document. */
export const ticketSchema = {
  $id: 'Ticket',
  type: 'object',
  additionalProperties: false,
  required: ['id', 'subject', 'description', 'status', 'priority', 'assigneeId', 'requesterEmail', 'tags', 'customFields', 'version', 'createdAt', 'updatedAt'],
  properties: {
    id: idOf('tkt'),
    subject: ticketFields.subject,
    description: { type: 'string' },
    status: ticketFields.status,
    priority: ticketFields.priority,
    assigneeId: { type: ['string', 'null'], description: 'A user id, or null when unassigned.' },
    requesterEmail: { type: ['string', 'null'] },
    tags: { type: 'array', items: { type: 'string' } },
    customFields: { type: 'object', additionalProperties: { type: ['string', 'number', 'boolean', 'null'] } },
    version: ticketVersionSchema,
    createdAt: isoTime,
    updatedAt: isoTime,
  },
} as const;

const oneTicket = wrapped('ticket', ref('Ticket'));

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

  api.post<{ Body: { ticket: NewTicket } }>('/tickets', { config, schema: { summary: 'Create a ticket', tags: ['tickets'], body: createSchema, response: { 201: oneTicket } } }, async (request, reply) =>
    reply.status(201).send({ ticket: await tickets.create(request.body.ticket, request.idempotency, request.traceparent) }),
  );

  api.get<{ Querystring: { limit?: string; cursor?: string; status?: string; assigneeId?: string } }>(
    '/tickets',
    { config, schema: { summary: 'List tickets, newest first', tags: ['tickets'], querystring: listQuerySchema, response: { 200: pageOf('tickets', 'Ticket') } } },
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

  api.get<{ Params: { id: string } }>('/tickets/:id', { config, schema: { summary: 'Retrieve a ticket', tags: ['tickets'], params: idParamsSchema, response: { 200: oneTicket } } }, async (request) => ({
    ticket: await tickets.get(request.params.id),
  }));

  api.put<{ Params: { id: string }; Body: { ticket: TicketPatch } }>(
    '/tickets/:id',
    { config: { ...config, errors: ['conflict'] }, schema: { summary: 'Update a ticket (only the fields given change)', tags: ['tickets'], params: idParamsSchema, body: updateSchema, response: { 200: oneTicket } } },
    async (request) => ({ ticket: await tickets.update(request.params.id, request.body.ticket, request.traceparent) }),
  );

  api.delete<{ Params: { id: string } }>('/tickets/:id', { config, schema: { summary: 'Delete a ticket', tags: ['tickets'], params: idParamsSchema, response: { 204: noContent } } }, async (request, reply) => {
    await tickets.delete(request.params.id, request.traceparent);
    return reply.status(204).send();
  });
}
