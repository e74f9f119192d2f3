/** Which database errors mean "not now" (503) rather than "not this" (4xx or a bug). */
import { describe, expect, it } from 'vitest';
import { isDatabaseUnavailable } from '../../../src/db/unavailable.js';

const withCode = (code: string, message = 'x') => Object.assign(new Error(message), { code });

describe('database unavailable', () => {
  it.each([
    ['a refused connection', withCode('ECONNREFUSED')],
    ['a reset connection', withCode('ECONNRESET')],
    ['PostgreSQL shutting down', withCode('57P01')],
    ['PostgreSQL starting up', withCode('57P03')],
    ['a PostgreSQL connection failure', withCode('08006')],
    ['PostgreSQL out of connections', withCode('53300')],
    ['PostgreSQL out of disk', withCode('53100')],
    ['a cut node-postgres connection', new Error('Connection terminated unexpectedly')],
    ['a pool that could not connect in time', new Error('timeout exceeded when trying to connect')],
    ['SQLite locked past the busy timeout', withCode('SQLITE_BUSY')],
    ['SQLite on a full disk', withCode('SQLITE_FULL')],
    ['an SQLite I/O error', withCode('SQLITE_IOERR_WRITE')],
    ['a wrapped cause', new Error('outer', { cause: withCode('ECONNREFUSED') })],
  ])('is true for %s', (_name, error) => {
    expect(isDatabaseUnavailable(error)).toBe(true);
  });

  it.each([
    ['a unique violation', withCode('23505')],
    ['bad data for PostgreSQL', withCode('22P02')],
    ['an SQLite constraint', withCode('SQLITE_CONSTRAINT_UNIQUE')],
    ['a syntax error', withCode('42601')],
    ['a bug', new TypeError('undefined is not a function')],
    ['nothing at all', null],
  ])('is false for %s', (_name, error) => {
    expect(isDatabaseUnavailable(error)).toBe(false);
  });
});
