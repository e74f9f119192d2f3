/**
 * The ticket resource (docs/api.md, "Tickets") and the events a change to it makes
 * (docs/api.md, "Events and payloads").
 */
import type { TicketEventType } from '../events/event-types.js';
import type { FilterSubject } from '../events/filter-document.js';

export const TICKET_STATUSES = ['open', 'pending', 'on_hold', 'resolved', 'closed'] as const;
export const TICKET_PRIORITIES = ['low', 'normal', 'high', 'urgent'] as const;

export type TicketStatus = (typeof TICKET_STATUSES)[number];
export type TicketPriority = (typeof TICKET_PRIORITIES)[number];
export type CustomFieldValue = string | number | boolean | null;

export interface Ticket {
  id: string;
  subject: string;
  description: string;
  status: TicketStatus;
  priority: TicketPriority;
  assigneeId: string | null;
  requesterEmail: string | null;
  tags: string[];
  customFields: Record<string, CustomFieldValue>;
  /**
   * 1 at creation, one more per committed change that changes something; the events of one
   * change carry it, so that a receiver can drop stale events and notice gaps.
   */
  version: number;
  createdAt: string;
  updatedAt: string;
}

/** The fields a client may set; `updatedFields` lists them in this order. */
export const EDITABLE_FIELDS = [
  'subject',
  'description',
  'status',
  'priority',
  'assigneeId',
  'requesterEmail',
  'tags',
  'customFields',
] as const;

export type EditableField = (typeof EDITABLE_FIELDS)[number];

export interface TicketPatch {
  subject?: string;
  description?: string;
  status?: TicketStatus;
  priority?: TicketPriority;
  assigneeId?: string | null;
  requesterEmail?: string | null;
  tags?: string[];
  /** Merged key by key; a key set to null is removed. */
  customFields?: Record<string, CustomFieldValue>;
}

export interface FieldChange {
  from: unknown;
  to: unknown;
}

/** An event of a ticket change, before it is recorded (its time is the change's). */
export interface PendingEvent {
  type: TicketEventType;
  ticketId: string;
  ticketVersion: number;
  data: Record<string, unknown>;
  /** What webhook filters see: the whole ticket after the change, and the change. */
  subject: FilterSubject;
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Applies a patch; custom fields merge key by key and a null removes the key. */
export function applyPatch(ticket: Ticket, patch: TicketPatch, updatedAt: string): Ticket {
  const next: Ticket = { ...ticket, tags: [...ticket.tags], customFields: { ...ticket.customFields } };
  for (const field of EDITABLE_FIELDS) {
    if (patch[field] === undefined || field === 'customFields') continue;
    (next as unknown as Record<string, unknown>)[field] = patch[field];
  }
  if (patch.customFields !== undefined) {
    for (const [key, value] of Object.entries(patch.customFields)) {
      if (value === null) delete next.customFields[key];
      else next.customFields[key] = value;
    }
  }
  const changed = EDITABLE_FIELDS.some((field) => !sameJson(ticket[field], next[field]));
  return changed ? { ...next, version: ticket.version + 1, updatedAt } : ticket;
}

/** Only the custom field keys that changed; a missing key is shown as null on its side. */
function customFieldsChange(before: Ticket['customFields'], after: Ticket['customFields']): FieldChange | null {
  const from: Record<string, CustomFieldValue> = {};
  const to: Record<string, CustomFieldValue> = {};
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  for (const key of keys) {
    // Stored custom fields never hold null (null removes a key), so null means missing. Own
    // keys only: a missing "toString" or "constructor" must read as null, not as the inherited
    // function (which JSON drops, so the event would lose the key).
    const a = Object.hasOwn(before, key) ? before[key]! : null;
    const b = Object.hasOwn(after, key) ? after[key]! : null;
    if (!sameJson(a, b)) {
      from[key] = a;
      to[key] = b;
    }
  }
  return Object.keys(from).length > 0 ? { from, to } : null;
}

export function changedFields(before: Ticket, after: Ticket): Partial<Record<EditableField, FieldChange>> {
  const changes: Partial<Record<EditableField, FieldChange>> = {};
  for (const field of EDITABLE_FIELDS) {
    if (field === 'customFields') {
      const change = customFieldsChange(before.customFields, after.customFields);
      if (change) changes.customFields = change;
    } else if (!sameJson(before[field], after[field])) {
      changes[field] = { from: before[field], to: after[field] };
    }
  }
  return changes;
}

/** The events of one update, in the documented order (docs/api.md); none when nothing changed. */
export function eventsForUpdate(before: Ticket, after: Ticket): PendingEvent[] {
  const updatedFields = changedFields(before, after);
  if (Object.keys(updatedFields).length === 0) return [];
  const subject = { ticket: after, changes: updatedFields };
  const events: PendingEvent[] = [
    { type: 'ticket.updated', ticketId: after.id, ticketVersion: after.version, data: { ticket: { id: after.id, version: after.version, updatedFields } }, subject },
  ];
  if (updatedFields.assigneeId) {
    events.push({
      type: 'ticket.assignment.changed',
      ticketId: after.id,
      ticketVersion: after.version,
      data: { ticket: after, assignment: { from: before.assigneeId, to: after.assigneeId } },
      subject,
    });
  }
  if (updatedFields.status && after.status === 'resolved') {
    events.push({ type: 'ticket.resolved', ticketId: after.id, ticketVersion: after.version, data: { ticket: after }, subject });
  }
  return events;
}

/** A closed ticket is final: only its tags may change. */
export function closedTicketViolation(before: Ticket, after: Ticket): EditableField | null {
  if (before.status !== 'closed') return null;
  const changes = changedFields(before, after);
  const field = EDITABLE_FIELDS.find((f) => f !== 'tags' && changes[f] !== undefined);
  return field ?? null;
}
