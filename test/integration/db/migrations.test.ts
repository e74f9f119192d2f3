/**
 * The upgrade path, on both databases: a database left by an earlier release, with rows in it,
 * migrated to the latest schema keeps its rows and fills what the new columns derive from them.
 */
import { sql } from 'kysely';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { parseDatabaseUrl } from '../../../src/config.js';
import { openDatabase, type DatabaseHandle } from '../../../src/db/connection.js';
import { migrateToLatest, migrateUpTo } from '../../../src/db/migrate.js';
import { createTestDatabase, type TestDatabase } from '../../helpers/databases.js';
import { describeEachDialect } from '../../helpers/dialects.js';

describeEachDialect('migrations', (dialect) => {
  let database: TestDatabase;
  let handle: DatabaseHandle;

  beforeEach(async () => {
    database = await createTestDatabase(dialect);
    handle = openDatabase(parseDatabaseUrl(database.url));
  });
  afterEach(async () => {
    await handle.close();
    await database.drop();
  });

  it('0007 gives the events of a ticket the version their payload carries, and none to the others', async () => {
    expect(await migrateUpTo(handle.db, handle.capabilities, '0006-expedited-deliveries')).toContain('0006-expedited-deliveries');
    const at = '2026-12-01T10:00:00.000Z';
    const event = (id: string, ticketId: string | null, data: unknown) => ({ id, type: ticketId === null ? 'webhook.test' : 'ticket.updated', ticket_id: ticketId, payload: JSON.stringify({ event: 'x', timestamp: at, data }), created_at: at });
    // Written before 0007: no ticket_version column yet, so through the table as it was then.
    for (const row of [
      event('evt_v7', 'tkt_1', { ticket: { id: 'tkt_1', version: 7, updatedFields: {} } }),
      event('evt_v1', 'tkt_2', { ticket: { id: 'tkt_2', version: 1, subject: 'x' } }),
      // An event written before versions existed carries none.
      event('evt_old', 'tkt_3', { ticket: { id: 'tkt_3', subject: 'x' } }),
      event('evt_test', null, { webhook: { id: 'whk_1', name: 'w' } }),
    ]) {
      await sql`insert into events (id, type, ticket_id, payload, created_at) values (${row.id}, ${row.type}, ${row.ticket_id}, ${row.payload}, ${row.created_at})`.execute(handle.db);
    }

    expect(await migrateToLatest(handle.db, handle.capabilities)).toContain('0007-event-ticket-versions');
    const rows = await handle.db.selectFrom('events').select(['id', 'ticket_version']).orderBy('id').execute();
    expect(rows.map((r) => ({ id: r.id, ticket_version: r.ticket_version === null ? null : Number(r.ticket_version) }))).toEqual([
      { id: 'evt_old', ticket_version: null },
      { id: 'evt_test', ticket_version: null },
      { id: 'evt_v1', ticket_version: 1 },
      { id: 'evt_v7', ticket_version: 7 },
    ]);
    // Nothing is left to apply.
    expect(await migrateToLatest(handle.db, handle.capabilities)).toEqual([]);
  });
});
