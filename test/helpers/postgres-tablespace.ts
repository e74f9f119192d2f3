/**
 * A fresh PostgreSQL test database whose files live in a tablespace on a directory the test
 * chooses (a small tmpfs, to fill): only that database runs out of disk, while the server, its
 * WAL and the other test files' databases stay in the data directory. Needs a superuser and a
 * server on this machine, whose OS user the directory is handed to.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { POSTGRES_ADMIN_URL, type TestDatabase } from './databases.js';
import { waitFor } from './wait.js';

async function withAdmin<T>(use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL, connectionTimeoutMillis: 2000 });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

/** The OS user and group that own the server's data directory: the server runs as them. */
async function serverOwner(client: pg.Client): Promise<{ uid: number; gid: number }> {
  const { rows } = await client.query<{ dir: string }>(`select current_setting('data_directory') as dir`);
  const stats = statSync(rows[0]!.dir);
  return { uid: stats.uid, gid: stats.gid };
}

/** Why a tablespace on a local directory cannot be made (so the suite is skipped), or null. */
export async function tablespaceUnavailable(): Promise<string | null> {
  try {
    return await withAdmin(async (client) => {
      const { rows } = await client.query<{ super: boolean }>('select rolsuper as super from pg_roles where rolname = current_user');
      if (rows[0]?.super !== true) return 'creating a tablespace needs a PostgreSQL superuser';
      try {
        await serverOwner(client);
      } catch {
        return "PostgreSQL's data directory is not on this machine, so a tablespace on a local tmpfs is not possible";
      }
      return null;
    });
  } catch (error) {
    return `PostgreSQL not reachable (${(error as Error).message})`;
  }
}

export async function createDatabaseInTablespace(parent: string): Promise<TestDatabase> {
  const suffix = randomBytes(6).toString('hex');
  const tablespace = `helpdesk_ts_${suffix}`;
  const name = `helpdesk_test_${suffix}`;
  // The tablespace's directory must be empty and the server's own.
  const location = join(parent, 'tablespace');
  mkdirSync(location);
  await withAdmin(async (client) => {
    const { uid, gid } = await serverOwner(client);
    chownSync(location, uid, gid);
    chmodSync(location, 0o700);
    await client.query(`create tablespace ${tablespace} location '${location}'`);
    try {
      await client.query(`create database ${name} tablespace ${tablespace}`);
    } catch (error) {
      await client.query(`drop tablespace ${tablespace}`);
      throw error;
    }
  });
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  let dropped = false;
  return {
    dialect: 'postgres',
    url: url.toString(),
    drop: async () => {
      if (dropped) return;
      await withAdmin(async (client) => {
        // As in databases.ts: no FORCE, wait for the closed pool's connections to go.
        await waitFor(`database ${name} to have no connections left`, async () => {
          try {
            await client.query(`drop database if exists ${name}`);
            return true;
          } catch (error) {
            if ((error as { code?: string }).code === '55006') return false;
            throw error;
          }
        });
        await client.query(`drop tablespace if exists ${tablespace}`);
      });
      dropped = true;
    },
  };
}
