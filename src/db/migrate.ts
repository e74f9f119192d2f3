import { DEFAULT_MIGRATION_TABLE, Migrator, type Kysely, type Migration, type MigrationProvider } from 'kysely';
import type { Capabilities } from './capabilities.js';
import { initialSchema } from './migrations/0001-initial.js';
import { webhookDueIndex } from './migrations/0002-webhook-due-index.js';
import { idempotencyKeys } from './migrations/0003-idempotency-keys.js';
import { ticketVersions } from './migrations/0004-ticket-versions.js';
import { perTicketOrder } from './migrations/0005-per-ticket-order.js';
import { expeditedDeliveries } from './migrations/0006-expedited-deliveries.js';
import { eventTicketVersions } from './migrations/0007-event-ticket-versions.js';
import { heldInTicketPendingIndex } from './migrations/0008-held-in-ticket-pending-index.js';
import { attemptErrorMessages } from './migrations/0009-attempt-error-messages.js';
import { webhookFiltersHeadersRateLimits } from './migrations/0010-webhook-filters-headers-rate-limits.js';
import { eventFeed } from './migrations/0011-event-feed.js';
import { feedPositionsForTicketEvents } from './migrations/0012-feed-positions-for-ticket-events.js';
import { jobLeases } from './migrations/0013-job-leases.js';
import { eventTraceContext } from './migrations/0014-event-trace-context.js';
import { webhookAttemptedIndex } from './migrations/0015-webhook-attempted-index.js';
import { workerHeartbeats } from './migrations/0016-worker-heartbeats.js';

/** Numbered, forward-only migrations; names sort in the order they run. */
function migrations(capabilities: Capabilities): Record<string, Migration> {
  return {
    '0001-initial': initialSchema(capabilities),
    '0002-webhook-due-index': webhookDueIndex,
    '0003-idempotency-keys': idempotencyKeys,
    '0004-ticket-versions': ticketVersions,
    '0005-per-ticket-order': perTicketOrder,
    '0006-expedited-deliveries': expeditedDeliveries,
    '0007-event-ticket-versions': eventTicketVersions(capabilities),
    '0008-held-in-ticket-pending-index': heldInTicketPendingIndex,
    '0009-attempt-error-messages': attemptErrorMessages,
    '0010-webhook-filters-headers-rate-limits': webhookFiltersHeadersRateLimits,
    '0011-event-feed': eventFeed(capabilities),
    '0012-feed-positions-for-ticket-events': feedPositionsForTicketEvents(capabilities),
    '0013-job-leases': jobLeases,
    '0014-event-trace-context': eventTraceContext,
    '0015-webhook-attempted-index': webhookAttemptedIndex,
    '0016-worker-heartbeats': workerHeartbeats,
  };
}

/** The name of the last migration this release has (the database is at it once migrated). */
export function latestMigrationName(capabilities: Capabilities): string {
  return Object.keys(migrations(capabilities)).sort().at(-1)!;
}

class InCodeMigrationProvider implements MigrationProvider {
  constructor(private readonly capabilities: Capabilities) {}
  async getMigrations(): Promise<Record<string, Migration>> {
    return migrations(this.capabilities);
  }
}

/** Applies pending migrations. Kysely's migrator holds a lock, so concurrent starts are safe. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the migrator works on any schema
export async function migrateToLatest(db: Kysely<any>, capabilities: Capabilities): Promise<string[]> {
  if (await atLatest(db, capabilities)) return [];
  return migrateUpTo(db, capabilities, null);
}

/**
 * Whether the database has run exactly this release's migrations, in one query: then a start
 * has nothing to apply, and skips the migrator's table checks and lock (a few queries, tens of
 * milliseconds on PostgreSQL; docs/deployment.md, "Start-up"). Anything else (no table yet, a
 * migration missing or unknown to this release, an error) is left to the migrator to apply or
 * to refuse, as before.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the migrator works on any schema
async function atLatest(db: Kysely<any>, capabilities: Capabilities): Promise<boolean> {
  let applied: string[];
  try {
    applied = (await db.selectFrom(DEFAULT_MIGRATION_TABLE).select('name').execute()).map((row: { name: string }) => row.name).sort();
  } catch {
    return false;
  }
  const expected = Object.keys(migrations(capabilities)).sort();
  return applied.length === expected.length && applied.every((name, i) => name === expected[i]);
}

/**
 * Applies pending migrations up to and including `name` (null: all of them), as an older
 * release would have left the database; the upgrade path's tests start from there.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the migrator works on any schema
export async function migrateUpTo(db: Kysely<any>, capabilities: Capabilities, name: string | null): Promise<string[]> {
  const migrator = new Migrator({ db, provider: new InCodeMigrationProvider(capabilities) });
  const { error, results } = name === null ? await migrator.migrateToLatest() : await migrator.migrateTo(name);
  if (error) throw new Error('database migration failed', { cause: error });
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
