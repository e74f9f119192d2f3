import type { Kysely } from 'kysely';

/**
 * The deliveries of one webhook by when they were last attempted. A webhook's activity over the
 * last hours (docs/api.md, "Activity") reads only the deliveries attempted in that window through
 * it, then their attempts through attempts_delivery_idx: without it, the query walked every
 * delivery the webhook kept (a busy webhook's retention's worth) or every webhook's attempts of
 * the window. The webhook's last delivery in its stats is found through it too.
 */
export const webhookAttemptedIndex = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.createIndex('deliveries_webhook_attempted_idx').on('deliveries').columns(['webhook_id', 'last_attempt_at']).execute();
  },
};
