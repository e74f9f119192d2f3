/**
 * Secrets at rest. The database holds each webhook's signing secrets (and the stored answers of
 * Idempotency-Keys, which may carry one) sealed with AES-256-GCM under the server's secret key
 * (HELPDESK_SECRET_KEY, or a key file generated on first start), so a copy of the database, a
 * backup or a read-only SQL injection yields no secret that could forge a delivery. The keys
 * never enter the database; only their ids do, so that a process started without a key the
 * database's values need refuses to run instead of signing with secrets it cannot read
 * (sealing-keys.ts). Several keys make a rotation: the first seals, every one opens, and
 * `helpdesk reseal` moves every value to the first (docs/security.md).
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { decodeSecretKeyList, SECRET_KEY_BYTES, type SecretKeySource } from '../config.js';
import type { Db } from '../db/connection.js';
import type { Capabilities } from '../db/capabilities.js';
import { AppError } from '../errors.js';
import { recordedKeyIds, registerSealingKey } from './sealing-keys.js';

/** What every sealed value begins with, before its key's id. */
export const SEALED_PREFIX = 'hdsec1';
const IV_BYTES = 12;
const TAG_BYTES = 16;

export class SecretBox {
  /** The id of the first key, the one that seals: an HMAC of a fixed label, 64 bits, revealing nothing of the key. */
  readonly keyId: string;
  /** The id of every key this box holds, the sealing one first. */
  readonly keyIds: readonly string[];
  /** Every key by its id, in the order given. */
  readonly #keys: ReadonlyMap<string, Buffer>;

  /** The first key seals; every key opens what was sealed under it. */
  constructor(keys: Buffer | readonly Buffer[]) {
    const list = Buffer.isBuffer(keys) ? [keys] : keys;
    if (list.length === 0) throw new Error('a secret box needs at least one key');
    const byId = new Map<string, Buffer>();
    for (const key of list) {
      if (key.length !== SECRET_KEY_BYTES) throw new Error(`a secret key has ${SECRET_KEY_BYTES} bytes, not ${key.length}`);
      byId.set(createHmac('sha256', key).update('helpdesk secret key id').digest('hex').slice(0, 16), Buffer.from(key));
    }
    this.#keys = byId;
    this.keyIds = Object.freeze([...byId.keys()]);
    this.keyId = this.keyIds[0]!;
  }

  /**
   * Keyed digests of `text` (HMAC-SHA256 under a key derived from each secret key for
   * `purpose`), the sealing key's first: what was digested under any key this box holds can be
   * recognised, so that a rotation does not orphan a digest made before it. Unlike a plain hash,
   * none can be tested against guesses by whoever reads the database without the key.
   */
  digests(text: string, purpose: string): string[] {
    return [...this.#keys.values()].map((key) => {
      const subkey = createHmac('sha256', key).update(`helpdesk digest ${purpose}`).digest();
      return createHmac('sha256', subkey).update(text).digest('hex');
    });
  }

  static isSealed(value: string): boolean {
    return value.startsWith(`${SEALED_PREFIX}:`);
  }

  /**
   * What every value sealed under this box's sealing key begins with: a reseal looks for the
   * values that do not (each domain's repository, in SQL).
   */
  get sealingPrefix(): string {
    return `${SEALED_PREFIX}:${this.keyId}:`;
  }

  /** True when `value` is sealed under the sealing key: a reseal leaves it as it is. */
  isSealedWithSealingKey(value: string): boolean {
    return value.startsWith(this.sealingPrefix);
  }

  /**
   * `context` (the webhook's id) is authenticated with the text: a sealed secret copied onto
   * another webhook's row does not open there.
   */
  seal(plain: string, context: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#keys.get(this.keyId)!, iv);
    cipher.setAAD(Buffer.from(context, 'utf8'));
    const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return `${this.sealingPrefix}${Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64')}`;
  }

  open(sealed: string, context: string): string {
    const [prefix, keyId, payload] = sealed.split(':');
    if (prefix !== SEALED_PREFIX || keyId === undefined || payload === undefined) throw new Error('not a sealed secret');
    const key = this.#keys.get(keyId);
    if (!key) throw new Error(`a secret sealed with key ${keyId} cannot be opened with key ${this.keyIds.join(' or ')}`);
    const bytes = Buffer.from(payload, 'base64');
    const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(0, IV_BYTES));
    decipher.setAAD(Buffer.from(context, 'utf8'));
    decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
    return Buffer.concat([decipher.update(bytes.subarray(IV_BYTES, bytes.length - TAG_BYTES)), decipher.final()]).toString('utf8');
  }

  /**
   * The value sealed under the sealing key: opened under the key it names and sealed again, or,
   * for a signing secret that a version before sealing stored in clear, sealed.
   */
  reseal(value: string, context: string): string {
    return this.seal(SecretBox.isSealed(value) ? this.open(value, context) : value, context);
  }
}

function readKeyFile(path: string): Buffer[] | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  return decodeSecretKeyList(text, `the secret key file ${path}`);
}

/**
 * Writes a new key where none is, readable by its owner only. It is written aside and linked
 * into place, so two processes starting together on one host end up with the same key: the
 * link of the second fails, and it reads the first one's.
 */
function generateKeyFile(path: string): Buffer[] {
  mkdirSync(dirname(path), { recursive: true });
  const aside = `${path}.${process.pid}.${randomBytes(4).toString('hex')}`;
  writeFileSync(aside, `${randomBytes(SECRET_KEY_BYTES).toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
  try {
    linkSync(aside, path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    unlinkSync(aside);
  }
  return readKeyFile(path)!;
}

/**
 * The box for this database: the configured keys, or the key file's, or, on a database that has
 * never held a sealed secret, a key generated into the file. Its sealing key is registered with
 * the database, and a start with keys that cannot open every value the database may hold is
 * refused (sealing-keys.ts). (Secrets that a version before sealing wrote in clear are sealed by
 * their owner: WebhooksService.sealSecretsInClear.)
 */
export async function openSecretBox(db: Db, capabilities: Capabilities, source: SecretKeySource, logger: Logger): Promise<SecretBox> {
  let keys = source.kind === 'value' ? source.keys : readKeyFile(source.path);
  if (!keys && source.kind === 'file') {
    const recorded = await recordedKeyIds(db);
    if (recorded.length > 0) {
      throw AppError.config(
        `the secret key file ${source.path} is missing, and this database's sealed values are under key ${recorded.join(' and ')}: restore the file or set HELPDESK_SECRET_KEY`,
      );
    }
    keys = generateKeyFile(source.path);
    logger.warn({ file: source.path }, 'HELPDESK_SECRET_KEY is not set: a secret key was generated into this file; back it up, the signing secrets cannot be read without it');
  }
  const box = new SecretBox(keys!);
  await registerSealingKey(db, capabilities, box);
  return box;
}
