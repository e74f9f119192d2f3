import type { FastifyInstance } from 'fastify';
import { idParamsSchema, idPattern, isoTime, wrapped } from '../http/schemas.js';
import { ADMIN } from '../http/route-config.js';
import { LATENCY_ABSOLUTE_PRECISION_MS, LATENCY_RELATIVE_PRECISION } from '../delivery/latency-histogram.js';
import { ACTIVITY_DEFAULT_HOURS, ACTIVITY_INTERVAL_MINUTES, ACTIVITY_MAX_HOURS, ACTIVITY_MAX_INTERVALS, ACTIVITY_MAX_WEBHOOKS, parseActivityHours, type WebhookActivityService } from './webhook-activity.service.js';

const count = { type: 'integer', minimum: 0 } as const;
const countProperties = {
  start: { ...isoTime, description: 'The interval is [start, start + intervalSeconds).' },
  succeeded: { ...count, description: 'Attempts that got a 2xx answer.' },
  failed: { ...count, description: 'Attempts that did not: another status, or no answer (timeout, connection, TLS, DNS).' },
} as const;
const latency = (quantile: string) =>
  ({
    type: ['number', 'null'],
    minimum: 0,
    description: `The ${quantile} of the interval's attempt durations in milliseconds, failed attempts included, estimated from a histogram: off by at most ${LATENCY_RELATIVE_PRECISION * 100} % of the value, or ${LATENCY_ABSOLUTE_PRECISION_MS} ms under 20 ms; null when the interval had no attempt.`,
  }) as const;

const windowProperties = {
  from: { ...isoTime, description: 'The start of the first interval.' },
  to: { ...isoTime, description: 'The end of the last interval, the one now is in (it may lie ahead).' },
  intervalSeconds: { type: 'integer', enum: ACTIVITY_INTERVAL_MINUTES.map((minutes) => minutes * 60), description: `Chosen by the server: the shortest of ${ACTIVITY_INTERVAL_MINUTES.join(', ')} minutes that makes at most ${ACTIVITY_MAX_INTERVALS} intervals.` },
} as const;

const activitySchema = wrapped('activity', {
  type: 'object',
  additionalProperties: false,
  required: ['from', 'to', 'intervalSeconds', 'buckets'],
  properties: {
    ...windowProperties,
    buckets: {
      type: 'array',
      description: 'Every interval of the window, oldest first, an empty one too (zeros and null latencies).',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['start', 'succeeded', 'failed', 'p50Ms', 'p95Ms'],
        properties: { ...countProperties, p50Ms: latency('median (p50)'), p95Ms: latency('95th percentile (p95)') },
      },
    },
  },
});

const activitiesSchema = wrapped('activity', {
  type: 'object',
  additionalProperties: false,
  required: ['from', 'to', 'intervalSeconds', 'webhooks'],
  properties: {
    ...windowProperties,
    webhooks: {
      type: 'array',
      description: 'In the order of `ids`, each once; a webhook that does not exist (deleted since) is left out.',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['webhookId', 'buckets'],
        properties: {
          webhookId: { type: 'string', pattern: '^whk_' },
          buckets: { type: 'array', description: 'Every interval of the window, oldest first, an empty one too.', items: { type: 'object', additionalProperties: false, required: Object.keys(countProperties), properties: countProperties } },
        },
      },
    },
  },
});

const hoursQuery = { type: 'string', description: `How many hours back, a whole number from 1 to ${ACTIVITY_MAX_HOURS} (default ${ACTIVITY_DEFAULT_HOURS}).` } as const;
const webhookId = idPattern('whk').slice(1, -1);

export function registerWebhookActivityRoutes(api: FastifyInstance, activity: WebhookActivityService): void {
  const config = { roles: ADMIN };

  // A static segment wins over a parameter in Fastify's router: `activity` is never taken for a webhook id.
  api.get<{ Querystring: { ids: string; hours?: string } }>(
    '/webhooks/activity',
    {
      config,
      schema: {
        summary: "Several webhooks' attempts per interval over the last hours, in one request (the list's sparklines)",
        tags: ['deliveries'],
        querystring: {
          type: 'object',
          additionalProperties: false,
          required: ['ids'],
          properties: {
            ids: { type: 'string', pattern: `^${webhookId}(,${webhookId})*$`, description: `Comma-separated webhook ids, at most ${ACTIVITY_MAX_WEBHOOKS}.` },
            hours: hoursQuery,
          },
        },
        response: { 200: activitiesSchema },
      },
    },
    async (request) => ({ activity: await activity.ofWebhooks(request.query.ids.split(','), parseActivityHours(request.query.hours)) }),
  );

  api.get<{ Params: { id: string }; Querystring: { hours?: string } }>(
    '/webhooks/:id/activity',
    {
      config,
      schema: {
        summary: "A webhook's attempts (succeeded, failed) and latency (p50, p95) per interval over the last hours",
        tags: ['deliveries'],
        params: idParamsSchema,
        querystring: { type: 'object', additionalProperties: false, properties: { hours: hoursQuery } },
        response: { 200: activitySchema },
      },
    },
    async (request) => ({ activity: await activity.ofWebhook(request.params.id, parseActivityHours(request.query.hours)) }),
  );
}
