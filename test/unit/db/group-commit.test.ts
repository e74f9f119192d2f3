import { describe, expect, it } from 'vitest';
import { mayBeCausedByOneItem } from '../../../src/db/group-commit.js';

const withCode = (code: string) => Object.assign(new Error(code), { code });

describe('which batch failures one item may have caused', () => {
  it('counts constraint, data and type refusals, and errors of the code on one item', () => {
    for (const code of ['23505', '23503', '22001', '22P02', 'SQLITE_CONSTRAINT_PRIMARYKEY', 'SQLITE_CONSTRAINT', 'SQLITE_MISMATCH', 'SQLITE_TOOBIG']) {
      expect(mayBeCausedByOneItem(withCode(code)), code).toBe(true);
    }
    expect(mayBeCausedByOneItem(new TypeError('x is undefined'))).toBe(true);
  });

  it('does not count failures of the database as a whole', () => {
    for (const code of ['57P01', '08006', '53100', '40P01', 'ECONNRESET', 'ECONNREFUSED', 'SQLITE_BUSY', 'SQLITE_FULL', 'SQLITE_IOERR_WRITE', 'SQLITE_READONLY']) {
      expect(mayBeCausedByOneItem(withCode(code)), code).toBe(false);
    }
    expect(mayBeCausedByOneItem(new Error('Connection terminated unexpectedly'))).toBe(false);
    expect(mayBeCausedByOneItem(null)).toBe(false);
  });
});
