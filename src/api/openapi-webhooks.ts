/**
 * What Helpdesk sends to a webhook's target, for the `webhooks` section of the OpenAPI 3.1
 * document: the payload of every event type (docs/api.md, "Events and payloads") and the headers it comes
 * with (docs/delivery.md). The payload schemas are registered like the resource schemas, so the
 * `Ticket` they carry is the one the API answers with.
 */
import { DEFAULT_RETRY_SCHEDULE_SECONDS } from '../config.js';
import { DELIVERY_HEADERS, TRACE_HEADER } from '../delivery/delivery-headers.js';
import { JITTER, RETRY_AFTER_CAP_SECONDS } from '../delivery/retry-policy.js';
import { EVENT_TYPES, TEST_EVENT_TYPE, TICKET_EVENT_TYPES, type EventType } from '../events/event-types.js';
import { idOf, isoTime, ref } from '../http/schemas.js';
import { DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TOTAL_TIMEOUT_MS } from '../outbound/http-client.js';
import { EDITABLE_FIELDS } from '../tickets/ticket.js';
import { ticketVersionSchema } from '../tickets/tickets.routes.js';

const fieldChange = {
  type: 'object',
  additionalProperties: false,
  required: ['from', 'to'],
  properties: { from: {}, to: {} },
  description: 'The value before and after. For `customFields`, only the keys that changed, a removed one shown as null.',
} as const;

const CHANGE_TIME = 'When the change was committed; the same for every event of one request.';

function envelope(id: string, events: readonly string[], data: object, description: string, timestamp = CHANGE_TIME): object {
  return {
    $id: id,
    description,
    type: 'object',
    additionalProperties: false,
    required: ['event', 'timestamp', 'data'],
    properties: { event: { type: 'string', enum: events }, timestamp: { ...isoTime, description: timestamp }, data },
  };
}

/** An object of exactly these properties. */
const exactly = (properties: Record<string, object>) => ({ type: 'object', additionalProperties: false, required: Object.keys(properties), properties });

const NO_FURTHER_EVENT = 'A failed delivery of an operational event makes no further event: no `delivery.failed`, and no `webhook.disabled` for a deactivation it causes.';

const withTicket = (extra: Record<string, object> = {}) => ({
  type: 'object',
  additionalProperties: false,
  required: ['ticket', ...Object.keys(extra)],
  properties: { ticket: ref('Ticket'), ...extra },
});

export const eventPayloadSchemas = [
  envelope('TicketEvent', ['ticket.created', 'ticket.resolved', 'ticket.deleted'], withTicket(), 'The whole ticket: as created, as resolved, or as it was when deleted (with the version the deletion makes, one more than its last).'),
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
          required: ['id', 'version', 'updatedFields'],
          properties: {
            id: idOf('tkt'),
            version: ticketVersionSchema,
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
  envelope(
    'WebhookDisabledEvent',
    ['webhook.disabled'],
    exactly({
      webhook: exactly({
        id: idOf('whk'),
        name: { type: 'string' },
        targetUrl: { type: 'string' },
        disabledReason: { type: 'string', enum: ['gone', 'failing'], description: 'A 410 answer, or five days of failures.' },
        disabledAt: isoTime,
      }),
    }),
    `Operational: another webhook was deactivated automatically (never by a PUT), its pending deliveries failed. The deactivated webhook itself does not get it. ${NO_FURTHER_EVENT}`,
    'When the webhook was deactivated: its `disabledAt`.',
  ),
  envelope(
    'DeliveryFailedEvent',
    ['delivery.failed'],
    exactly({
      delivery: exactly({
        id: idOf('msg'),
        webhookId: idOf('whk'),
        event: { type: 'string', enum: TICKET_EVENT_TYPES, description: 'The ticket event whose delivery failed.' },
        attemptCount: { type: 'integer', minimum: 1, description: 'Every attempt made, redeliveries included.' },
        lastStatusCode: { type: ['integer', 'null'], description: 'The last attempt\'s status; null when it got no answer.' },
        createdAt: isoTime,
      }),
    }),
    `Operational: a ticket event's delivery spent its retry schedule and failed for good (not one failed because its webhook was deactivated: \`webhook.disabled\` covers those). ${NO_FURTHER_EVENT}`,
    'When the last attempt was recorded.',
  ),
] as const;

/** The payload schema of each event type: an event type added without one fails the typecheck. */
const PAYLOAD_OF: Record<EventType, string> = {
  'ticket.created': 'TicketEvent',
  'ticket.resolved': 'TicketEvent',
  'ticket.deleted': 'TicketEvent',
  'ticket.updated': 'TicketUpdatedEvent',
  'ticket.assignment.changed': 'TicketAssignmentChangedEvent',
  [TEST_EVENT_TYPE]: 'WebhookTestEvent',
  'webhook.disabled': 'WebhookDisabledEvent',
  'delivery.failed': 'DeliveryFailedEvent',
};

const HEADER_PARAMETERS = [
  ...Object.values(DELIVERY_HEADERS).map(({ name, description }) => ({ name, in: 'header', required: true, description, schema: { type: 'string' } })),
  { name: TRACE_HEADER.name, in: 'header', required: false, description: TRACE_HEADER.description, schema: { type: 'string' } },
];

/** `5 s`, `5 min`, `2 h`: a delay of the schedule as people read it. */
function spoken(seconds: number): string {
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${seconds / 60} min`;
  return `${seconds / 3600} h`;
}

const SCHEDULE = DEFAULT_RETRY_SCHEDULE_SECONDS.map(spoken);
const FAILED_ATTEMPT = `Anything else, a redirect, or no answer within ${DEFAULT_CONNECT_TIMEOUT_MS / 1000} s to connect and ${DEFAULT_TOTAL_TIMEOUT_MS / 1000} s in all, is a failed attempt, retried with ±${JITTER * 100}% jitter after ${SCHEDULE.slice(0, -1).join(', ')} and ${SCHEDULE.at(-1)}; \`Retry-After\` on a 429 or 503 is a floor on the next delay (at most ${spoken(RETRY_AFTER_CAP_SECONDS)}).`;

/** `ticket.assignment.changed` → `receiveTicketAssignmentChanged`: a name generated code can use as is. */
function receiverOperationId(event: string): string {
  return `receive${event.split('.').map((word) => word[0]!.toUpperCase() + word.slice(1)).join('')}`;
}

/** The `webhooks` of the document: one POST per event type, as the target receives it. */
export function webhookOperations(): Record<string, object> {
  return Object.fromEntries(
    EVENT_TYPES.map((event) => [
      event,
      {
        post: {
          summary: `${event}, as your endpoint receives it`,
          operationId: receiverOperationId(event),
          // The receiver checks the signature headers below; it takes no API key from Helpdesk.
          security: [],
          parameters: HEADER_PARAMETERS,
          requestBody: { required: true, content: { 'application/json': { schema: { $ref: `#/components/schemas/${PAYLOAD_OF[event]}` } } } },
          responses: {
            '2XX': { description: `Received: the delivery succeeded. The status line decides; at most ${DEFAULT_MAX_RESPONSE_BYTES / 1024} KiB of the body are kept.` },
            '410': { description: 'Gone: the webhook is deactivated at once and its pending deliveries failed.' },
            default: { description: FAILED_ATTEMPT },
          },
        },
      },
    ]),
  );
}
