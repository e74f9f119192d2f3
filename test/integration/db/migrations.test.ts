/**
 * The upgrade path, on both databases: a database left by an earlier release, with rows in it,
 * migrated to the latest schema keeps its rows and fills what the new columns derive from them.
 */
import { sql } from 'kysely';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { parseDatabaseUrl } from '../../../src/config.js';
import { openDatabase, type DatabaseHandle } from '../../../src/db/connection.js';
import { migrateToLatest, migrateUpTo } from '../../../src/db/migrate.js';
import { attemptActivity } from '../../../src/delivery/delivery-log.repository.js';
import { insertEvents, latestPosition, positionOf, sequenceEvents } from '../../../src/events/events.repository.js';
import { reclaimStaleWorkers, registerWorker } from '../../../src/delivery/worker-liveness.repository.js';
import { takeJobLease } from '../../../src/retention/job-leases.repository.js';
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

  it('0012 takes back the positions of events of no ticket, and neither the insert nor the sequencer gives them one', async () => {
    await migrateUpTo(handle.db, handle.capabilities, '0011-event-feed');
    const at = '2026-12-01T10:00:00.000Z';
    // As 0011 left them: every event numbered, the test event too.
    await sql`insert into events (id, type, ticket_id, ticket_version, payload, feed_position, created_at) values ('evt_1', 'ticket.created', 'tkt_1', 1, '{}', 1, ${at})`.execute(handle.db);
    await sql`insert into events (id, type, ticket_id, ticket_version, payload, feed_position, created_at) values ('evt_2', 'webhook.test', null, null, '{}', 2, ${at})`.execute(handle.db);

    expect(await migrateToLatest(handle.db, handle.capabilities)).toContain('0012-feed-positions-for-ticket-events');
    const positions = async () =>
      Object.fromEntries((await handle.db.selectFrom('events').select(['id', 'feed_position']).execute()).map((r) => [r.id, r.feed_position === null ? null : Number(r.feed_position)]));
    expect(await positions()).toEqual({ evt_1: 1, evt_2: null });

    // More operational events than the sequencer numbers in one pass, made before a ticket event:
    // they take no position, and the ticket event is numbered behind none of them.
    const operational = Array.from({ length: 2_001 }, (_, i) => ({
      id: `evt_3_${String(i).padStart(5, '0')}`,
      type: 'delivery.failed',
      ticket_id: null,
      ticket_version: null,
      payload: '{}',
      filter_context: null, traceparent: null,
      created_at: at,
    }));
    await insertEvents(handle.db, handle.capabilities, operational);
    await insertEvents(handle.db, handle.capabilities, [{ id: 'evt_4', type: 'ticket.updated', ticket_id: 'tkt_1', ticket_version: 2, payload: '{}', filter_context: null, traceparent: null, created_at: at }]);
    await sequenceEvents(handle.db, handle.capabilities);
    const after = await positions();
    expect(after.evt_4).toBe(2);
    expect(Object.entries(after).filter(([id, position]) => id.startsWith('evt_3_') && position !== null)).toEqual([]);
    expect(await latestPosition(handle.db)).toBe(2);
  });

  it('0013 adds the job leases on a database of the previous release, its rows kept', async () => {
    await migrateUpTo(handle.db, handle.capabilities, '0011-event-feed');
    await sql`insert into events (id, type, ticket_id, ticket_version, payload, created_at, feed_position) values ('evt_kept', 'ticket.created', 'tkt_1', 1, '{}', '2026-12-01T10:00:00.000Z', 1)`.execute(handle.db);

    expect(await migrateToLatest(handle.db, handle.capabilities)).toContain('0013-job-leases');
    expect(await handle.db.selectFrom('events').select('id').execute()).toEqual([{ id: 'evt_kept' }]);
    expect(await takeJobLease(handle.db, 'retention', 'a', '2026-12-01T10:00:00.000Z', '2026-12-01T10:20:00.000Z')).toBe(true);
    expect(await handle.db.selectFrom('job_leases').selectAll().execute()).toEqual([{ name: 'retention', holder: 'a', expires_at: '2026-12-01T10:20:00.000Z' }]);
    expect(await migrateToLatest(handle.db, handle.capabilities)).toEqual([]);
  });

  it('0015 indexes the deliveries of a webhook by their last attempt, and the activity of the deliveries made before counts', async () => {
    await migrateUpTo(handle.db, handle.capabilities, '0011-event-feed');
    const at = '2026-12-01T10:07:00.000Z';
    await sql`insert into webhooks (id, name, target_url, events, active, signing_secret, created_at, updated_at) values ('whk_1', 'w', 'https://example.com/hook', '["ticket.created"]', 1, 'sealed', ${at}, ${at})`.execute(handle.db);
    await sql`insert into events (id, type, ticket_id, payload, created_at) values ('evt_1', 'ticket.created', 'tkt_1', '{}', ${at})`.execute(handle.db);
    await sql`insert into deliveries (id, webhook_id, event_id, event_type, ticket_id, status, attempt_count, schedule_attempts, last_attempt_at, created_at, updated_at)
      values ('msg_1', 'whk_1', 'evt_1', 'ticket.created', 'tkt_1', 'failed', 2, 2, ${at}, ${at}, ${at})`.execute(handle.db);
    await sql`insert into attempts (id, delivery_id, attempted_at, status_code, duration_ms, error) values ('att_1', 'msg_1', '2026-12-01T10:06:00.000Z', 500, 120, 'http_status'), ('att_2', 'msg_1', ${at}, 503, 80, 'http_status')`.execute(handle.db);

    expect(await migrateToLatest(handle.db, handle.capabilities)).toContain('0015-webhook-attempted-index');
    const indexes = dialect === 'sqlite'
      ? await sql<{ name: string }>`select name from sqlite_master where type = 'index' and tbl_name = 'deliveries'`.execute(handle.db)
      : await sql<{ name: string }>`select indexname as name from pg_indexes where tablename = 'deliveries'`.execute(handle.db);
    expect(indexes.rows.map((row) => row.name)).toContain('deliveries_webhook_attempted_idx');
    const rows = await attemptActivity(handle.db, handle.capabilities, ['whk_1'], { from: '2026-12-01T10:00:00.000Z', to: '2026-12-01T11:00:00.000Z', intervalMinutes: 15 }, false);
    expect(rows.map((row) => ({ day: row.day, slot: Number(row.slot), total: Number(row.total), succeeded: Number(row.succeeded) }))).toEqual([{ day: '2026-12-01', slot: 40, total: 2, succeeded: 0 }]);
    expect(await migrateToLatest(handle.db, handle.capabilities)).toEqual([]);
  });

  it('0016 adds the workers’ liveness rows and indexes the leased deliveries, the leases taken before it kept', async () => {
    await migrateUpTo(handle.db, handle.capabilities, '0015-webhook-attempted-index');
    const at = '2026-12-01T10:07:00.000Z';
    await sql`insert into webhooks (id, name, target_url, events, active, signing_secret, created_at, updated_at) values ('whk_1', 'w', 'https://example.com/hook', '["ticket.created"]', 1, 'sealed', ${at}, ${at})`.execute(handle.db);
    await sql`insert into events (id, type, ticket_id, payload, created_at) values ('evt_1', 'ticket.created', 'tkt_1', '{}', ${at})`.execute(handle.db);
    await sql`insert into deliveries (id, webhook_id, event_id, event_type, ticket_id, status, attempt_count, schedule_attempts, next_attempt_at, leased_by, lease_expires_at, created_at, updated_at)
      values ('msg_1', 'whk_1', 'evt_1', 'ticket.created', 'tkt_1', 'pending', 0, 0, ${at}, 'wrk_old', '2026-12-01T10:08:00.000Z', ${at}, ${at})`.execute(handle.db);

    expect(await migrateToLatest(handle.db, handle.capabilities)).toContain('0016-worker-heartbeats');
    const indexes = dialect === 'sqlite'
      ? await sql<{ name: string }>`select name from sqlite_master where type = 'index' and tbl_name = 'deliveries'`.execute(handle.db)
      : await sql<{ name: string }>`select indexname as name from pg_indexes where tablename = 'deliveries'`.execute(handle.db);
    expect(indexes.rows.map((row) => row.name)).toContain('deliveries_leased_idx');
    // A worker of the previous release has no row: its lease is not released, it expires as before.
    await registerWorker(handle.db, { worker_id: 'wrk_new', host: 'h', pid: 1, version: '0.1.0', started_at: at, heartbeat_at: at });
    expect(await reclaimStaleWorkers(handle.db, '2026-12-01T10:09:00.000Z')).toEqual({ workers: ['wrk_new'], deliveries: 0 });
    expect(await handle.db.selectFrom('deliveries').select(['leased_by', 'lease_expires_at']).execute()).toEqual([{ leased_by: 'wrk_old', lease_expires_at: '2026-12-01T10:08:00.000Z' }]);
    expect(await migrateToLatest(handle.db, handle.capabilities)).toEqual([]);
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
