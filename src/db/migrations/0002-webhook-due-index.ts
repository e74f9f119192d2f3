import type { Kysely } from 'kysely';

/**
 * The due deliveries of one webhook, in claim order. A claim that must leave out the webhooks of
 * saturated hosts reads each other webhook's first due rows through this index, instead of
 * walking the whole due queue past the left-out webhooks' rows, a cost that grew with the
 * saturated webhooks' backlog (docs/benchmarks.md, the backlog scenario).
 */
export const webhookDueIndex = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.createIndex('deliveries_webhook_due_idx').on('deliveries').columns(['webhook_id', 'next_attempt_at', 'seq']).execute();
  },
};
