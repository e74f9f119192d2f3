/**
 * Which secret keys the database's sealed values may be under: the guard that keeps a process
 * from running with keys that cannot open them, through a rotation (docs/security.md, "Secret
 * keys and rotation").
 *
 * The settings row `secret_key_id` holds the ids of every key a value may be sealed under,
 * comma-separated. Three rules keep it a superset of the keys in use:
 * - A process registers its sealing key there before it seals anything, and refuses to start when
 *   the row names a key it does not hold.
 * - Every transaction that writes a sealed value confirms, in that transaction, that its key is
 *   still named, holding the ids' lock shared (PostgreSQL; SQLite runs its writers one at a time).
 *   It does so first, before any row lock: the reseal's last step holds the lock exclusively and
 *   then updates rows, so a transaction holding one of those rows while it waits would deadlock.
 * - Only a finished reseal narrows the row to its one key, holding that lock exclusively, after
 *   moving, in the same transaction, whatever is still under another key.
 * So a server still running with only the old key while a reseal finishes either committed its
 * value before that last sweep (which moves it) or finds its key gone and fails the write: no
 * value can be left under a key the row does not name.
 *
 * The row keeps its name from when it held one id: a version before rotation reads a list as a
 * key it does not have and refuses to start, which is the safe answer for it.
 */
import type { Capabilities } from '../db/capabilities.js';
import type { Db } from '../db/connection.js';
import { LOCK_NAMESPACES, lockNames } from '../db/named-locks.js';
import { readSetting, writeSetting } from '../db/settings.js';
import { inTransaction } from '../db/transaction.js';
import { AppError } from '../errors.js';

const KEY_IDS_SETTING = 'secret_key_id';
const LOCK_NAME = [KEY_IDS_SETTING];

/** The ids of a process's keys, the one it seals with first. */
export interface KeyRing {
  readonly keyId: string;
  readonly keyIds: readonly string[];
}

function parseKeyIds(value: string | undefined): string[] {
  return value === undefined || value === '' ? [] : value.split(',');
}

/** The ids the database's values may be sealed under; none on a database that never sealed. */
export async function recordedKeyIds(db: Db): Promise<string[]> {
  return parseKeyIds(await readSetting(db, KEY_IDS_SETTING));
}

/**
 * At start: refuses keys that cannot open every value the database may hold, and records the
 * sealing key so that nothing it seals is ever unknown to the guard.
 */
export async function registerSealingKey(db: Db, capabilities: Capabilities, keys: KeyRing): Promise<void> {
  await inTransaction(db, async (trx) => {
    await lockNames(trx, capabilities, LOCK_NAMESPACES.secretKeys, LOCK_NAME);
    const recorded = await recordedKeyIds(trx);
    const missing = recorded.filter((id) => !keys.keyIds.includes(id));
    if (missing.length > 0) {
      const held = `${keys.keyIds.length === 1 ? 'key' : 'keys'} ${keys.keyIds.join(', ')}`;
      const unfinished = recorded.length > 1 ? ' A rotation is under way: until "helpdesk reseal" has finished, every process needs the new key and the old one.' : '';
      throw AppError.config(
        `the secret key (HELPDESK_SECRET_KEY or the key file: ${held}) cannot open every value this database may hold: some may be sealed under key ${missing.join(' and ')}, which it lacks.${unfinished} ` +
          'List every key the database uses, the new one first (docs/configuration.md, "Rotating the secret key")',
      );
    }
    if (!recorded.includes(keys.keyId)) await writeSetting(trx, KEY_IDS_SETTING, [...recorded, keys.keyId].join(','));
  });
}

/**
 * In a transaction about to write a sealed value: fails it when a reseal has since moved every
 * value to another key and retired this process's sealing key, which a restart with the new key
 * first in HELPDESK_SECRET_KEY mends.
 */
export async function confirmSealingKey(trx: Db, capabilities: Capabilities, keys: KeyRing): Promise<void> {
  await lockNames(trx, capabilities, LOCK_NAMESPACES.secretKeys, LOCK_NAME, 'shared');
  const recorded = await recordedKeyIds(trx);
  if (!recorded.includes(keys.keyId)) {
    throw new Error(
      `this process seals with secret key ${keys.keyId}, which "helpdesk reseal" has retired since it started (the database's values are all under key ${recorded.join(', ')}): restart it with that key first in HELPDESK_SECRET_KEY`,
    );
  }
}

/**
 * The last step of a reseal: `sweep` moves what is left under other keys, under the exclusive
 * lock (so no sealing transaction is between its write and its commit, and none can start) and
 * returns what it could not move; if nothing, the sealing key alone is recorded.
 */
export async function retireOtherKeys(db: Db, capabilities: Capabilities, keys: KeyRing, sweep: (trx: Db) => Promise<number>): Promise<void> {
  await inTransaction(db, async (trx) => {
    await lockNames(trx, capabilities, LOCK_NAMESPACES.secretKeys, LOCK_NAME);
    const left = await sweep(trx);
    if (left > 0) throw new Error(`${left} sealed values are still under another key than ${keys.keyId}: the other keys stay recorded`);
    await writeSetting(trx, KEY_IDS_SETTING, keys.keyId);
  });
}
