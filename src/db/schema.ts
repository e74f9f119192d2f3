/**
 * Table types for Kysely. Both databases store the same shapes: times are ISO 8601 UTC text
 * (lexical order is time order), JSON is text, booleans are 0/1 integers (better-sqlite3 cannot
 * bind booleans), so that no query needs to know which database it runs on.
 */
import type { Generated } from 'kysely';

export interface UsersTable {
  id: string;
  name: string;
  email: string;
  /** Lower-cased email, unique: emails are compared case-insensitively. */
  email_normalized: string;
  role: 'admin' | 'agent';
  created_at: string;
  updated_at: string;
}

export interface ApiKeysTable {
  id: string;
  name: string;
  user_id: string;
  /** SHA-256 of the key, hex. The key itself is never stored. */
  key_hash: string;
  created_at: string;
}

export interface TicketsTable {
  id: string;
  subject: string;
  description: string;
  status: string;
  priority: string;
  assignee_id: string | null;
  requester_email: string | null;
  tags: string;
  custom_fields: string;
  /** 1 at creation, one more per committed change that changes something. */
  version: number;
  created_at: string;
  updated_at: string;
}

export interface WebhooksTable {
  id: string;
  name: string;
  target_url: string;
  events: string;
  active: number;
  signing_secret: string;
  disabled_reason: string | null;
  disabled_at: string | null;
  failing_since: string | null;
  /** The filter as given (JSON), null for none. */
  filter: string | null;
  /** A JSON object of header name to sealed value. */
  headers: string;
  /** Deliveries per second, null for no limit. */
  rate_limit: number | null;
  created_at: string;
  updated_at: string;
}

export interface WebhookSecretsTable {
  webhook_id: string;
  secret: string;
  expires_at: string;
  created_at: string;
}

export interface EventsTable {
  id: string;
  type: string;
  ticket_id: string | null;
  /** The version of its ticket the event carries; null for an event of no ticket. */
  ticket_version: number | null;
  /** The exact body sent to receivers: signatures are computed over these bytes. */
  payload: string;
  /**
   * JSON `{ticket, changes}`: the part of the event's filter document that its payload does not
   * carry (events of an update); null when the payload carries it all.
   */
  filter_context: string | null;
  /**
   * The event's place in commit order, which the event stream follows (migration 0011); null on
   * PostgreSQL until the feed's sequencer numbers it after its commit. Only ticket events have
   * one: an event of no ticket is in no feed, and stays null (migration 0012).
   */
  feed_position: number | null;
  /**
   * The W3C traceparent of the span that made the event (migration 0014), which its delivery
   * attempts continue; null when tracing was off.
   */
  traceparent: string | null;
  created_at: string;
}

export interface WebhookSendSlotsTable {
  webhook_id: string;
  /** Milliseconds since the epoch: the earliest time of this webhook's next send. */
  next_slot_at: number;
}

export interface DeliveriesTable {
  /** Insertion order: first attempts are started in this order. */
  seq: Generated<number>;
  id: string;
  webhook_id: string;
  event_id: string;
  event_type: string;
  /**
   * The ticket whose event this is: the deliveries of one ticket to one webhook are attempted in
   * order. Null for the test event, which belongs to no ticket and waits for nothing.
   */
  ticket_id: string | null;
  /**
   * 1 while the delivery waits for an earlier pending delivery of its ticket to its webhook; it
   * is pending, with no `next_attempt_at`, until that one succeeds or fails for good.
   */
  held: number;
  /**
   * 1 from an admin's act (redelivery, recovery, test event) until its next attempt is recorded:
   * it goes out at once, whatever the webhook's breaker or the ticket's order says.
   */
  expedited: number;
  status: 'pending' | 'succeeded' | 'failed';
  /** All attempts ever made, redeliveries included. */
  attempt_count: number;
  /** Attempts in the current retry schedule: what the back-off counts. */
  schedule_attempts: number;
  /**
   * When the next attempt is due; null when there is none to make. Set on every pending
   * delivery, and on a finished one for which a redelivery was asked.
   */
  next_attempt_at: string | null;
  /** While set and in the future, a worker holds the delivery; an expired lease may be taken over. */
  lease_expires_at: string | null;
  leased_by: string | null;
  last_attempt_at: string | null;
  last_status_code: number | null;
  created_at: string;
  updated_at: string;
}

export interface AttemptsTable {
  id: string;
  delivery_id: string;
  attempted_at: string;
  status_code: number | null;
  duration_ms: number;
  error: string | null;
  /** What the network said, for a failure without an answer (migration 0009). */
  error_message: string | null;
  response_headers: string | null;
  response_body: string | null;
}

export interface IdempotencyKeysTable {
  /** The API key the requests came with: keys of different callers never meet. */
  scope: string;
  key: string;
  /**
   * SHA-256 of the method, path and body, sealed (a keyed digest in rows from before): the same
   * key with another request is refused.
   */
  fingerprint: string;
  /** While set (and no response is stored), a request with the key is under way. */
  locked_until: string | null;
  response_status: number | null;
  /** The response body, sealed (it may carry a secret shown once). */
  response_body: string | null;
  created_at: string;
  expires_at: string;
}

export interface SettingsTable {
  key: string;
  value: string;
}

/** A job that one process at a time runs (migration 0013): who holds it, until when. */
export interface JobLeasesTable {
  name: string;
  /** Who took it last: `host:pid:random`, so that an operator can find the process. */
  holder: string;
  /** ISO time; past it, any process may take the lease. */
  expires_at: string;
}

/** A running delivery worker (migration 0016): who and where it is, and when it last said it lives. */
export interface WorkerHeartbeatsTable {
  /** The id its leases carry in `deliveries.leased_by` (`wrk_…`). */
  worker_id: string;
  host: string;
  pid: number;
  /** The Helpdesk version it runs. */
  version: string;
  started_at: string;
  /** ISO time, from the worker's clock; older than the staleness limit, the worker counts as dead. */
  heartbeat_at: string;
}

export interface Database {
  users: UsersTable;
  api_keys: ApiKeysTable;
  tickets: TicketsTable;
  webhooks: WebhooksTable;
  webhook_secrets: WebhookSecretsTable;
  webhook_send_slots: WebhookSendSlotsTable;
  events: EventsTable;
  deliveries: DeliveriesTable;
  attempts: AttemptsTable;
  settings: SettingsTable;
  idempotency_keys: IdempotencyKeysTable;
  job_leases: JobLeasesTable;
  worker_heartbeats: WorkerHeartbeatsTable;
}
