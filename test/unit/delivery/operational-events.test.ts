import { describe, expect, it } from 'vitest';
import type { FailedDelivery } from '../../../src/delivery/attempts.repository.js';
import { operationalEvents } from '../../../src/delivery/operational-events.js';
import type { Deactivation } from '../../../src/delivery/webhook-directory.js';

const AT = '2026-12-04T21:00:00.000Z';

function failed(id: string, webhookId: string, eventType: string): FailedDelivery {
  return { id, webhookId, eventType, attemptCount: 10, lastStatusCode: null, createdAt: '2026-12-01T21:00:00.000Z', failedAt: AT };
}

function deactivation(causeEventType: string, reason: Deactivation['reason'] = 'gone'): Deactivation {
  return { reason, at: AT, name: 'CRM', targetUrl: 'https://crm.example.com/hook', causeEventType };
}

describe('operational events of a recorded batch', () => {
  it('reports a deactivation by a ticket or test event, and a ticket event delivery spent, with their documented data', () => {
    const events = operationalEvents(
      [failed('msg_1', 'whk_b', 'ticket.updated')],
      new Map([
        ['whk_a', deactivation('ticket.created')],
        ['whk_t', deactivation('webhook.test', 'failing')],
      ]),
    );
    expect(events.map(({ type, data, at, ticketId }) => ({ type, data, at, ticketId }))).toEqual([
      { type: 'webhook.disabled', ticketId: null, at: AT, data: { webhook: { id: 'whk_a', name: 'CRM', targetUrl: 'https://crm.example.com/hook', disabledReason: 'gone', disabledAt: AT } } },
      { type: 'webhook.disabled', ticketId: null, at: AT, data: { webhook: { id: 'whk_t', name: 'CRM', targetUrl: 'https://crm.example.com/hook', disabledReason: 'failing', disabledAt: AT } } },
      {
        type: 'delivery.failed',
        ticketId: null,
        at: AT,
        data: { delivery: { id: 'msg_1', webhookId: 'whk_b', event: 'ticket.updated', attemptCount: 10, lastStatusCode: null, createdAt: '2026-12-01T21:00:00.000Z' } },
      },
    ]);
  });

  it('makes nothing of an operational delivery: neither its final failure nor the deactivation it decided', () => {
    const events = operationalEvents(
      [failed('msg_1', 'whk_a', 'delivery.failed'), failed('msg_2', 'whk_a', 'webhook.disabled')],
      new Map([
        ['whk_b', deactivation('webhook.disabled')],
        ['whk_c', deactivation('delivery.failed', 'failing')],
      ]),
    );
    expect(events).toEqual([]);
  });

  it('makes no delivery.failed for a test event, nor for a delivery of a webhook the same batch deactivated', () => {
    const events = operationalEvents([failed('msg_1', 'whk_a', 'webhook.test'), failed('msg_2', 'whk_b', 'ticket.created')], new Map([['whk_b', deactivation('ticket.created')]]));
    expect(events.map((e) => [e.type, e.webhookId])).toEqual([['webhook.disabled', 'whk_b']]);
  });
});
