/**
 * `Idempotency-Key` on POST, as Stripe has it: a client that retries a POST with the same key
 * and the same request gets the first response again (with `Idempotent-Replayed: true`) instead
 * of a second ticket or webhook. Keys are scoped to the API key, kept 24 h, and refused with
 * another request (422) or while their first request is still running (409).
 *
 * A response is stored once the request has run. Ticket creation, the request whose repetition
 * would send events twice, stores it in the transaction that creates the ticket, so a crash
 * between the commit and the answer still replays. Elsewhere a process killed in that moment
 * leaves the key locked for LOCK_MS, after which a retry runs the request again.
 */
import { createHash } from 'node:crypto';
import type { Capabilities } from '../db/capabilities.js';
import type { Db } from '../db/connection.js';
import { inTransaction } from '../db/transaction.js';
import { AppError } from '../errors.js';
import { type Clock, toIso } from '../shared/time.js';
import { SecretBox } from '../secrets/secret-box.js';
import { confirmSealingKey } from '../secrets/sealing-keys.js';
import * as repository from './idempotency.repository.js';

/** How long a key is kept after its first request. */
export const KEY_LIFETIME_MS = 24 * 60 * 60 * 1000;
/** How long a request holds its key; past this (a crash), a retry may run it again. */
export const LOCK_MS = 60_000;
export const MAX_KEY_LENGTH = 255;

/** A key this request holds: its response is to be stored when it has one. */
export interface IdempotencyClaim {
  readonly scope: string;
  readonly key: string;
}

export type IdempotencyStart = { kind: 'run'; claim: IdempotencyClaim } | { kind: 'replay'; status: number; body: string };

/** JSON with object keys sorted, so that the same request body gives the same fingerprint. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/**
 * What tells one request from another under the same key: a hash of the method, the path and
 * the body. It is stored sealed, since the body may carry what is sealed elsewhere (a webhook's
 * header values), and a plain hash of a body whose other fields are known would let a short
 * value be guessed; sealed rather than a keyed digest, so that `helpdesk reseal` can move it to
 * a new key like any sealed value and a retry after a rotation still matches.
 */
export interface RequestFingerprint {
  readonly sha256: string;
  /** The canonical text, for a fingerprint stored before they were sealed (a keyed digest of it). */
  readonly canonical: string;
}

export function requestFingerprint(method: string, path: string, body: unknown): RequestFingerprint {
  const canonical = `${method} ${path}\n${canonicalJson(body ?? null)}`;
  return { sha256: createHash('sha256').update(canonical).digest('hex'), canonical };
}

/** The purpose of the keyed digests that versions before sealed fingerprints stored. */
const LEGACY_FINGERPRINT_PURPOSE = 'idempotency fingerprint';

/** Printable ASCII without spaces, 1 to 255 characters (a UUID is the usual choice). */
export function idempotencyKeyProblem(key: string): string | null {
  if (key.length === 0 || key.length > MAX_KEY_LENGTH) return `must be 1 to ${MAX_KEY_LENGTH} characters`;
  if (!/^[\x21-\x7e]+$/.test(key)) return 'must be printable ASCII without spaces';
  return null;
}

export class IdempotencyService {
  constructor(
    private readonly db: Db,
    private readonly capabilities: Capabilities,
    private readonly clock: Clock,
    private readonly secrets: SecretBox,
  ) {}

  /** The fingerprint of a request, to hand to start(). */
  fingerprint(method: string, path: string, body: unknown): RequestFingerprint {
    return requestFingerprint(method, path, body);
  }

  /** In a transaction that stores sealed responses (sealing-keys.ts). */
  confirmSealingKey(trx: Db): Promise<void> {
    return confirmSealingKey(trx, this.capabilities, this.secrets);
  }

  /** Claims the key for this request, or answers with the stored response, or refuses. */
  async start(scope: string, key: string, fingerprint: RequestFingerprint): Promise<IdempotencyStart> {
    const nowMs = this.clock.now();
    const now = toIso(nowMs);
    const lockedUntil = toIso(nowMs + LOCK_MS);
    await repository.deleteIfExpired(this.db, scope, key, now);
    const claim = { scope, key };
    const inserted = await inTransaction(this.db, async (trx) => {
      await this.confirmSealingKey(trx);
      return repository.insertKey(trx, {
        scope,
        key,
        fingerprint: this.secrets.seal(fingerprint.sha256, this.#fingerprintContext(claim)),
        locked_until: lockedUntil,
        response_status: null,
        response_body: null,
        created_at: now,
        expires_at: toIso(nowMs + KEY_LIFETIME_MS),
      });
    });
    if (inserted) return { kind: 'run', claim };
    const existing = await repository.findKey(this.db, scope, key);
    // Released between the insert and the read: the retry may try again at once.
    if (!existing) throw this.inUse();
    if (!this.#sameRequest(existing.fingerprint, fingerprint, claim)) {
      throw new AppError('idempotency_key_reused', 'This Idempotency-Key was used with another request (method, path or body); use a new key for a new request.');
    }
    if (existing.response_status !== null && existing.response_body !== null) {
      return { kind: 'replay', status: existing.response_status, body: this.secrets.open(existing.response_body, this.#context(claim)) };
    }
    if (existing.locked_until !== null && existing.locked_until > now) throw this.inUse();
    if (await repository.takeOverStale(this.db, scope, key, existing.locked_until, lockedUntil)) return { kind: 'run', claim };
    throw this.inUse();
  }

  /** The response to store for a claim, for a domain that stores it in its own transaction. */
  sealedResponse(claim: IdempotencyClaim, status: number, body: string): repository.StoredResponse {
    return { scope: claim.scope, key: claim.key, status, sealedBody: this.secrets.seal(body, this.#context(claim)) };
  }

  async finish(claim: IdempotencyClaim, status: number, body: string): Promise<void> {
    // A failure of the server or the database is not an answer: the retry runs the request.
    if (status >= 500 || status === 429) await repository.releaseKey(this.db, claim.scope, claim.key);
    else {
      await inTransaction(this.db, async (trx) => {
        await this.confirmSealingKey(trx);
        await repository.storeResponses(trx, [this.sealedResponse(claim, status, body)]);
      });
    }
  }

  /**
   * Under every key this process holds: a fingerprint sealed (or, before they were sealed,
   * digested) under the old key of a rotation still matches.
   */
  #sameRequest(stored: string, fingerprint: RequestFingerprint, claim: IdempotencyClaim): boolean {
    if (!SecretBox.isSealed(stored)) return this.secrets.digests(fingerprint.canonical, LEGACY_FINGERPRINT_PURPOSE).includes(stored);
    return this.secrets.open(stored, this.#fingerprintContext(claim)) === fingerprint.sha256;
  }

  #context(claim: IdempotencyClaim): string {
    return `idempotency:${claim.scope}:${claim.key}`;
  }

  /** Apart from the response's, so that neither sealed value opens in the other's place. */
  #fingerprintContext(claim: IdempotencyClaim): string {
    return `idempotency fingerprint:${claim.scope}:${claim.key}`;
  }

  private inUse(): AppError {
    // Retry-After is set by the HTTP layer for this code.
    return new AppError('idempotency_key_in_use', 'A request with this Idempotency-Key is still being processed; retry in a moment.');
  }
}
