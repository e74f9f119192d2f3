import type { Kysely } from 'kysely';

/**
 * Leases on jobs that one process at a time must run, whichever processes share the database
 * (retention: docs/deployment.md, "Retention"). One row per job, made by its first taker: who
 * holds it and until when. It is taken and renewed by compare-and-set on those two columns.
 */
export const jobLeases = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema
      .createTable('job_leases')
      .addColumn('name', 'text', (c) => c.primaryKey())
      .addColumn('holder', 'text', (c) => c.notNull())
      .addColumn('expires_at', 'text', (c) => c.notNull())
      .execute();
  },
};
