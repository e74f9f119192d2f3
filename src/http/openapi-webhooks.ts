/**
 * What Helpdesk sends to a webhook's target, for the `webhooks` section of the OpenAPI 3.1
 * document: the payload of every event type (SPEC §4, §8) and the Standard Webhooks headers it
 * comes with (SPEC §5). The payload schemas are registered like the resource schemas, so the
 * `Ticket` they carry is the one the API answers with.
 */
import { WEBHOOK_EVENT_TYPES, TEST_EVENT_TYPE } from '../webhooks/webhook.js';
import { EDITABLE_FIELDS } from '../tickets/ticket.js';
import { idOf, isoTime, ref } from './schemas.js';

const fieldChange = {
  type: 'object',
  additionalProperties: false,
  required: ['from', 'to'],
  properties: { from: {}, to: {} },
  description: 'The value before and after. For `customFields`, only the keys that changed, a removed one shown as null.',
} as const;

function envelope(id: string, events: readonly string[], data: object, description: string): object {
  return {
    $id: id,
    description,
    type: 'object',
    additionalProperties: false,
    required: ['event', 'timestamp', 'data'],
    properties: { event: { type: 'string', enum: events }, timestamp: { ...isoTime, description: 'When the change was committed; the same for every event of one request.' }, data },
  };
}

const withTicket = (extra: Record<string, object> = {}) => ({
  type: 'object',
  additionalProperties: false,
  required: ['ticket', ...Object.keys(extra)],
  properties: { ticket: ref('Ticket'), ...extra },
});

export const eventPayloadSchemas = [
  envelope('TicketEvent', ['ticket.created', 'ticket.resolved', 'ticket.deleted'], withTicket(), 'The whole ticket: as created, as resolved, or as it was when deleted.'),
  envelope(
    'TicketUpdatedEvent',
    ['ticket.updated'],
    {
      type: 'object',
      additionalProperties: false,
      required: ['ticket'],
      properties: {
        ticket: {
          type: 'object',
          additionalProperties: false,
          required: ['id', 'updatedFields'],
          properties: {
            id: idOf('tkt'),
            updatedFields: { type: 'object', propertyNames: { enum: EDITABLE_FIELDS }, additionalProperties: fieldChange, minProperties: 1 },
          },
        },
      },
    },
    'Only the fields whose value changed; `updatedAt` is never listed.',
  ),
  envelope(
    'TicketAssignmentChangedEvent',
    ['ticket.assignment.changed'],
    withTicket({
      assignment: {
        type: 'object',
        additionalProperties: false,
        required: ['from', 'to'],
        properties: { from: { type: ['string', 'null'] }, to: { type: ['string', 'null'] } },
      },
    }),
    'The whole ticket after the change, and the assignee before and after (a user id or null).',
  ),
  envelope(
    'WebhookTestEvent',
    [TEST_EVENT_TYPE],
    {
      type: 'object',
      additionalProperties: false,
      required: ['webhook'],
      properties: {
        webhook: { type: 'object', additionalProperties: false, required: ['id', 'name'], properties: { id: idOf('whk'), name: { type: 'string' } } },
      },
    },
    'Sent by `POST /webhooks/:id/test`, to an inactive webhook too.',
  ),
] as const;

const PAYLOAD_OF: Record<string, string> = {
  'ticket.created': 'TicketEvent',
  'ticket.resolved': 'TicketEvent',
  'ticket.deleted': 'TicketEvent',
  'ticket.updated': 'TicketUpdatedEvent',
  'ticket.assignment.changed': 'TicketAssignmentChangedEvent',
  [TEST_EVENT_TYPE]: 'WebhookTestEvent',
};

const header = (name: string, description: string) => ({ name, in: 'header', required: true, description, schema: { type: 'string' } });

const DELIVERY_HEADERS = [
  header('webhook-id', 'The delivery id (`msg_`): the same on every attempt of one delivery, to de-duplicate on.'),
  header('webhook-timestamp', 'Unix seconds of this attempt; refuse ones too far from your clock.'),
  header('webhook-signature', '`v1,` + base64 HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}`, keyed with the base64-decoded part of the signing secret after `whsec_`; several, space-separated, while a rotated secret is still honoured.'),
  header('x-helpdesk-event', 'The event type.'),
  header('x-helpdesk-webhook-id', 'The webhook (`whk_`) the delivery is for.'),
  header('user-agent', '`Helpdesk-Webhooks/<version>`.'),
];

/** The `webhooks` of the document: one POST per event type, as the target receives it. */
export function webhookOperations(): Record<string, object> {
  return Object.fromEntries(
    [...WEBHOOK_EVENT_TYPES, TEST_EVENT_TYPE].map((event) => [
      event,
      {
        post: {
          summary: `${event}, as your endpoint receives it`,
          operationId: `receive.${event}`,
          parameters: DELIVERY_HEADERS,
          requestBody: { required: true, content: { 'application/json': { schema: { $ref: `#/components/schemas/${PAYLOAD_OF[event]}` } } } },
          responses: {
            '2XX': { description: 'Received: the delivery succeeded. The status line decides; at most 20 KiB of the body are kept.' },
            '410': { description: 'Gone: the webhook is deactivated at once and its pending deliveries failed.' },
            default: {
              description:
                'Anything else, a redirect, or no answer within 5 s to connect and 15 s in all, is a failed attempt, retried with ±20% jitter after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h and 24 h; `Retry-After` on a 429 or 503 is a floor on the next delay (at most 10 h).',
            },
          },
        },
      },
    ]),
  );
}
