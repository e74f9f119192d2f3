/**
 * Why a command could not start, as one line a person can act on: the cause (a port in use, a
 * database that cannot be reached or is not one), what was being reached, and what to change.
 * Never the database password: the URL is shown without it.
 */
import type { Config, DatabaseConfig } from '../config.js';
import { AppError } from '../errors.js';

interface CodedError extends Error {
  code?: string;
  address?: string;
  port?: number;
  hostname?: string;
  syscall?: string;
}

/** The error and every cause under it (`cause`, and each error of an AggregateError), outermost first. */
function chain(error: unknown): CodedError[] {
  const found: CodedError[] = [];
  const pending: unknown[] = [error];
  while (pending.length > 0 && found.length < 20) {
    const next = pending.shift();
    if (!(next instanceof Error)) continue;
    found.push(next as CodedError);
    if (next instanceof AggregateError) pending.push(...next.errors);
    if (next.cause !== undefined) pending.push(next.cause);
  }
  return found;
}

/** `postgres://user@host:port/database`, the password left out, or the SQLite file's path. */
function describeDatabase(database: DatabaseConfig): string {
  if (database.kind === 'sqlite') return `the SQLite file ${database.path}`;
  try {
    const url = new URL(database.connectionString);
    url.password = '';
    return `PostgreSQL at ${url.toString()}`;
  } catch {
    return 'PostgreSQL (HELPDESK_DATABASE_URL)';
  }
}

/** `portVariable`: the setting of the port the command listens on (a worker's is HELPDESK_WORKER_PORT). */
export function describeStartupFailure(error: unknown, config: Config, portVariable: 'HELPDESK_PORT' | 'HELPDESK_WORKER_PORT' = 'HELPDESK_PORT'): string {
  const errors = chain(error);
  const database = describeDatabase(config.database);
  const port = portVariable === 'HELPDESK_WORKER_PORT' ? config.workerPort : config.port;
  for (const cause of errors) {
    if (cause.syscall === 'mkdir' || cause.syscall === 'open') {
      return `cannot create ${database} or its directory: ${cause.message}; check HELPDESK_DATABASE_URL and the directory's permissions`;
    }
    switch (cause.code) {
      case 'EADDRINUSE':
        return `port ${port} on ${config.host} is already in use by another process: stop it, or set ${portVariable} to another port${portVariable === 'HELPDESK_WORKER_PORT' ? ' (or to off)' : ''}`;
      case 'EACCES':
        if (cause.syscall === 'listen') return `not allowed to listen on port ${port}: ports below 1024 need privileges; set ${portVariable} to a higher one`;
        break;
      case 'EADDRNOTAVAIL':
        return `cannot listen on ${config.host}: it is not an address of this machine; check HELPDESK_HOST`;
      case 'ECONNREFUSED':
        return `cannot reach ${database}: connection refused (is PostgreSQL running there?); check HELPDESK_DATABASE_URL`;
      case 'ENOTFOUND':
      case 'EAI_AGAIN':
        return `cannot reach ${database}: the host name ${cause.hostname ?? ''} does not resolve; check HELPDESK_DATABASE_URL`;
      case 'ETIMEDOUT':
        return `cannot reach ${database}: the connection timed out; check HELPDESK_DATABASE_URL and the network`;
      case '3D000':
        return `${cause.message} on ${database}: create it (createdb), or check HELPDESK_DATABASE_URL`;
      case '28P01':
      case '28000':
        return `${database} refused the login: ${cause.message}; check the user and password in HELPDESK_DATABASE_URL`;
      case 'SQLITE_CANTOPEN':
        return `cannot open ${database}: ${cause.message}; check HELPDESK_DATABASE_URL and the directory's permissions`;
      case 'SQLITE_NOTADB':
        return `${database} is not a SQLite database; point HELPDESK_DATABASE_URL at a Helpdesk database, or at a new path`;
      default:
        break;
    }
  }
  // An error of ours already says what to do (a missing or wrong secret key, for instance).
  const ours = errors.find((cause) => cause instanceof AppError);
  if (ours) return ours.message;
  const messages = errors.map((cause) => cause.message).filter((message, index, all) => message !== '' && all.indexOf(message) === index);
  return messages.length > 0 ? messages.join(': ') : String(error);
}
