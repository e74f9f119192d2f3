/**
 * Prometheus metrics (prom-client), one registry per process (`serve` on its port, `worker` on
 * HELPDESK_WORKER_PORT): deliveries by outcome and event, attempt durations, event-to-delivery
 * latency, queue depth, circuit breaker state, the worker's last claim, the retention lease and
 * the operational events made.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { SpanExportCounts } from '../tracing/tracing.js';
import type { Db } from '../db/connection.js';
import { BREAKER_STATES, type BreakerState } from '../delivery/circuit-breaker.js';
import { countHeld, countQueued } from '../delivery/deliveries.repository.js';
import type { AttemptReport, DeliveryObserver } from '../delivery/observer.js';
import { DEFAULT_LIVENESS, type LivenessObserver } from '../delivery/worker-liveness.js';
import { countLiveWorkers } from '../delivery/worker-liveness.repository.js';
import { toIso } from '../shared/time.js';
import type { EventStreamObserver, StreamCloseReason } from '../events/event-stream.js';
import { OPERATIONAL_EVENT_TYPES, type OperationalEventType } from '../events/event-types.js';


export class Metrics implements DeliveryObserver, EventStreamObserver, LivenessObserver {
  readonly registry = new Registry();
  readonly #attempts: Counter<'event' | 'outcome' | 'error'>;
  readonly #deliveries: Counter<'event' | 'outcome'>;
  readonly #attemptDuration: Histogram<'outcome'>;
  readonly #eventToDelivery: Histogram;
  readonly #requests: Counter<'method' | 'route' | 'status'>;
  readonly #filteredOut: Counter;
  readonly #rateLimited: Counter<'webhook'>;
  readonly #operationalEvents: Counter<'event'>;
  readonly #requestDuration: Histogram<'method' | 'route'>;
  readonly #streamsOpen: Gauge;
  readonly #streamsClosed: Counter<'reason'>;
  readonly #streamsRefused: Counter;
  readonly #streamedEvents: Counter;
  readonly #retentionLeaseHeld: Gauge;
  readonly #retentionPruned: Counter;
  readonly #deadWorkers: Counter;
  readonly #leasesReclaimed: Counter;
  readonly #requestsByRouteAndStatus = new Map<string, { inc(): void }>();
  readonly #requestDurationByRoute = new Map<string, { observe(value: number): void }>();

  /**
   * `lastClaimAt`: when this process's worker last took a delivery; null when it runs none.
   * `spanExports`: what the tracing exporter sent, failed or dropped (zeros when tracing is off).
   * `liveness`: the clock the heartbeats are written by and the age past which one is stale, the
   * workers' own, so that the count of live workers agrees with what the workers find.
   */
  constructor(
    db: Db,
    breakerStates: () => Map<string, BreakerState>,
    lastClaimAt: () => number | null = () => null,
    spanExports: () => SpanExportCounts = () => ({ exported: 0, failed: 0, dropped: 0 }),
    liveness: { now: () => number; staleMs: number } = { now: Date.now, staleMs: DEFAULT_LIVENESS.staleMs },
  ) {
    collectDefaultMetrics({ register: this.registry, prefix: 'helpdesk_' });
    const registers = [this.registry];
    this.#attempts = new Counter({
      name: 'helpdesk_delivery_attempts_total',
      help: 'Delivery attempts, by event type, outcome (succeeded, retry, failed) and error kind.',
      labelNames: ['event', 'outcome', 'error'],
      registers,
    });
    this.#deliveries = new Counter({
      name: 'helpdesk_deliveries_total',
      help: 'Deliveries that reached a final state through an attempt (succeeded, or failed with the schedule spent), by event type.',
      labelNames: ['event', 'outcome'],
      registers,
    });
    this.#attemptDuration = new Histogram({
      name: 'helpdesk_delivery_attempt_duration_seconds',
      help: 'Duration of one delivery attempt, from sending to the end of the answer.',
      labelNames: ['outcome'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15],
      registers,
    });
    this.#eventToDelivery = new Histogram({
      name: 'helpdesk_event_to_delivery_seconds',
      help: 'From an event being committed to the first successful attempt of its delivery.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    this.#filteredOut = new Counter({
      name: 'helpdesk_deliveries_filtered_out_total',
      help: 'Deliveries not made because a webhook filter did not match the event (counted by the process that recorded the change).',
      registers,
    });
    this.#rateLimited = new Counter({
      name: 'helpdesk_deliveries_rate_limited_total',
      help: 'Deliveries put back to wait for a free slot of their webhook rate limit, by webhook (no attempt is spent).',
      labelNames: ['webhook'],
      registers,
    });
    this.#operationalEvents = new Counter({
      name: 'helpdesk_operational_events_total',
      help: 'Operational events committed (webhook.disabled, delivery.failed), by type, counted by the process whose attempt made them; each makes one delivery per subscribed webhook.',
      labelNames: ['event'],
      registers,
    });
    // Every type from the start, so that an alert on a rate sees 0 before the first one.
    for (const event of OPERATIONAL_EVENT_TYPES) this.#operationalEvents.inc({ event }, 0);
    this.#requests = new Counter({
      name: 'helpdesk_http_requests_total',
      help: 'API requests answered, by method, route template (unmatched for unknown paths) and status code.',
      labelNames: ['method', 'route', 'status'],
      registers,
    });
    this.#requestDuration = new Histogram({
      name: 'helpdesk_http_request_duration_seconds',
      help: 'From a request arriving to its answer being sent, by method and route template.',
      labelNames: ['method', 'route'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.#streamsOpen = new Gauge({ name: 'helpdesk_event_streams_open', help: 'Event streams (GET /events/stream) open in this process.', registers });
    this.#streamsClosed = new Counter({
      name: 'helpdesk_event_streams_closed_total',
      help: 'Event streams ended, by reason: client (it left), slow (it stopped reading and was dropped), shutdown (the server stopped).',
      labelNames: ['reason'],
      registers,
    });
    this.#streamsRefused = new Counter({ name: 'helpdesk_event_streams_refused_total', help: 'Event streams refused with 429: this process already served HELPDESK_EVENT_STREAMS.', registers });
    this.#streamedEvents = new Counter({ name: 'helpdesk_event_stream_events_total', help: 'Events written to event streams (one per stream that got it).', registers });
    this.#retentionLeaseHeld = new Gauge({
      name: 'helpdesk_retention_lease_held',
      help: 'Whether this process holds the retention lease (1) and is the one that prunes, or not (0); across the processes sharing a database, one should be 1.',
      registers,
    });
    this.#retentionPruned = new Counter({ name: 'helpdesk_retention_pruned_rows_total', help: 'Rows (deliveries, events, idempotency keys) this process pruned past their retention.', registers });
    this.#deadWorkers = new Counter({
      name: 'helpdesk_workers_found_dead_total',
      help: 'Delivery workers whose heartbeat stopped, found by this process, which released their leases.',
      registers,
    });
    this.#leasesReclaimed = new Counter({
      name: 'helpdesk_worker_leases_reclaimed_total',
      help: 'Deliveries whose leases this process released because the worker holding them stopped its heartbeat (made claimable at once instead of at the lease expiry).',
      registers,
    });
    new Gauge({
      name: 'helpdesk_delivery_workers',
      help: 'Delivery workers (serve with its worker, helpdesk worker) whose heartbeat is fresh, across every process sharing the database.',
      registers,
      async collect() {
        this.set(await countLiveWorkers(db, toIso(liveness.now() - liveness.staleMs)));
      },
    });
    new Gauge({
      name: 'helpdesk_worker_last_claim_timestamp_seconds',
      help: "When this process's delivery worker last took a delivery (or started), in seconds since the epoch; absent when it runs no worker.",
      registers,
      collect() {
        this.reset();
        const at = lastClaimAt();
        if (at !== null) this.set(at / 1000);
      },
    });
    new Gauge({
      name: 'helpdesk_delivery_queue_depth',
      help: 'Deliveries with an attempt still to make (due now or scheduled).',
      registers,
      async collect() {
        this.set(await countQueued(db));
      },
    });
    new Gauge({
      name: 'helpdesk_deliveries_held',
      help: 'Pending deliveries waiting for an earlier delivery of their ticket to the same webhook to succeed or fail for good.',
      registers,
      async collect() {
        this.set(await countHeld(db));
      },
    });
    new Counter({
      name: 'helpdesk_tracing_spans_total',
      help: 'Spans this process made for the OpenTelemetry collector, by outcome: exported; failed (refused, timed out, unreachable: lost); dropped (its queue was full: never sent). 0 while tracing is off.',
      labelNames: ['outcome'],
      registers,
      collect() {
        const { exported, failed, dropped } = spanExports();
        this.reset();
        this.inc({ outcome: 'exported' }, exported);
        this.inc({ outcome: 'failed' }, failed);
        this.inc({ outcome: 'dropped' }, dropped);
      },
    });
    new Gauge({
      name: 'helpdesk_circuit_breaker_state',
      help: 'Circuit breaker per webhook in this process: 1 for its current state, 0 otherwise.',
      labelNames: ['webhook', 'state'],
      registers,
      collect() {
        this.reset();
        for (const [webhook, current] of breakerStates()) {
          for (const state of BREAKER_STATES) this.set({ webhook, state }, state === current ? 1 : 0);
        }
      },
    });
  }

  /**
   * Called for every request: the labelled series are looked up once per route and status and
   * kept, instead of prom-client hashing the labels on every call. Both maps are bounded by the
   * routes (unknown paths share `unmatched`) times the methods and statuses they answer.
   */
  requestAnswered(method: string, route: string, status: number, seconds: number): void {
    const key = `${method} ${route}`;
    let duration = this.#requestDurationByRoute.get(key);
    if (!duration) this.#requestDurationByRoute.set(key, (duration = this.#requestDuration.labels({ method, route })));
    duration.observe(seconds);
    const statusKey = `${key} ${status}`;
    let count = this.#requestsByRouteAndStatus.get(statusKey);
    if (!count) this.#requestsByRouteAndStatus.set(statusKey, (count = this.#requests.labels({ method, route, status: String(status) })));
    count.inc();
  }

  filteredOut(count: number): void {
    this.#filteredOut.inc(count);
  }

  rateLimited(webhookId: string, count: number): void {
    this.#rateLimited.inc({ webhook: webhookId }, count);
  }

  operationalEvent(type: OperationalEventType): void {
    this.#operationalEvents.inc({ event: type });
  }

  streamOpened(): void {
    this.#streamsOpen.inc();
  }

  streamClosed(reason: StreamCloseReason): void {
    this.#streamsOpen.dec();
    this.#streamsClosed.inc({ reason });
  }

  streamRefused(): void {
    this.#streamsRefused.inc();
  }

  eventsStreamed(count: number): void {
    if (count > 0) this.#streamedEvents.inc(count);
  }

  retentionLeaseHeld(held: boolean): void {
    this.#retentionLeaseHeld.set(held ? 1 : 0);
  }

  retentionPruned(rows: number): void {
    this.#retentionPruned.inc(rows);
  }

  leasesReclaimed(workers: number, deliveries: number): void {
    this.#deadWorkers.inc(workers);
    this.#leasesReclaimed.inc(deliveries);
  }

  attempted(report: AttemptReport): void {
    this.#attempts.inc({ event: report.eventType, outcome: report.outcome, error: report.error ?? 'none' });
    if (report.finalTransition) this.#deliveries.inc({ event: report.eventType, outcome: report.outcome === 'succeeded' ? 'succeeded' : 'failed' });
    this.#attemptDuration.observe({ outcome: report.outcome }, report.durationMs / 1000);
    if (report.eventToDeliveryMs !== null) this.#eventToDelivery.observe(report.eventToDeliveryMs / 1000);
  }
}
