/**
 * Cross-process wake-ups on PostgreSQL: a process that queues deliveries sends NOTIFY, and every
 * worker process LISTENs, so that an idle worker starts on a new event at once instead of at its
 * next poll. Notifications are a hint, never the queue: one that is lost (a listener
 * reconnecting, a publisher crashing after its commit) only delays delivery to the poll.
 */
import { sql } from 'kysely';
import type pg from 'pg';
import type { Logger } from 'pino';
import type { DatabaseConfig } from '../config.js';
import { pgDriver, type DatabaseHandle, type Db } from './connection.js';

const CHANNEL = 'helpdesk_deliveries';
const RECONNECT_DELAY_MS = 1_000;

export interface NotificationChannel {
  /** Tells every listening process that deliveries were queued (after the commit). */
  publish(): void;
  /** Calls `listener` on every notification, and after a reconnection (some may have been missed). */
  listen(listener: () => void): Promise<void>;
  close(): Promise<void>;
}

/** SQLite has one process writing at a time and no such channel: the in-process wake-up and the poll suffice. */
const NO_CHANNEL: NotificationChannel = { publish: () => undefined, listen: async () => undefined, close: async () => undefined };

export function openNotificationChannel(config: DatabaseConfig, database: DatabaseHandle, logger: Logger): NotificationChannel {
  return database.capabilities.listenNotify && config.kind === 'postgres'
    ? new PostgresNotificationChannel(config.connectionString, database.db, logger)
    : NO_CHANNEL;
}

class PostgresNotificationChannel implements NotificationChannel {
  readonly #connectionString: string;
  readonly #db: Db;
  readonly #logger: Logger;
  #client: pg.Client | null = null;
  #listener: (() => void) | null = null;
  #closed = false;
  #reconnectTimer: NodeJS.Timeout | null = null;
  /** A NOTIFY under way, and whether another was asked meanwhile: bursts collapse into one more. */
  #publishing = false;
  #publishAgain = false;

  constructor(connectionString: string, db: Db, logger: Logger) {
    this.#connectionString = connectionString;
    this.#db = db;
    this.#logger = logger;
  }

  publish(): void {
    if (this.#closed) return;
    if (this.#publishing) {
      this.#publishAgain = true;
      return;
    }
    this.#publishing = true;
    sql`select pg_notify(${CHANNEL}, '')`
      .execute(this.#db)
      .catch((error: unknown) => this.#logger.warn({ err: error }, 'could not notify workers; they will see the deliveries at their next poll'))
      .finally(() => {
        this.#publishing = false;
        if (this.#publishAgain) {
          this.#publishAgain = false;
          this.publish();
        }
      });
  }

  async listen(listener: () => void): Promise<void> {
    this.#listener = listener;
    await this.#connect();
  }

  async #connect(): Promise<void> {
    if (this.#closed) return;
    // A connection of its own, outside the pool: LISTEN belongs to a session.
    // Keepalive: a connection that vanishes without a reset (a network cut) is noticed and
    // replaced instead of leaving this worker on polling alone.
    const client = new (pgDriver().Client)({ connectionString: this.#connectionString, keepAlive: true, keepAliveInitialDelayMillis: 10_000 });
    client.on('notification', () => this.#listener?.());
    client.on('error', (error) => this.#lost(client, error));
    client.on('end', () => this.#lost(client, null));
    try {
      await client.connect();
      await client.query(`listen ${CHANNEL}`);
    } catch (error) {
      this.#lost(client, error);
      return;
    }
    this.#client = client;
    // Whatever was queued while no one listened is found now rather than at the next poll.
    this.#listener?.();
  }

  #lost(client: pg.Client, error: unknown): void {
    if (this.#closed || (this.#client !== null && this.#client !== client)) return;
    this.#client = null;
    client.removeAllListeners('end');
    client.on('error', () => undefined);
    client.end().catch(() => undefined);
    this.#logger.warn({ err: error }, 'lost the notification connection; reconnecting, polling meanwhile');
    if (this.#reconnectTimer === null) {
      this.#reconnectTimer = setTimeout(() => {
        this.#reconnectTimer = null;
        void this.#connect();
      }, RECONNECT_DELAY_MS);
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#reconnectTimer) clearTimeout(this.#reconnectTimer);
    const client = this.#client;
    this.#client = null;
    if (client) {
      client.removeAllListeners('end');
      await client.end().catch(() => undefined);
    }
  }
}
