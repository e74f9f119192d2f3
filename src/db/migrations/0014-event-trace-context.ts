import type { Kysely } from 'kysely';

/**
 * The trace an event belongs to (docs/deployment.md, "Tracing"): the W3C traceparent of the span
 * of the transaction that made it, so that each attempt of its deliveries, hours later or from
 * another process, joins that trace. Null for an event made while tracing was off, and for the
 * events made before.
 */
export const eventTraceContext = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('events').addColumn('traceparent', 'text').execute();
  },
};
