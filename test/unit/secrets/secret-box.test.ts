import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decodeSecretKey, loadConfig } from '../../../src/config.js';
import { SecretBox } from '../../../src/secrets/secret-box.js';

const SECRET = `whsec_${randomBytes(32).toString('base64')}`;

describe('secret box', () => {
  const box = new SecretBox(randomBytes(32));

  it('opens what it sealed, and seals the same text differently each time', () => {
    const sealed = box.seal(SECRET, 'whk_1');
    expect(SecretBox.isSealed(sealed)).toBe(true);
    expect(sealed).not.toContain(SECRET.slice('whsec_'.length));
    expect(box.open(sealed, 'whk_1')).toBe(SECRET);
    expect(box.seal(SECRET, 'whk_1')).not.toBe(sealed);
  });

  it('refuses another webhook’s row, another key, and any changed byte', () => {
    const sealed = box.seal(SECRET, 'whk_1');
    expect(() => box.open(sealed, 'whk_2')).toThrow();
    expect(() => new SecretBox(randomBytes(32)).open(sealed, 'whk_1')).toThrow(/cannot be opened with key/);
    const [prefix, keyId, payload] = sealed.split(':');
    const bytes = Buffer.from(payload!, 'base64');
    for (const index of [0, 12, bytes.length - 1]) {
      const tampered = Buffer.from(bytes);
      tampered[index]! ^= 1;
      expect(() => box.open(`${prefix}:${keyId}:${tampered.toString('base64')}`, 'whk_1')).toThrow();
    }
    expect(() => box.open(SECRET, 'whk_1')).toThrow(/not a sealed secret/);
  });

  it('names its key by an id that does not reveal it', () => {
    const key = randomBytes(32);
    expect(new SecretBox(key).keyId).toBe(new SecretBox(Buffer.from(key)).keyId);
    expect(new SecretBox(key).keyId).toMatch(/^[0-9a-f]{16}$/);
    expect(key.toString('hex')).not.toContain(new SecretBox(key).keyId);
    expect(() => new SecretBox(randomBytes(16))).toThrow(/32 bytes/);
  });
});

describe('HELPDESK_SECRET_KEY', () => {
  const key = randomBytes(32);

  it('takes 32 bytes as base64 or hex', () => {
    expect(decodeSecretKey(key.toString('base64'))).toEqual(key);
    expect(decodeSecretKey(key.toString('hex'))).toEqual(key);
    expect(decodeSecretKey(`${key.toString('base64')}\n`)).toEqual(key);
    for (const wrong of ['', 'short', randomBytes(16).toString('base64'), randomBytes(33).toString('hex'), key.toString('base64url')]) {
      expect(decodeSecretKey(wrong)).toBeNull();
    }
  });

  it('is a value, or a file beside the SQLite database, or in ./data for PostgreSQL', () => {
    expect(loadConfig({ HELPDESK_SECRET_KEY: key.toString('hex') }).secretKey).toEqual({ kind: 'value', key });
    expect(loadConfig({ HELPDESK_DATABASE_URL: 'sqlite:/var/lib/helpdesk/h.db' }).secretKey).toEqual({ kind: 'file', path: '/var/lib/helpdesk/secret.key', chosen: false });
    expect(loadConfig({}).secretKey).toEqual({ kind: 'file', path: 'data/secret.key', chosen: false });
    expect(loadConfig({ HELPDESK_DATABASE_URL: 'postgres://h@db/h' }).secretKey).toEqual({ kind: 'file', path: 'data/secret.key', chosen: false });
    expect(loadConfig({ HELPDESK_SECRET_KEY_FILE: '/run/secrets/helpdesk' }).secretKey).toEqual({ kind: 'file', path: '/run/secrets/helpdesk', chosen: true });
  });

  it('refuses a malformed key, or a key and a file together, naming the variable', () => {
    expect(() => loadConfig({ HELPDESK_SECRET_KEY: 'not-a-key' })).toThrow(/HELPDESK_SECRET_KEY must be 32 bytes/);
    expect(() => loadConfig({ HELPDESK_SECRET_KEY: key.toString('hex'), HELPDESK_SECRET_KEY_FILE: '/k' })).toThrow(/HELPDESK_SECRET_KEY_FILE cannot be set together/);
    expect(() => loadConfig({ HELPDESK_SECRET_KEY_FILE: ' ' })).toThrow(/HELPDESK_SECRET_KEY_FILE must be a path/);
  });
});
