/**
 * The upgrade path, on both databases: a database left by an earlier release, with rows in it,
 * migrated to the latest schema keeps its rows and fills what the new columns derive from them.
 */
import { sql } from 'kysely';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { parseDatabaseUrl } from '../../../src/config.js';
import { openDatabase, type DatabaseHandle } from '../../../src/db/connection.js';
import { migrateToLatest, migrateUpTo } from '../../../src/db/migrate.js';
import { insertEvents, positionOf, sequenceEvents } from '../../../src/events/events.repository.js';
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

  it('0011 numbers existing events in the order they were made, and new ones after them in commit order', async () => {
    await migrateUpTo(handle.db, handle.capabilities, '0010-webhook-filters-headers-rate-limits');
    const row = (id: string, type: string, at: string, version: number) =>
      sql`insert into events (id, type, ticket_id, ticket_version, payload, created_at) values (${id}, ${type}, 'tkt_1', ${version}, '{}', ${at})`.execute(handle.db);
    // Inserted out of order; one change's three events share a time and a version, and their ids
    // sort against the order the change made them in.
    await row('evt_c', 'ticket.resolved', '2026-12-01T10:00:01.000Z', 2);
    await row('evt_a', 'ticket.updated', '2026-12-01T10:00:01.000Z', 2);
    await row('evt_z', 'ticket.created', '2026-12-01T10:00:00.000Z', 1);
    await row('evt_b', 'ticket.assignment.changed', '2026-12-01T10:00:01.000Z', 2);
    await row('evt_0', 'ticket.deleted', '2026-12-01T10:00:02.000Z', 3);

    expect(await migrateToLatest(handle.db, handle.capabilities)).toContain('0011-event-feed');
    const numbered = await handle.db.selectFrom('events').select(['id', 'feed_position']).orderBy('feed_position').execute();
    expect(numbered.map((r) => [r.id, Number(r.feed_position)])).toEqual([
      ['evt_z', 1],
      ['evt_a', 2],
      ['evt_b', 3],
      ['evt_c', 4],
      ['evt_0', 5],
    ]);
    expect(await migrateToLatest(handle.db, handle.capabilities)).toEqual([]);
    // A new event comes after them: at insert on SQLite, from the sequencer on PostgreSQL.
    await insertEvents(handle.db, handle.capabilities, [{ id: 'evt_new', type: 'ticket.updated', ticket_id: 'tkt_1', ticket_version: 4, payload: '{}', filter_context: null, traceparent: null, created_at: '2026-12-01T10:00:03.000Z' }]);
    await sequenceEvents(handle.db, handle.capabilities);
    expect(await positionOf(handle.db, 'evt_new')).toBe(6);
  });

  it('0014 leaves the events made before it untraced, and keeps the trace of those made after', async () => {
    await migrateUpTo(handle.db, handle.capabilities, '0011-event-feed');
    await sql`insert into events (id, type, ticket_id, ticket_version, payload, created_at) values ('evt_before', 'ticket.created', 'tkt_1', 1, '{}', '2026-12-01T10:00:00.000Z')`.execute(handle.db);

    expect(await migrateToLatest(handle.db, handle.capabilities)).toContain('0014-event-trace-context');
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    await insertEvents(handle.db, handle.capabilities, [{ id: 'evt_after', type: 'ticket.updated', ticket_id: 'tkt_1', ticket_version: 2, payload: '{}', filter_context: null, traceparent, created_at: '2026-12-01T10:00:01.000Z' }]);
    const rows = await handle.db.selectFrom('events').select(['id', 'traceparent']).orderBy('id').execute();
    expect(rows).toEqual([
      { id: 'evt_after', traceparent },
      { id: 'evt_before', traceparent: null },
    ]);
    expect(await migrateToLatest(handle.db, handle.capabilities)).toEqual([]);
  });
});
