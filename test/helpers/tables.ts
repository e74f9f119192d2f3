/** Every table of the schema: what suites that check "nothing changed" or "nothing in clear" read. */
export const ALL_TABLES = ['users', 'api_keys', 'tickets', 'webhooks', 'webhook_secrets', 'webhook_send_slots', 'events', 'deliveries', 'attempts', 'settings', 'idempotency_keys'] as const;
