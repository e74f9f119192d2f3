/**
 * Identity: users, API keys, and who a request is. Keys are random, shown once, stored as
 * SHA-256 hashes (a key has 256 bits of entropy, so a fast hash is enough), compared in
 * constant time.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Db } from '../db/connection.js';
import { readSetting, writeSetting } from '../db/settings.js';
import { AppError } from '../errors.js';
import { newId } from '../shared/ids.js';
import { toPage, type Page, type PageRequest } from '../shared/pagination.js';
import { type Clock, toIso } from '../shared/time.js';
import * as apiKeys from './api-keys.repository.js';
import * as users from './users.repository.js';
import type { Principal, Role } from '../shared/principal.js';


/** The key id of HELPDESK_ADMIN_TOKEN, which is not stored as a key. */
export const BOOTSTRAP_KEY_ID = 'bootstrap';

export interface User {
  id: string;
  name: string;
  email: string;
  role: Role;
  createdAt: string;
  updatedAt: string;
}

export interface ApiKey {
  id: string;
  name: string;
  userId: string;
  createdAt: string;
}

const BOOTSTRAP_USER_SETTING = 'bootstrap_admin_user_id';
/** Fixed, so that two servers bootstrapping one empty database at once collide on the unique index. */
const BOOTSTRAP_ADMIN_EMAIL = 'admin@helpdesk.invalid';
const EMAIL_PATTERN = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

function hashKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

function constantTimeEqual(a: string, b: string): boolean {
  const left = createHash('sha256').update(a).digest();
  const right = createHash('sha256').update(b).digest();
  return timingSafeEqual(left, right);
}

export function isEmail(value: string): boolean {
  return value.length <= 254 && EMAIL_PATTERN.test(value);
}

function presentUser(row: users.UserRow): User {
  return { id: row.id, name: row.name, email: row.email, role: row.role, createdAt: row.created_at, updatedAt: row.updated_at };
}

function presentApiKey(row: apiKeys.ApiKeyRow): ApiKey {
  return { id: row.id, name: row.name, userId: row.user_id, createdAt: row.created_at };
}

export class AuthService {
  /**
   * The token's user, read once. Bootstrap writes it once, and again only if that user's row
   * has gone, which no API can do (users are never deleted); a process started before such a
   * repair by hand keeps the old id until it restarts.
   */
  #adminTokenUserId: string | undefined;

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly adminToken: string | null,
  ) {}

  /** Who holds this bearer key, or null. */
  async authenticate(key: string): Promise<Principal | null> {
    if (this.adminToken !== null && constantTimeEqual(key, this.adminToken)) {
      this.#adminTokenUserId ??= await readSetting(this.db, BOOTSTRAP_USER_SETTING);
      if (this.#adminTokenUserId) return { userId: this.#adminTokenUserId, role: 'admin', keyId: BOOTSTRAP_KEY_ID };
    }
    const hash = hashKey(key);
    const owner = await apiKeys.findKeyOwnerByHash(this.db, hash);
    if (!owner || !constantTimeEqual(owner.keyHash, hash)) return null;
    return { userId: owner.user.id, role: owner.user.role, keyId: owner.keyId };
  }

  /**
   * First start: with HELPDESK_ADMIN_TOKEN, make sure its user exists; without it, on an empty
   * database, create an admin and a key, and return the key so the caller can print it once.
   */
  async bootstrap(): Promise<{ printedKey: string | null }> {
    try {
      return await this.bootstrapOnce();
    } catch (error) {
      // Two servers starting together on an empty database: the unique email (or settings key)
      // lets one win; the other finds the work done and carries on.
      if (await this.isBootstrapped()) return { printedKey: null };
      throw error;
    }
  }

  private async isBootstrapped(): Promise<boolean> {
    if (this.adminToken !== null) {
      const userId = await readSetting(this.db, BOOTSTRAP_USER_SETTING);
      return userId !== undefined && (await users.findUserById(this.db, userId)) !== undefined;
    }
    return (await users.countUsers(this.db)) > 0;
  }

  private async bootstrapOnce(): Promise<{ printedKey: string | null }> {
    return this.db.transaction().execute(async (trx) => {
      const service = new AuthService(trx, this.clock, this.adminToken);
      if (this.adminToken !== null) {
        const existing = await readSetting(trx, BOOTSTRAP_USER_SETTING);
        if (existing && (await users.findUserById(trx, existing))) return { printedKey: null };
        // The first start's admin, if there was one before the token was set, is the token's user.
        const user =
          (await users.findUserByEmail(trx, BOOTSTRAP_ADMIN_EMAIL)) ?? (await service.insertUserRow('Administrator', BOOTSTRAP_ADMIN_EMAIL, 'admin'));
        await writeSetting(trx, BOOTSTRAP_USER_SETTING, user.id);
        return { printedKey: null };
      }
      if ((await users.countUsers(trx)) > 0) return { printedKey: null };
      const user = await service.insertUserRow('Administrator', BOOTSTRAP_ADMIN_EMAIL, 'admin');
      const { key } = await service.insertKeyRow('bootstrap', user.id);
      return { printedKey: key };
    });
  }

  async createUser(input: { name: string; email: string; role: Role }): Promise<User> {
    const details = [];
    if (input.name.trim().length === 0 || input.name.length > 200) details.push({ path: 'user.name', message: 'must be 1 to 200 characters' });
    if (!isEmail(input.email)) details.push({ path: 'user.email', message: 'must be an email address' });
    if (details.length > 0) throw AppError.validation(details);
    if (await users.findUserByEmail(this.db, input.email)) throw AppError.conflict('A user with this email already exists.');
    try {
      return presentUser(await this.insertUserRow(input.name, input.email, input.role));
    } catch (error) {
      // Two concurrent creates with one email: the unique index decides.
      if (await users.findUserByEmail(this.db, input.email)) {
        throw new AppError('conflict', 'A user with this email already exists.', undefined, { cause: error });
      }
      throw error;
    }
  }

  async getUser(id: string): Promise<User> {
    const row = await users.findUserById(this.db, id);
    if (!row) throw AppError.notFound('User');
    return presentUser(row);
  }

  async listUsers(page: PageRequest): Promise<Page<User>> {
    return toPage((await users.listUsers(this.db, page.cursor, page.limit)).map(presentUser), page.limit);
  }

  async createApiKey(input: { name: string; userId: string }): Promise<ApiKey & { key: string }> {
    if (input.name.trim().length === 0 || input.name.length > 200) throw AppError.invalidField('apiKey.name', 'must be 1 to 200 characters');
    if (!(await users.findUserById(this.db, input.userId))) throw AppError.invalidField('apiKey.userId', 'is not a known user');
    const { row, key } = await this.insertKeyRow(input.name, input.userId);
    return { ...presentApiKey(row), key };
  }

  async listApiKeys(page: PageRequest): Promise<Page<ApiKey>> {
    return toPage((await apiKeys.listApiKeys(this.db, page.cursor, page.limit)).map(presentApiKey), page.limit);
  }

  async deleteApiKey(id: string): Promise<void> {
    if (!(await apiKeys.deleteApiKey(this.db, id))) throw AppError.notFound('API key');
  }

  private async insertUserRow(name: string, email: string, role: Role): Promise<users.UserRow> {
    const now = toIso(this.clock.now());
    const row: users.UserRow = { id: newId('usr'), name, email, email_normalized: email.toLowerCase(), role, created_at: now, updated_at: now };
    await users.insertUser(this.db, row);
    return row;
  }

  private async insertKeyRow(name: string, userId: string): Promise<{ row: apiKeys.ApiKeyRow; key: string }> {
    const key = `hdk_${randomBytes(32).toString('base64url')}`;
    const row: apiKeys.ApiKeyRow = { id: newId('key'), name, user_id: userId, key_hash: hashKey(key), created_at: toIso(this.clock.now()) };
    await apiKeys.insertApiKey(this.db, row);
    return { row, key };
  }
}
