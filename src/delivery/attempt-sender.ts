/**
 * Sending one attempt of a claimed delivery: the headers of docs/delivery.md, signed with every
 * live secret of its webhook, one POST through the outbound module, and what the answer means
 * for the delivery: succeeded, a retry at a time, or failed.
 */
import type { OutboundClient, OutboundResponse } from '../outbound/http-client.js';
import { type Clock, toIso } from '../shared/time.js';
import type { Tracing } from '../tracing/tracing.js';
import type { AttemptOutcome } from './attempts.repository.js';
import type { ClaimedDelivery } from './deliveries.repository.js';
import { DELIVERY_HEADERS, TRACE_HEADER } from './delivery-headers.js';
import type { Claim } from './host-lanes.js';
import { nextRetryDelayMs, parseRetryAfter, RETRY_AFTER_STATUSES } from './retry-policy.js';
import { signatureHeader } from './signing.js';
import type { AttemptVerdict } from './webhook-directory.js';

export interface AttemptSenderOptions {
  readonly http: OutboundClient;
  readonly clock: Clock;
  readonly userAgent: string;
  readonly retrySchedule: readonly number[];
  /** The jitter's source: Math.random, or a fixed one in tests. */
  readonly random: () => number;
  /** A span per attempt, whose traceparent the attempt sends, when on. */
  readonly tracing: Tracing;
}

/** An attempt that got an answer, or an expected network failure. */
export interface SentAttempt {
  readonly response: OutboundResponse;
  readonly outcome: AttemptOutcome;
  /** What it says about the webhook's health. */
  readonly verdict: AttemptVerdict;
}

export class AttemptSender {
  constructor(private readonly options: AttemptSenderOptions) {}

  /**
   * POSTs the delivery's payload to its target, signed as of `startedAt`. Expected network
   * failures are answers too (`response.error`); anything thrown is a bug or a refusal of ours.
   */
  async send(claim: Claim, startedAt: number, abandoned: AbortSignal): Promise<SentAttempt> {
    const { http, clock, tracing } = this.options;
    const { delivery, target } = claim;
    const headers = this.#headers(claim, Math.floor(startedAt / 1000));
    let response: OutboundResponse;
    if (tracing.enabled) {
      const span = tracing.startAttempt({
        parent: delivery.traceparent,
        targetUrl: target.targetUrl,
        webhookId: delivery.webhookId,
        deliveryId: delivery.id,
        eventType: delivery.eventType,
        previousAttempts: delivery.scheduleAttempts,
        redelivery: delivery.status !== 'pending',
      });
      headers[TRACE_HEADER.name] = span.traceparent;
      try {
        response = await http.post(target.targetUrl, headers, delivery.payload, abandoned);
      } catch (error) {
        span.end(null, 'exception');
        throw error;
      }
      span.end(response.statusCode, response.error);
    } else {
      response = await http.post(target.targetUrl, headers, delivery.payload, abandoned);
    }
    const failed = response.error !== null;
    const retryAfter =
      response.statusCode !== null && RETRY_AFTER_STATUSES.has(response.statusCode) ? parseRetryAfter(response.headers?.['retry-after'], clock.now()) : null;
    return {
      response,
      outcome: failed ? this.afterFailure(delivery, retryAfter) : { kind: 'succeeded' },
      verdict: !failed ? 'succeeded' : response.statusCode === 410 ? 'gone' : 'failed',
    };
  }

  /**
   * The outcome of a failed attempt: the next retry, or failed once the schedule is spent. A
   * redelivery of a finished delivery is outside any schedule: it fails without a retry.
   */
  afterFailure(delivery: ClaimedDelivery, retryAfterSeconds: number | null): AttemptOutcome {
    const { clock, retrySchedule, random } = this.options;
    if (delivery.status !== 'pending') return { kind: 'failed' };
    const delayMs = nextRetryDelayMs(retrySchedule, delivery.scheduleAttempts + 1, random, retryAfterSeconds);
    return delayMs === null ? { kind: 'failed' } : { kind: 'retry', nextAttemptAt: toIso(clock.now() + delayMs) };
  }

  /** The webhook's own headers first: none of their names is one of these (docs/api.md, "Custom headers"). */
  #headers({ delivery, target }: Claim, timestamp: number): Record<string, string> {
    return {
      ...target.headers,
      'content-type': 'application/json',
      [DELIVERY_HEADERS.userAgent.name]: this.options.userAgent,
      [DELIVERY_HEADERS.id.name]: delivery.id,
      [DELIVERY_HEADERS.timestamp.name]: String(timestamp),
      [DELIVERY_HEADERS.signature.name]: signatureHeader(target.signingSecrets, delivery.id, timestamp, delivery.payload),
      [DELIVERY_HEADERS.event.name]: delivery.eventType,
      [DELIVERY_HEADERS.webhookId.name]: delivery.webhookId,
    };
  }
}
