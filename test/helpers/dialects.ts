import { describe, inject } from 'vitest';
import type { DialectName } from '../../src/db/capabilities.js';
import { selectedDialects } from './databases.js';

/** Runs the same suite on every selected database; PostgreSQL is skipped, loudly, if unreachable. */
export function describeEachDialect(name: string, suite: (dialect: DialectName) => void): void {
  for (const dialect of selectedDialects()) {
    const unavailable = dialect === 'postgres' && !inject('postgresAvailable');
    describe.skipIf(unavailable)(`${name} [${dialect}${unavailable ? ': SKIPPED, PostgreSQL not reachable' : ''}]`, () => suite(dialect));
  }
}
