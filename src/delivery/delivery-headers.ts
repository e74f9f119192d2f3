/**
 * The headers every attempt carries (docs/delivery.md, "The request"): the Standard
 * Webhooks three, and Helpdesk's own. The sender sets them and the OpenAPI document describes
 * them from this one table.
 */
export const DELIVERY_HEADERS = {
  id: { name: 'webhook-id', description: 'The delivery id (`msg_`): the same on every attempt of one delivery, to de-duplicate on.' },
  timestamp: { name: 'webhook-timestamp', description: 'Unix seconds of this attempt; refuse ones too far from your clock.' },
  signature: {
    name: 'webhook-signature',
    description:
      '`v1,` + base64 HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}`, keyed with the base64-decoded part of the signing secret after `whsec_`; several, space-separated, while a rotated secret is still honoured.',
  },
  event: { name: 'x-helpdesk-event', description: 'The event type.' },
  webhookId: { name: 'x-helpdesk-webhook-id', description: 'The webhook (`whk_`) the delivery is for.' },
  userAgent: { name: 'user-agent', description: '`Helpdesk-Webhooks/<version>`.' },
} as const;

/**
 * Sent only while tracing is on (docs/delivery.md, "Tracing"): the W3C Trace Context of the
 * attempt's span, in the trace of the change that made the event.
 */
export const TRACE_HEADER = {
  name: 'traceparent',
  description:
    'W3C Trace Context of this attempt (`00-<trace id>-<span id>-<flags>`), in the trace of the request that made the event; sent only when the server exports traces (OpenTelemetry).',
} as const;

/** The `user-agent` of every attempt. */
export function deliveryUserAgent(version: string): string {
  return `Helpdesk-Webhooks/${version}`;
}
