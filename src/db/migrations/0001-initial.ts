import { sql, type Kysely } from 'kysely';
import type { Capabilities } from '../capabilities.js';

export function initialSchema(capabilities: Capabilities) {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('users')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('email', 'text', (c) => c.notNull())
        .addColumn('email_normalized', 'text', (c) => c.notNull().unique())
        .addColumn('role', 'text', (c) => c.notNull().check(sql`role in ('admin', 'agent')`))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('users_created_idx').on('users').columns(['created_at', 'id']).execute();

      await db.schema
        .createTable('api_keys')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('key_hash', 'text', (c) => c.notNull().unique())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('tickets')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('subject', 'text', (c) => c.notNull())
        .addColumn('description', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('priority', 'text', (c) => c.notNull())
        .addColumn('assignee_id', 'text', (c) => c.references('users.id'))
        .addColumn('requester_email', 'text')
        .addColumn('tags', 'text', (c) => c.notNull())
        .addColumn('custom_fields', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('tickets_created_idx').on('tickets').columns(['created_at', 'id']).execute();
      await db.schema.createIndex('tickets_status_idx').on('tickets').columns(['status', 'created_at']).execute();
      await db.schema.createIndex('tickets_assignee_idx').on('tickets').columns(['assignee_id', 'created_at']).execute();

      await db.schema
        .createTable('webhooks')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('target_url', 'text', (c) => c.notNull())
        .addColumn('events', 'text', (c) => c.notNull())
        .addColumn('active', 'integer', (c) => c.notNull().check(sql`active in (0, 1)`))
        .addColumn('signing_secret', 'text', (c) => c.notNull())
        .addColumn('disabled_reason', 'text')
        .addColumn('disabled_at', 'text')
        // The first failed attempt since the last success: five days of failures disable it.
        .addColumn('failing_since', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('webhooks_created_idx').on('webhooks').columns(['created_at', 'id']).execute();

      // Secrets replaced by a rotation, still honoured (signed with) until they expire.
      await db.schema
        .createTable('webhook_secrets')
        .addColumn('webhook_id', 'text', (c) => c.notNull().references('webhooks.id').onDelete('cascade'))
        .addColumn('secret', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('webhook_secrets_webhook_idx').on('webhook_secrets').columns(['webhook_id', 'expires_at']).execute();

      await db.schema
        .createTable('events')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('ticket_id', 'text')
        .addColumn('payload', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('deliveries')
        .addColumn('seq', capabilities.serialPrimaryKeyType, (c) =>
          capabilities.serialNeedsAutoIncrement ? c.primaryKey().autoIncrement() : c.primaryKey(),
        )
        .addColumn('id', 'text', (c) => c.notNull().unique())
        .addColumn('webhook_id', 'text', (c) => c.notNull().references('webhooks.id').onDelete('cascade'))
        .addColumn('event_id', 'text', (c) => c.notNull().references('events.id'))
        .addColumn('event_type', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('pending', 'succeeded', 'failed')`))
        .addColumn('attempt_count', 'integer', (c) => c.notNull())
        // Attempts in the current retry schedule (recovery starts a fresh one; redelivery of a
        // finished delivery is outside any schedule).
        .addColumn('schedule_attempts', 'integer', (c) => c.notNull())
        .addColumn('next_attempt_at', 'text')
        .addColumn('lease_expires_at', 'text')
        .addColumn('leased_by', 'text')
        .addColumn('last_attempt_at', 'text')
        .addColumn('last_status_code', 'integer')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      // The claim query: deliveries with an attempt to make, by due time, in queue order.
      await db.schema.createIndex('deliveries_due_idx').on('deliveries').columns(['next_attempt_at', 'seq']).execute();
      // The delivery log of one webhook, newest first; and retention by age.
      await db.schema.createIndex('deliveries_webhook_idx').on('deliveries').columns(['webhook_id', 'created_at', 'id']).execute();
      await db.schema.createIndex('deliveries_created_idx').on('deliveries').columns(['created_at']).execute();
      // Retention's orphan check and the foreign key check of each event deleted.
      await db.schema.createIndex('deliveries_event_idx').on('deliveries').columns(['event_id']).execute();

      await db.schema
        .createTable('attempts')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('delivery_id', 'text', (c) => c.notNull().references('deliveries.id').onDelete('cascade'))
        .addColumn('attempted_at', 'text', (c) => c.notNull())
        .addColumn('status_code', 'integer')
        .addColumn('duration_ms', 'integer', (c) => c.notNull())
        .addColumn('error', 'text')
        .addColumn('response_headers', 'text')
        .addColumn('response_body', 'text')
        .execute();
      await db.schema.createIndex('attempts_delivery_idx').on('attempts').columns(['delivery_id', 'attempted_at']).execute();

      await db.schema
        .createTable('settings')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .execute();
    },
  };
}
