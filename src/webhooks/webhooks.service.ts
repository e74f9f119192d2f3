import type { Capabilities } from '../db/capabilities.js';
import type { Db } from '../db/connection.js';
import { inTransaction } from '../db/transaction.js';
import { failPendingDeliveries, listRecentTicketEvents } from '../delivery/deliveries.repository.js';
import { recordedFilterDocument, type FilterDocument } from '../events/filter-document.js';
import { AppError, type ErrorDetail } from '../errors.js';
import { TICKET_EVENT_TYPES, type SubscribableEventType, type TicketEventType } from '../events/event-types.js';
import type { TargetAddressPolicy } from '../outbound/address-policy.js';
import { newId } from '../shared/ids.js';
import { toPage, type Page, type PageRequest } from '../shared/pagination.js';
import { type Clock, nextChangeTime, toIso } from '../shared/time.js';
import {
  MAX_LIVE_SECRETS,
  newSigningSecret,
  presentWebhook,
  targetUrlProblem,
  type Webhook,
  type WebhookRecord,
} from './webhook.js';
import type { SecretBox } from '../secrets/secret-box.js';
import { confirmSealingKey } from '../secrets/sealing-keys.js';
import { compileFilter, filterProblems, type WebhookFilter } from './webhook-filter.js';
import { headerProblems, openHeaders, resolveMaskedValues, sealHeaders, type HeaderSet } from './webhook-headers.js';
import * as repository from './webhooks.repository.js';

/** How many past events a filter is tried on. */
export const FILTER_PREVIEW_EVENTS = 20;

/** A past event, the document a filter sees of it, and whether a webhook would have got it. */
export interface FilterPreview {
  id: string;
  type: string;
  ticketId: string;
  ticketVersion: number | null;
  createdAt: string;
  document: FilterDocument;
  matched: boolean;
}

export interface WebhookInput {
  name?: string;
  targetUrl?: string;
  events?: SubscribableEventType[];
  active?: boolean;
  filter?: WebhookFilter | null;
  /** Clear values, or the mask to keep a stored one (on update). */
  headers?: HeaderSet;
  rateLimit?: number | null;
}

function sameHeaders(a: HeaderSet, b: HeaderSet): boolean {
  return JSON.stringify(Object.entries(a)) === JSON.stringify(Object.entries(b));
}

export class WebhooksService {
  constructor(
    private readonly db: Db,
    private readonly capabilities: Capabilities,
    private readonly clock: Clock,
    private readonly addressPolicy: TargetAddressPolicy,
    private readonly secrets: SecretBox,
  ) {}

  async create(input: Required<Pick<WebhookInput, 'name' | 'targetUrl' | 'events'>> & WebhookInput): Promise<Webhook & { signingSecret: string }> {
    this.validate(input, {});
    const now = toIso(this.clock.now());
    const id = newId('whk');
    const signingSecret = newSigningSecret();
    const record: WebhookRecord = {
      id,
      name: input.name,
      targetUrl: input.targetUrl,
      events: input.events,
      active: input.active ?? true,
      filter: input.filter ?? null,
      sealedHeaders: sealHeaders(this.secrets, id, input.headers ?? {}),
      rateLimit: input.rateLimit ?? null,
      sealedSigningSecret: this.secrets.seal(signingSecret, id),
      disabledReason: null,
      disabledAt: null,
      failingSince: null,
      createdAt: now,
      updatedAt: now,
    };
    await inTransaction(this.db, async (trx) => {
      await this.confirmSealingKey(trx);
      await repository.insertWebhook(trx, record);
    });
    // The creation response carries the secret, this once.
    return { ...presentWebhook(record), signingSecret };
  }

  async get(id: string): Promise<Webhook> {
    return presentWebhook(await this.find(this.db, id));
  }

  async list(page: PageRequest): Promise<Page<Webhook>> {
    return toPage((await repository.listWebhooks(this.db, page.cursor, page.limit)).map(presentWebhook), page.limit);
  }

  /** Partial update. Deactivating fails the pending deliveries so that none is attempted again. */
  async update(id: string, input: WebhookInput): Promise<Webhook> {
    return inTransaction(this.db, async (trx) => {
      await this.confirmSealingKey(trx);
      const before = await repository.findWebhookForChange(trx, this.capabilities, id);
      if (!before) throw AppError.notFound('Webhook');
      const storedHeaders = openHeaders(this.secrets, id, before.sealedHeaders);
      this.validate(input, storedHeaders);
      // A whole new set; the mask keeps a stored value, and an unchanged set keeps its sealed text.
      const headers = input.headers === undefined ? storedHeaders : resolveMaskedValues(input.headers, storedHeaders);
      const headersChanged = !sameHeaders(headers, storedHeaders);
      const after: WebhookRecord = {
        ...before,
        name: input.name ?? before.name,
        targetUrl: input.targetUrl ?? before.targetUrl,
        events: input.events ?? before.events,
        active: input.active ?? before.active,
        filter: input.filter === undefined ? before.filter : input.filter,
        sealedHeaders: headersChanged ? sealHeaders(this.secrets, id, headers) : before.sealedHeaders,
        rateLimit: input.rateLimit === undefined ? before.rateLimit : input.rateLimit,
      };
      if (input.active === true && !before.active) {
        // Reactivation clears an automatic deactivation and restarts the five-day count.
        after.disabledReason = null;
        after.disabledAt = null;
        after.failingSince = null;
      }
      const changed = headersChanged || JSON.stringify(presentWebhook(after)) !== JSON.stringify(presentWebhook(before));
      if (!changed) return presentWebhook(before);
      const now = nextChangeTime(this.clock, before.updatedAt);
      after.updatedAt = now;
      await repository.updateWebhook(trx, after);
      if (before.active && !after.active) await failPendingDeliveries(trx, id, now);
      return presentWebhook(after);
    });
  }

  /**
   * A new current secret. The current one stays valid (every delivery is signed with both) for
   * `expireCurrentInSeconds`; older live ones keep their own expiry. At most
   * MAX_LIVE_SECRETS are live: past that, the ones closest to expiry go.
   */
  async rotateSecret(id: string, expireCurrentInSeconds = 86_400): Promise<Webhook & { signingSecret: string }> {
    return inTransaction(this.db, async (trx) => {
      await this.confirmSealingKey(trx);
      const before = await repository.findWebhookForChange(trx, this.capabilities, id);
      if (!before) throw AppError.notFound('Webhook');
      const nowMs = this.clock.now();
      const now = nextChangeTime(this.clock, before.updatedAt);
      if (expireCurrentInSeconds > 0) {
        await repository.insertPreviousSecret(trx, {
          webhook_id: id,
          secret: before.sealedSigningSecret,
          expires_at: toIso(nowMs + expireCurrentInSeconds * 1000),
          created_at: now,
        });
      }
      await repository.prunePreviousSecrets(trx, id, toIso(nowMs), MAX_LIVE_SECRETS - 1);
      const signingSecret = newSigningSecret();
      const after: WebhookRecord = { ...before, sealedSigningSecret: this.secrets.seal(signingSecret, id), updatedAt: now };
      await repository.updateWebhook(trx, after);
      return { ...presentWebhook(after), signingSecret };
    });
  }

  /**
   * Tries a filter (and, if given, a set of event types) on the latest ticket events still
   * kept, without saving anything: which of them would have made a delivery.
   */
  async previewFilter(filter: WebhookFilter | null, events: readonly SubscribableEventType[] | undefined): Promise<FilterPreview[]> {
    if (filter !== null) {
      const problems = filterProblems(filter, 'filter');
      if (problems.length > 0) throw AppError.validation(problems);
    }
    const matches = filter === null ? () => true : compileFilter(filter);
    // Ids begin with the millisecond they were made in, so the events of one change (and a
    // change pushed a millisecond ahead of the clock) need their own order: newest change first,
    // and within one, the last made first.
    const rows = (await listRecentTicketEvents(this.db, FILTER_PREVIEW_EVENTS)).sort(
      (a, b) => b.created_at.localeCompare(a.created_at) || TICKET_EVENT_TYPES.indexOf(b.type as TicketEventType) - TICKET_EVENT_TYPES.indexOf(a.type as TicketEventType) || b.id.localeCompare(a.id),
    );
    return rows.map((row) => {
      const document = recordedFilterDocument(row.type, row.payload, row.filter_context);
      const subscribed = events === undefined || events.includes(row.type as SubscribableEventType);
      return { id: row.id, type: row.type, ticketId: row.ticket_id!, ticketVersion: row.ticket_version, createdAt: row.created_at, document, matched: subscribed && matches(document) };
    });
  }

  /** Seals the secrets a version before sealing stored in clear (at start); returns how many. */
  sealSecretsInClear(): Promise<number> {
    return inTransaction(this.db, async (trx) => {
      await this.confirmSealingKey(trx);
      return repository.sealSecretsInClear(trx, this.secrets);
    });
  }

  /** Deleting a webhook deletes its deliveries (foreign key cascade). */
  async delete(id: string): Promise<void> {
    if (!(await repository.deleteWebhook(this.db, id))) throw AppError.notFound('Webhook');
  }

  /**
   * First in a transaction that may seal (sealing-keys.ts), before any row lock: a reseal's last
   * transaction holds the keys' lock and then updates webhook rows, so a change that locked its
   * row first and then waited for that lock would deadlock with it.
   */
  private confirmSealingKey(trx: Db): Promise<void> {
    return confirmSealingKey(trx, this.capabilities, this.secrets);
  }

  private async find(db: Db, id: string): Promise<WebhookRecord> {
    const webhook = await repository.findWebhook(db, id);
    if (!webhook) throw AppError.notFound('Webhook');
    return webhook;
  }

  /** Rules beyond the request schema's types; `storedHeaders` are those the mask may keep. */
  private validate(input: WebhookInput, storedHeaders: HeaderSet): void {
    const details: ErrorDetail[] = [];
    if (input.name !== undefined && input.name.trim().length === 0) {
      details.push({ path: 'webhook.name', message: 'must not be blank' });
    }
    if (input.targetUrl !== undefined) {
      const problem = targetUrlProblem(input.targetUrl, this.addressPolicy);
      if (problem) details.push({ path: 'webhook.targetUrl', message: problem });
    }
    if (input.events !== undefined && new Set(input.events).size !== input.events.length) {
      details.push({ path: 'webhook.events', message: 'must not repeat an event type' });
    }
    if (input.filter != null) details.push(...filterProblems(input.filter, 'webhook.filter'));
    if (input.headers !== undefined) details.push(...headerProblems(input.headers, 'webhook.headers', storedHeaders));
    if (details.length > 0) throw AppError.validation(details);
  }
}
