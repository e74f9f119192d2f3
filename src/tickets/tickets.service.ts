import type { Logger } from 'pino';
import type { Capabilities } from '../db/capabilities.js';
import type { Db } from '../db/connection.js';
import { inTransaction } from '../db/transaction.js';
import { GroupCommit } from '../db/group-commit.js';
import type { Outbox } from '../delivery/outbox.js';
import type { DeliveryWakeup } from '../delivery/wakeup.js';
import type { EventsCommittedListener } from '../events/event-stream.js';
import { AppError, type ErrorDetail } from '../errors.js';
import { isEmail } from '../auth/auth.service.js';
import { findUserById } from '../auth/users.repository.js';
import { storeResponses, type StoredResponse } from '../idempotency/idempotency.repository.js';
import type { IdempotencyClaim, IdempotencyService } from '../idempotency/idempotency.service.js';
import { newId } from '../shared/ids.js';
import { toPage, type Page, type PageRequest } from '../shared/pagination.js';
import { type Clock, nextChangeTime, toIso } from '../shared/time.js';
import { inTransactionSpans, TRACING_OFF, type Traceparent, type Tracing } from '../tracing/tracing.js';
import * as repository from './tickets.repository.js';
import {
  applyPatch,
  closedTicketViolation,
  eventsForUpdate,
  type CustomFieldValue,
  type Ticket,
  type TicketPatch,
  type TicketPriority,
  type TicketStatus,
} from './ticket.js';

export interface NewTicket {
  subject: string;
  description?: string;
  status?: TicketStatus;
  priority?: TicketPriority;
  assigneeId?: string | null;
  requesterEmail?: string | null;
  tags?: string[];
  customFields?: Record<string, CustomFieldValue> | null;
}

function withoutNulls(fields: Record<string, CustomFieldValue>): Record<string, CustomFieldValue> {
  return Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== null));
}

/** A ticket to create, and the response to store for its Idempotency-Key, if it came with one. */
interface Creation {
  ticket: Ticket;
  idempotentResponse: StoredResponse | null;
  /** The span of the request that creates it, when traced. */
  traceparent: Traceparent | null;
}

/** Most tickets created in one transaction. */
const MAX_CREATIONS_PER_COMMIT = 256;

export class TicketsService {
  /**
   * Creations are group-committed: the tickets created in one turn of the event loop, or while
   * the previous group is being written, go in together, each table in one INSERT, with one read
   * of the subscriptions and one commit, so that the fixed cost of a transaction is paid once
   * per group instead of once per request (docs/benchmarks.md).
   */
  readonly #creations: GroupCommit<Creation, boolean>;

  constructor(
    private readonly db: Db,
    private readonly capabilities: Capabilities,
    private readonly clock: Clock,
    private readonly outbox: Outbox,
    private readonly wakeup: DeliveryWakeup,
    private readonly idempotency: IdempotencyService,
    logger: Logger,
    private readonly committed: EventsCommittedListener = { eventsCommitted: () => undefined },
    private readonly tracing: Tracing = TRACING_OFF,
  ) {
    this.#creations = new GroupCommit({
      name: 'ticket creation',
      db,
      logger,
      maxBatch: MAX_CREATIONS_PER_COMMIT,
      gatherMs: 0,
      traced: { tracing, change: 'ticket.create', parentOf: (creation) => creation.traceparent },
      write: async (trx, creations, traceparents) => {
        const tickets = creations.map((creation) => creation.ticket);
        const responses = creations.flatMap((creation) => (creation.idempotentResponse ? [creation.idempotentResponse] : []));
        // Before any lock is taken, as every transaction that seals does (secrets/sealing-keys.ts).
        if (responses.length > 0) await idempotency.confirmSealingKey(trx);
        await repository.insertTickets(trx, capabilities, tickets);
        // In the ticket's own transaction: a retry after a crash right after the commit replays
        // the creation instead of making a second ticket (and a second round of events).
        await storeResponses(trx, responses);
        const events = tickets.map((ticket, i) => ({
          type: 'ticket.created' as const,
          ticketId: ticket.id,
          ticketVersion: ticket.version,
          data: { ticket },
          at: ticket.createdAt,
          subject: { ticket, changes: {} },
          traceparent: traceparents[i] ?? null,
        }));
        const queued = await outbox.record(trx, events);
        // Per ticket, whether deliveries were queued (the same subscriptions for every one):
        // each caller then wakes the worker, and the wake-ups of one group coalesce.
        return tickets.map(() => queued > 0);
      },
    });
  }

  /** `traceparent`: the span of the request that asks, which the change's trace continues. */
  async create(input: NewTicket, idempotency: IdempotencyClaim | null = null, traceparent: Traceparent | null = null): Promise<Ticket> {
    await this.checkReferences(this.db, input);
    const now = toIso(this.clock.now());
    const ticket: Ticket = {
      id: newId('tkt'),
      subject: input.subject,
      description: input.description ?? '',
      status: input.status ?? 'open',
      priority: input.priority ?? 'normal',
      assigneeId: input.assigneeId ?? null,
      requesterEmail: input.requesterEmail ?? null,
      tags: input.tags ?? [],
      customFields: withoutNulls(input.customFields ?? {}),
      version: 1,
      createdAt: now,
      updatedAt: now,
    };
    // The response the route sends, stored for the key (the route adds nothing to it).
    const idempotentResponse = idempotency ? this.idempotency.sealedResponse(idempotency, 201, JSON.stringify({ ticket })) : null;
    if (await this.#creations.submit({ ticket, idempotentResponse, traceparent })) this.wakeup.notify();
    this.committed.eventsCommitted();
    return ticket;
  }

  /** Writes the creations gathered now and waits for those under way (shutdown). */
  settled(): Promise<void> {
    return this.#creations.settled();
  }

  async get(id: string): Promise<Ticket> {
    const ticket = await repository.findTicket(this.db, id);
    if (!ticket) throw AppError.notFound('Ticket');
    return ticket;
  }

  async list(filter: repository.TicketFilter, page: PageRequest): Promise<Page<Ticket>> {
    return toPage(await repository.listTickets(this.db, filter, page.cursor, page.limit), page.limit);
  }

  async update(id: string, patch: TicketPatch, traceparent: Traceparent | null = null): Promise<Ticket> {
    const { ticket, queued, changed } = await this.#traced('ticket.update', traceparent, (spans) => inTransaction(this.db, async (trx) => {
      const before = await repository.findTicketForChange(trx, this.capabilities, id);
      if (!before) throw AppError.notFound('Ticket');
      await this.checkReferences(trx, patch);
      const now = nextChangeTime(this.clock, before.updatedAt);
      const after = applyPatch(before, patch, now);
      const violation = closedTicketViolation(before, after);
      if (violation) throw AppError.conflict(`The ticket is closed: only its tags may change (not ${violation}).`);
      if (after === before) return { ticket: before, queued: 0, changed: false };
      await repository.updateTicket(trx, after);
      const events = eventsForUpdate(before, after).map((event) => ({ ...event, at: now, traceparent: spans[0] ?? null }));
      return { ticket: after, queued: await this.outbox.record(trx, events), changed: true };
    }));
    if (queued > 0) this.wakeup.notify();
    if (changed) this.committed.eventsCommitted();
    return ticket;
  }

  async delete(id: string, traceparent: Traceparent | null = null): Promise<void> {
    const queued = await this.#traced('ticket.delete', traceparent, (spans) => inTransaction(this.db, async (trx) => {
      const ticket = await repository.findTicketForChange(trx, this.capabilities, id);
      if (!ticket) throw AppError.notFound('Ticket');
      const now = nextChangeTime(this.clock, ticket.updatedAt);
      // The version the deletion would have made: a receiver sees it as the ticket's next change.
      const deleted = { ...ticket, version: ticket.version + 1 };
      const count = await this.outbox.record(trx, [
        { type: 'ticket.deleted', ticketId: id, ticketVersion: deleted.version, data: { ticket: deleted }, at: now, subject: { ticket: deleted, changes: {} }, traceparent: spans[0] ?? null },
      ]);
      await repository.deleteTicket(trx, id);
      return count;
    }));
    if (queued > 0) this.wakeup.notify();
    this.committed.eventsCommitted();
  }

  /** A change's transaction in its span, when traced: `spans[0]` is then the span its events continue. */
  #traced<T>(change: string, traceparent: Traceparent | null, run: (spans: readonly (Traceparent | null)[]) => Promise<T>): Promise<T> {
    return inTransactionSpans(this.tracing, change, [traceparent], run);
  }

  /** Rules the request schema cannot express: a known assignee, a real email address. */
  private async checkReferences(db: Db, input: { assigneeId?: string | null; requesterEmail?: string | null }): Promise<void> {
    const details: ErrorDetail[] = [];
    if (input.requesterEmail != null && !isEmail(input.requesterEmail)) {
      details.push({ path: 'ticket.requesterEmail', message: 'must be an email address or null' });
    }
    if (input.assigneeId != null && !(await findUserById(db, input.assigneeId))) {
      details.push({ path: 'ticket.assigneeId', message: 'is not a known user' });
    }
    if (details.length > 0) throw AppError.validation(details);
  }
}
