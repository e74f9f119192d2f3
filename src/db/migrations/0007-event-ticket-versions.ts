import { sql, type Kysely } from 'kysely';
import type { Capabilities } from '../capabilities.js';

/**
 * The ticket version an event carries (docs/api.md, "Versions"), kept beside its payload so that
 * the delivery log can list it without parsing a payload per row. Null for events of no ticket
 * (the test event). Events written since versions exist carry it in their payload; it is read
 * from there once, here.
 */
export function eventTicketVersions(capabilities: Capabilities) {
  const versionInPayload =
    capabilities.jsonbOperators
      ? sql`(payload::jsonb #>> '{data,ticket,version}')::integer`
      : sql`json_extract(payload, '$.data.ticket.version')`;
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema.alterTable('events').addColumn('ticket_version', 'integer').execute();
      await sql`update events set ticket_version = ${versionInPayload} where ticket_id is not null`.execute(db);
    },
  };
}
