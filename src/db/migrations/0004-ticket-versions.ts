import type { Kysely } from 'kysely';

/**
 * Ticket versions (docs/api.md, "Tickets"): 1 at creation, one more per change that changes
 * something. Tickets that exist already start at 1: no event of theirs carried a version yet.
 */
export const ticketVersions = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('tickets').addColumn('version', 'integer', (c) => c.notNull().defaultTo(1)).execute();
  },
};
