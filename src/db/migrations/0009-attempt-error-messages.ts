import type { Kysely } from 'kysely';

/**
 * What the network said when an attempt got no answer (`connect ECONNREFUSED ...`, `certificate
 * has expired`), beside its error kind: the kind says what to look at, the message what is wrong
 * there (docs/api.md, `GET /webhooks/:id/deliveries/:deliveryId`). Attempts made before have none.
 */
export const attemptErrorMessages = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable('attempts').addColumn('error_message', 'text').execute();
  },
};
