import type { Kysely } from 'kysely';

/**
 * A webhook's `filter`, `headers` and `rateLimit` (docs/api.md, "Filters", "Custom headers",
 * "Rate limits"), and what they need beside them:
 * - `webhooks.filter`: the query as the admin gave it (JSON text), null for none;
 * - `webhooks.headers`: a JSON object of header name to value sealed like a signing secret;
 * - `webhooks.rate_limit`: deliveries per second, null for none;
 * - `events.filter_context`: the part of an event's filter document its payload does not carry
 *   (the whole ticket after an update, and the update's changes), so that a filter can be tried
 *   on past events; null where the payload carries it all (creations, deletions, the test event);
 * - `webhook_send_slots`: when each rate-limited webhook may next be sent to, shared by every
 *   worker process. A table of its own: updating the webhook's row would wait for the share
 *   locks that every ticket change takes on the subscriptions it fans out to.
 */
export const webhookFiltersHeadersRateLimits = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('webhooks').addColumn('filter', 'text').execute();
    await db.schema.alterTable('webhooks').addColumn('headers', 'text', (c) => c.notNull().defaultTo('{}')).execute();
    await db.schema.alterTable('webhooks').addColumn('rate_limit', 'integer').execute();
    await db.schema.alterTable('events').addColumn('filter_context', 'text').execute();
    await db.schema
      .createTable('webhook_send_slots')
      .addColumn('webhook_id', 'text', (c) => c.primaryKey().references('webhooks.id').onDelete('cascade'))
      // Milliseconds since the epoch, fractional: at 10,000 a second a slot is a tenth of one.
      .addColumn('next_slot_at', 'double precision', (c) => c.notNull())
      .execute();
  },
};
