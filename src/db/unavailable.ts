/**
 * Whether an error says that the database cannot be reached, or cannot take writes, right now,
 * as opposed to refusing this one statement: the connection refused, cut or timed out,
 * PostgreSQL shutting down, starting up, out of connections or out of disk, SQLite's file locked
 * past the busy timeout, unreadable or on a full disk. A request that meets one is answered 503
 * and may be sent again: its transaction was not committed.
 */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/** SQLSTATE class 08 (connection exception), 57P01–57P03 (shutdown, cannot connect now), 53100 (disk full), 53300 (too many connections). */
const POSTGRES_UNAVAILABLE = /^(08[0-9A-Z]{3}|57P0[123]|53100|53300)$/;

/** SQLite's result codes for a database it cannot use now (extended codes start with these). */
const SQLITE_UNAVAILABLE = ['SQLITE_BUSY', 'SQLITE_LOCKED', 'SQLITE_FULL', 'SQLITE_IOERR', 'SQLITE_CANTOPEN'];

/** node-postgres reports a cut or unreachable connection in its message only. */
const POSTGRES_CONNECTION_MESSAGES = /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error)/;

export function isDatabaseUnavailable(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; current && depth < 5; depth += 1) {
    const { code, message } = current as { code?: unknown; message?: unknown };
    if (typeof code === 'string') {
      if (NETWORK_CODES.has(code) || POSTGRES_UNAVAILABLE.test(code) || SQLITE_UNAVAILABLE.some((prefix) => code.startsWith(prefix))) return true;
    }
    if (typeof message === 'string' && POSTGRES_CONNECTION_MESSAGES.test(message)) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}
