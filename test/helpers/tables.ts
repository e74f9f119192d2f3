/** Every table of the schema: what suites that check "nothing changed" or "nothing in clear" read. */
export const ALL_TABLES = ['users', 'api_keys', 'tickets', 'webhooks', 'webhook_secrets', 'events', 'deliveries', 'attempts', 'settings', 'idempotency_keys'] as const;
