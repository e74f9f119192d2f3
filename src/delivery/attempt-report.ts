/**
 * What is said about an attempt once it is recorded: the observer's report (the metrics) and
 * the log line. Only after the record committed, so that both count only attempts the
 * delivery log shows.
 */
import type { Logger } from 'pino';
import type { SentAttempt } from './attempt-sender.js';
import type { Claim } from './host-lanes.js';
import type { DeliveryObserver } from './observer.js';
import type { DeactivationReason } from './webhook-directory.js';

export function reportAttempt(
  { observer, logger }: { observer: DeliveryObserver; logger: Logger },
  { delivery, host }: Claim,
  { response, outcome }: SentAttempt,
  finishedAt: number,
  disabled: DeactivationReason | null,
): void {
  const failed = response.error !== null;
  observer.attempted({
    eventType: delivery.eventType,
    target: host,
    outcome: outcome.kind,
    error: response.error,
    durationMs: response.durationMs,
    // Its first success, however many attempts it took: the latency a receiver sees.
    eventToDeliveryMs: !failed && delivery.status !== 'succeeded' ? finishedAt - Date.parse(delivery.createdAt) : null,
    finalTransition: failed ? delivery.status === 'pending' && outcome.kind === 'failed' : delivery.status !== 'succeeded',
  });
  logger.info(
    {
      deliveryId: delivery.id,
      webhookId: delivery.webhookId,
      event: delivery.eventType,
      statusCode: response.statusCode,
      error: response.error,
      durationMs: response.durationMs,
      outcome: outcome.kind,
      ...(disabled ? { webhookDisabled: disabled } : {}),
    },
    'delivery attempt',
  );
}
