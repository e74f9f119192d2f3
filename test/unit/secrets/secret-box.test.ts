import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decodeSecretKey, decodeSecretKeyList, loadConfig } from '../../../src/config.js';
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

  it('with several keys, seals under the first and opens what any of them sealed', () => {
    const [older, newer] = [randomBytes(32), randomBytes(32)];
    const before = new SecretBox(older);
    const sealedBefore = before.seal(SECRET, 'whk_1');
    const rotating = new SecretBox([newer, older]);
    expect(rotating.keyIds).toEqual([new SecretBox(newer).keyId, before.keyId]);
    expect(rotating.keyId).toBe(new SecretBox(newer).keyId);
    expect(rotating.open(sealedBefore, 'whk_1')).toBe(SECRET);
    const sealedNow = rotating.seal(SECRET, 'whk_1');
    expect(sealedNow.startsWith(rotating.sealingPrefix)).toBe(true);
    expect(rotating.isSealedWithSealingKey(sealedNow)).toBe(true);
    expect(rotating.isSealedWithSealingKey(sealedBefore)).toBe(false);
    // Sealed under the new key alone: the old key's box cannot open it, the new key's can.
    expect(() => before.open(sealedNow, 'whk_1')).toThrow(/cannot be opened with key/);
    expect(new SecretBox(newer).open(sealedNow, 'whk_1')).toBe(SECRET);
    const moved = rotating.reseal(sealedBefore, 'whk_1');
    expect(new SecretBox(newer).open(moved, 'whk_1')).toBe(SECRET);
    // A secret a version before sealing stored in clear is sealed by a reseal.
    expect(new SecretBox(newer).open(rotating.reseal(SECRET, 'whk_1'), 'whk_1')).toBe(SECRET);
    expect(() => rotating.reseal(sealedBefore, 'whk_2')).toThrow();
  });

  it('digests under every key, the sealing key first', () => {
    const [older, newer] = [randomBytes(32), randomBytes(32)];
    const [underOld] = new SecretBox(older).digests('request', 'purpose');
    const both = new SecretBox([newer, older]).digests('request', 'purpose');
    expect(both).toEqual([new SecretBox(newer).digests('request', 'purpose')[0], underOld]);
    expect(both[0]).not.toBe(underOld);
    expect(new SecretBox(older).digests('request', 'another purpose')[0]).not.toBe(underOld);
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
    expect(loadConfig({ HELPDESK_SECRET_KEY: key.toString('hex') }).secretKey).toEqual({ kind: 'value', keys: [key] });
    expect(loadConfig({ HELPDESK_DATABASE_URL: 'sqlite:/var/lib/helpdesk/h.db' }).secretKey).toEqual({ kind: 'file', path: '/var/lib/helpdesk/secret.key', chosen: false });
    expect(loadConfig({}).secretKey).toEqual({ kind: 'file', path: 'data/secret.key', chosen: false });
    expect(loadConfig({ HELPDESK_DATABASE_URL: 'postgres://h@db/h' }).secretKey).toEqual({ kind: 'file', path: 'data/secret.key', chosen: false });
    expect(loadConfig({ HELPDESK_SECRET_KEY_FILE: '/run/secrets/helpdesk' }).secretKey).toEqual({ kind: 'file', path: '/run/secrets/helpdesk', chosen: true });
  });

  it('lists several keys, comma-separated, in the order given (the first seals)', () => {
    const older = randomBytes(32);
    expect(loadConfig({ HELPDESK_SECRET_KEY: `${key.toString('base64')},${older.toString('hex')}` }).secretKey).toEqual({ kind: 'value', keys: [key, older] });
    expect(loadConfig({ HELPDESK_SECRET_KEY: ` ${key.toString('hex')} , ${older.toString('base64')}\n` }).secretKey).toEqual({ kind: 'value', keys: [key, older] });
    expect(decodeSecretKeyList(`${older.toString('base64')}\n`, 'the file')).toEqual([older]);
  });

  it('refuses a list with an empty, malformed or repeated key, naming its position and never its text', () => {
    const [b64, hex] = [key.toString('base64'), randomBytes(32).toString('hex')];
    const refusal = (value: string) => {
      try {
        loadConfig({ HELPDESK_SECRET_KEY: value });
      } catch (error) {
        return (error as Error).message;
      }
      throw new Error(`"${value}" was accepted`);
    };
    expect(refusal(`${b64},`)).toMatch(/^HELPDESK_SECRET_KEY: key 2 of 2 is empty/);
    expect(refusal(`,${b64}`)).toMatch(/^HELPDESK_SECRET_KEY: key 1 of 2 is empty/);
    expect(refusal(`${b64},,${hex}`)).toMatch(/^HELPDESK_SECRET_KEY: key 2 of 3 is empty/);
    expect(refusal(`${b64},${hex},short-secret`)).toMatch(/^HELPDESK_SECRET_KEY: key 3 of 3 must be 32 bytes/);
    expect(refusal(`${hex},${b64},${key.toString('hex')}`)).toMatch(/^HELPDESK_SECRET_KEY: key 3 of 3 is key 2 again/);
    expect(refusal('')).toMatch(/^HELPDESK_SECRET_KEY: its key is empty/);
    for (const value of [`${b64},short-secret`, `${b64},${b64}`]) expect(refusal(value)).not.toContain('short-secret');
    expect(refusal(`${b64},${b64}`)).not.toContain(b64);
  });

  it('refuses a malformed key, or a key and a file together, naming the variable', () => {
    expect(() => loadConfig({ HELPDESK_SECRET_KEY: 'not-a-key' })).toThrow(/HELPDESK_SECRET_KEY: its key must be 32 bytes/);
    expect(() => loadConfig({ HELPDESK_SECRET_KEY: key.toString('hex'), HELPDESK_SECRET_KEY_FILE: '/k' })).toThrow(/HELPDESK_SECRET_KEY_FILE cannot be set together/);
    expect(() => loadConfig({ HELPDESK_SECRET_KEY_FILE: ' ' })).toThrow(/HELPDESK_SECRET_KEY_FILE must be a path/);
  });
});
