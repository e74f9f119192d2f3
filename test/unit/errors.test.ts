import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AppError, ERROR_CATALOGUE, type ErrorCode } from '../../src/errors.js';

const codes = Object.keys(ERROR_CATALOGUE) as ErrorCode[];

describe('the error catalogue', () => {
  it('has the codes docs/errors.md documents, with their statuses', () => {
    const beyondSpec: readonly ErrorCode[] = ['method_not_allowed', 'config_invalid', 'request_timeout', 'bad_request', 'unavailable', 'idempotency_key_in_use', 'idempotency_key_reused'];
    expect(Object.fromEntries(codes.filter((c) => !beyondSpec.includes(c)).map((c) => [c, ERROR_CATALOGUE[c].status]))).toEqual({
      unauthorized: 401,
      forbidden: 403,
      not_found: 404,
      validation_failed: 400,
      invalid_json: 400,
      payload_too_large: 413,
      unsupported_media_type: 415,
      conflict: 409,
      rate_limited: 429,
      internal: 500,
    });
    expect(ERROR_CATALOGUE.method_not_allowed.status).toBe(405);
    expect(ERROR_CATALOGUE.request_timeout.status).toBe(408);
    expect(ERROR_CATALOGUE.bad_request.status).toBe(400);
    expect(ERROR_CATALOGUE.unavailable.status).toBe(503);
    expect(ERROR_CATALOGUE.idempotency_key_in_use.status).toBe(409);
    expect(ERROR_CATALOGUE.idempotency_key_reused.status).toBe(422);
  });

  it('documents every code in docs/errors.md', () => {
    const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
    const undocumented = codes.filter((code) => !doc.includes(`\`${code}\``));
    expect(undocumented).toEqual([]);
  });

  it('gives each AppError the status of its code', () => {
    for (const code of codes) expect(new AppError(code, 'x').status).toBe(ERROR_CATALOGUE[code].status);
  });
});
