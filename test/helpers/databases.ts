/**
 * Each test file gets its own database: a fresh SQLite file, or a fresh PostgreSQL database
 * created for it and dropped after. `HELPDESK_TEST_DATABASES` (default `sqlite,postgres`)
 * picks the dialects the suite loops over.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { parseDatabaseUrl } from '../../src/config.js';
import type { DialectName } from '../../src/db/capabilities.js';
import { openDatabase, type DatabaseHandle } from '../../src/db/connection.js';
import { migrateToLatest } from '../../src/db/migrate.js';
import { waitFor } from './wait.js';

export const POSTGRES_ADMIN_URL = process.env.HELPDESK_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export function selectedDialects(): DialectName[] {
  const names = (process.env.HELPDESK_TEST_DATABASES ?? 'sqlite,postgres').split(',').map((s) => s.trim());
  return names.filter((n): n is DialectName => n === 'sqlite' || n === 'postgres');
}

export async function postgresReachable(): Promise<boolean> {
  const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

export interface TestDatabase {
  readonly dialect: DialectName;
  /** A HELPDESK_DATABASE_URL value. */
  readonly url: string;
  drop(): Promise<void>;
}

export async function createTestDatabase(dialect: DialectName): Promise<TestDatabase> {
  if (dialect === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'helpdesk-db-'));
    return {
      dialect,
      url: `sqlite:${join(dir, 'helpdesk.db')}`,
      drop: async () => rmSync(dir, { recursive: true, force: true }),
    };
  }
  const name = `helpdesk_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    dialect,
    url: url.toString(),
    drop: async () => {
      // No FORCE: terminating a connection that is still closing would raise an error in the
      // test process. A closed pool's connections go away within moments; wait for that.
      const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
      await client.connect();
      try {
        await waitFor(`database ${name} to have no connections left`, async () => {
          try {
            await client.query(`drop database if exists ${name}`);
            return true;
          } catch (error) {
            if ((error as { code?: string }).code === '55006') return false; // still in use
            throw error;
          }
        });
      } finally {
        await client.end();
      }
    },
  };
}

/**
 * A fresh database at the latest migration, opened, for suites that call repositories directly;
 * `close()` closes the handle and drops the database.
 */
export async function openMigratedTestDatabase(dialect: DialectName): Promise<{ database: TestDatabase; handle: DatabaseHandle; close(): Promise<void> }> {
  const database = await createTestDatabase(dialect);
  const handle = openDatabase(parseDatabaseUrl(database.url));
  await migrateToLatest(handle.db, handle.capabilities);
  return {
    database,
    handle,
    close: async () => {
      await handle.close();
      await database.drop();
    },
  };
}
