/**
 * Secrets at rest. The database holds each webhook's signing secrets (and the stored answers of
 * Idempotency-Keys, which may carry one) sealed with AES-256-GCM under the server's secret key
 * (HELPDESK_SECRET_KEY, or a key file generated on first start), so a copy of the database, a
 * backup or a read-only SQL injection yields no secret that could forge a delivery. The key never enters the database; only its id does, so that a process
 * started with another key refuses to run instead of signing with secrets it cannot read.
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { decodeSecretKey, SECRET_KEY_BYTES, type SecretKeySource } from '../config.js';
import type { Db } from '../db/connection.js';
import { insertSettingIfAbsent, readSetting } from '../db/settings.js';
import { AppError } from '../errors.js';

const SEALED_PREFIX = 'hdsec1';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_ID_SETTING = 'secret_key_id';

export class SecretBox {
  /** Names the key without revealing it: an HMAC of a fixed label, 64 bits. */
  readonly keyId: string;
  readonly #key: Buffer;

  constructor(key: Buffer) {
    if (key.length !== SECRET_KEY_BYTES) throw new Error(`a secret key has ${SECRET_KEY_BYTES} bytes, not ${key.length}`);
    this.#key = Buffer.from(key);
    this.keyId = createHmac('sha256', this.#key).update('helpdesk secret key id').digest('hex').slice(0, 16);
  }

  /**
   * A keyed digest of `text` (HMAC-SHA256 under a key derived from the secret key for `purpose`),
   * for what must be compared later but never read back: unlike a plain hash, it cannot be
   * tested against guesses by whoever reads the database without the key.
   */
  digest(text: string, purpose: string): string {
    const subkey = createHmac('sha256', this.#key).update(`helpdesk digest ${purpose}`).digest();
    return createHmac('sha256', subkey).update(text).digest('hex');
  }

  static isSealed(value: string): boolean {
    return value.startsWith(`${SEALED_PREFIX}:`);
  }

  /**
   * `context` (the webhook's id) is authenticated with the text: a sealed secret copied onto
   * another webhook's row does not open there.
   */
  seal(plain: string, context: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    cipher.setAAD(Buffer.from(context, 'utf8'));
    const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return `${SEALED_PREFIX}:${this.keyId}:${Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64')}`;
  }

  open(sealed: string, context: string): string {
    const [prefix, keyId, payload] = sealed.split(':');
    if (prefix !== SEALED_PREFIX || payload === undefined) throw new Error('not a sealed secret');
    if (keyId !== this.keyId) throw new Error(`a secret sealed with key ${keyId} cannot be opened with key ${this.keyId}`);
    const bytes = Buffer.from(payload, 'base64');
    const decipher = createDecipheriv('aes-256-gcm', this.#key, bytes.subarray(0, IV_BYTES));
    decipher.setAAD(Buffer.from(context, 'utf8'));
    decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
    return Buffer.concat([decipher.update(bytes.subarray(IV_BYTES, bytes.length - TAG_BYTES)), decipher.final()]).toString('utf8');
  }
}

function readKeyFile(path: string): Buffer | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  const key = decodeSecretKey(text);
  if (!key) throw AppError.config(`the secret key file ${path} must hold 32 bytes as base64 or hex`);
  return key;
}

/**
 * Writes a new key where none is, readable by its owner only. It is written aside and linked
 * into place, so two processes starting together on one host end up with the same key: the
 * link of the second fails, and it reads the first one's.
 */
function generateKeyFile(path: string): Buffer {
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
 * The box for this database: the configured key, or the key file's, or, on a database that has
 * never held a sealed secret, a key generated into the file. The database records the key's id
 * on first use; a later start with another key is refused. (Secrets that a version before
 * sealing wrote in clear are sealed by their owner: WebhooksService.sealSecretsInClear.)
 */
export async function openSecretBox(db: Db, source: SecretKeySource, logger: Logger): Promise<SecretBox> {
  const recordedKeyId = await readSetting(db, KEY_ID_SETTING);
  let key = source.kind === 'value' ? source.key : readKeyFile(source.path);
  if (!key && source.kind === 'file') {
    if (recordedKeyId !== undefined) {
      throw AppError.config(
        `the secret key file ${source.path} is missing, and this database's signing secrets are sealed with key ${recordedKeyId}: restore the file or set HELPDESK_SECRET_KEY`,
      );
    }
    key = generateKeyFile(source.path);
    logger.warn({ file: source.path }, 'HELPDESK_SECRET_KEY is not set: a secret key was generated into this file; back it up, the signing secrets cannot be read without it');
  }
  const box = new SecretBox(key!);
  const keyId = recordedKeyId ?? (await insertSettingIfAbsent(db, KEY_ID_SETTING, box.keyId));
  if (keyId !== box.keyId) {
    throw AppError.config(
      `the secret key (id ${box.keyId}) is not the one this database's signing secrets are sealed with (id ${keyId}): set HELPDESK_SECRET_KEY or the key file to the original key`,
    );
  }
  return box;
}
