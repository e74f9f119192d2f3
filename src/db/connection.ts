import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import type SQLite from 'better-sqlite3';
import { CompiledQuery, Kysely, PostgresDialect, SqliteAdapter, SqliteDialect, SqliteDriver, type DatabaseConnection, type DialectAdapter, type Driver, type SqliteDatabase } from 'kysely';
import type pg from 'pg';
import type { DatabaseConfig } from '../config.js';
import { CAPABILITIES, type Capabilities } from './capabilities.js';
import type { Database } from './schema.js';

export interface DatabaseHandle {
  readonly db: Kysely<Database>;
  readonly capabilities: Capabilities;
  close(): Promise<void>;
}

export type Db = Kysely<Database>;

// A process uses one of the two drivers: the other is not loaded (pg and its modules were tens
// of milliseconds of a SQLite server's start; docs/deployment.md, "Start-up").
const require = createRequire(import.meta.url);

/** The pg module, loaded by the first PostgreSQL connection of the process. */
export function pgDriver(): typeof pg {
  return require('pg') as typeof pg;
}

/**
 * SQLite's default deferred BEGIN takes the write lock only at the first write; when two
 * processes (serve and worker) share a file, such an upgrade can fail at once with SQLITE_BUSY
 * whatever the busy timeout. BEGIN IMMEDIATE takes the lock up front, so writers queue instead.
 */
class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }

  /**
   * On some errors (a full disk, an I/O error, out of memory) SQLite rolls the transaction back
   * by itself. Kysely's ROLLBACK then fails with "no transaction is active", and that error
   * would replace the one that says what happened (found by the disk-full suite: a 500 instead
   * of a 503).
   */
  override async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    try {
      await connection.executeQuery(CompiledQuery.raw('rollback'));
    } catch (error) {
      if (!/no transaction is active/.test((error as Error).message)) throw error;
    }
  }
}

/**
 * SQLite does run DDL inside transactions. Saying so makes Kysely's migrator run migrations in
 * one (BEGIN IMMEDIATE, above), which is the only lock that holds across processes: two
 * `helpdesk migrate` or `serve` processes starting on one new file then queue instead of both
 * creating the tables.
 */
class TransactionalDdlSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}

class ImmediateSqliteDialect extends SqliteDialect {
  readonly #config: ConstructorParameters<typeof SqliteDialect>[0];
  constructor(config: ConstructorParameters<typeof SqliteDialect>[0]) {
    super(config);
    this.#config = config;
  }
  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.#config);
  }
  override createAdapter(): DialectAdapter {
    return new TransactionalDdlSqliteAdapter();
  }
}

/**
 * Switching a new file to WAL can answer SQLITE_BUSY at once, without consulting the busy
 * timeout, while another process is switching or recovering the same file (two servers, or
 * `migrate` beside `serve`, starting together). It happens only at start-up, so a short
 * blocking retry is fine.
 */
function enableWal(sqlite: SQLite.Database): void {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let attempt = 1; ; attempt += 1) {
    try {
      sqlite.pragma('journal_mode = WAL');
      return;
    } catch (error) {
      if ((error as { code?: string }).code !== 'SQLITE_BUSY' || attempt >= 100) throw error;
      Atomics.wait(pause, 0, 0, 20);
    }
  }
}

/** Statements kept prepared per connection; the least recently used beyond it are dropped. */
const STATEMENT_CACHE_SIZE = 256;

/**
 * Kysely's SQLite driver prepares every statement on every call, a large share of
 * the worker's CPU under load. The hot queries repeat the same SQL text, so the prepared
 * statements are kept, by text, in a small LRU cache. Reuse is safe: the driver runs each
 * statement to completion (all/run) before the next.
 */
function withStatementCache(sqlite: SQLite.Database): SqliteDatabase {
  const statements = new Map<string, SQLite.Statement>();
  return {
    close: () => sqlite.close(),
    prepare: (text: string) => {
      let statement = statements.get(text);
      if (statement) {
        statements.delete(text);
      } else {
        statement = sqlite.prepare(text);
        if (statements.size >= STATEMENT_CACHE_SIZE) statements.delete(statements.keys().next().value!);
      }
      statements.set(text, statement);
      return statement;
    },
  };
}

export function openDatabase(config: DatabaseConfig, onConnectionError?: (error: Error) => void): DatabaseHandle {
  if (config.kind === 'sqlite') {
    if (config.path !== ':memory:') mkdirSync(dirname(config.path), { recursive: true });
    const sqlite = new (require('better-sqlite3') as typeof SQLite)(config.path);
    // WAL lets readers run beside the writer; busy_timeout makes a second process (worker)
    // wait for the write lock instead of failing; NORMAL sync is durable under WAL across
    // process crashes (only an OS crash may lose the last transactions).
    sqlite.pragma('busy_timeout = 5000');
    enableWal(sqlite);
    sqlite.pragma('synchronous = NORMAL');
    sqlite.pragma('foreign_keys = ON');
    const db = new Kysely<Database>({ dialect: new ImmediateSqliteDialect({ database: withStatementCache(sqlite) }) });
    return { db, capabilities: CAPABILITIES.sqlite, close: () => db.destroy() };
  }
  const pool = new (pgDriver().Pool)({ connectionString: config.connectionString, max: 10 });
  // An idle client whose connection drops (PostgreSQL restarted, connection killed) emits
  // 'error' on the pool; unhandled, that would crash the process. The pool discards the client
  // and the next query opens a new connection.
  pool.on('error', (error) => onConnectionError?.(error));
  // The pool listens only to idle clients: a connection cut while a client is checked out
  // between two queries (inside a transaction, say) would emit an 'error' nobody hears, and that
  // would crash the process. The query under way fails on its own; this only keeps the process.
  pool.on('connect', (client) => client.on('error', (error) => onConnectionError?.(error)));
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return { db, capabilities: CAPABILITIES.postgres, close: () => db.destroy() };
}
