import type { Capabilities } from '../db/capabilities.js';
import { insertRows, type ColumnsOf } from '../db/bound-rows.js';
import type { Db } from '../db/connection.js';
import type { TicketsTable } from '../db/schema.js';
import { pageNewestFirst } from '../db/keyset.js';
import type { Cursor } from '../shared/pagination.js';
import type { Ticket } from './ticket.js';

function toRow(ticket: Ticket): TicketsTable {
  return {
    id: ticket.id,
    subject: ticket.subject,
    description: ticket.description,
    status: ticket.status,
    priority: ticket.priority,
    assignee_id: ticket.assigneeId,
    requester_email: ticket.requesterEmail,
    tags: JSON.stringify(ticket.tags),
    custom_fields: JSON.stringify(ticket.customFields),
    version: ticket.version,
    created_at: ticket.createdAt,
    updated_at: ticket.updatedAt,
  };
}

function fromRow(row: TicketsTable): Ticket {
  return {
    id: row.id,
    subject: row.subject,
    description: row.description,
    status: row.status as Ticket['status'],
    priority: row.priority as Ticket['priority'],
    assigneeId: row.assignee_id,
    requesterEmail: row.requester_email,
    tags: JSON.parse(row.tags) as string[],
    customFields: JSON.parse(row.custom_fields) as Ticket['customFields'],
    version: Number(row.version),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

const TICKET_COLUMNS = {
  id: 'text',
  subject: 'text',
  description: 'text',
  status: 'text',
  priority: 'text',
  assignee_id: 'text',
  requester_email: 'text',
  tags: 'text',
  custom_fields: 'text',
  version: 'integer',
  created_at: 'text',
  updated_at: 'text',
} as const satisfies ColumnsOf<TicketsTable>;

/** A group of new tickets in one statement (group commit). */
export async function insertTickets(db: Db, capabilities: Capabilities, tickets: readonly Ticket[]): Promise<void> {
  await insertRows(db, capabilities, 'tickets', TICKET_COLUMNS, tickets.map(toRow));
}

/**
 * Reads a ticket for a read-modify-write (the custom field merge, the closed check, the events'
 * "from" values, the deleted ticket), holding its row lock until the transaction ends, so that a
 * concurrent change is neither lost nor recorded twice.
 */
export async function findTicketForChange(db: Db, capabilities: Capabilities, id: string): Promise<Ticket | undefined> {
  let query = db.selectFrom('tickets').selectAll().where('id', '=', id);
  if (capabilities.rowLocks) query = query.forUpdate();
  const row = await query.executeTakeFirst();
  return row ? fromRow(row) : undefined;
}

export async function findTicket(db: Db, id: string): Promise<Ticket | undefined> {
  const row = await db.selectFrom('tickets').selectAll().where('id', '=', id).executeTakeFirst();
  return row ? fromRow(row) : undefined;
}

export async function updateTicket(db: Db, ticket: Ticket): Promise<void> {
  const { id, created_at: _createdAt, ...changes } = toRow(ticket);
  await db.updateTable('tickets').set(changes).where('id', '=', id).execute();
}

export async function deleteTicket(db: Db, id: string): Promise<void> {
  await db.deleteFrom('tickets').where('id', '=', id).execute();
}

export interface TicketFilter {
  status?: string;
  /** A user id, or null for unassigned tickets. */
  assigneeId?: string | null;
}

export async function listTickets(db: Db, filter: TicketFilter, cursor: Cursor | null, limit: number): Promise<Ticket[]> {
  let query = db.selectFrom('tickets').selectAll();
  if (filter.status !== undefined) query = query.where('status', '=', filter.status);
  if (filter.assigneeId === null) query = query.where('assignee_id', 'is', null);
  else if (filter.assigneeId !== undefined) query = query.where('assignee_id', '=', filter.assigneeId);
  const rows = await pageNewestFirst(query, cursor, limit).execute();
  return rows.map(fromRow);
}
