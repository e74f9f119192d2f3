/**
 * Every difference between SQLite and PostgreSQL that the code cares about, resolved once into
 * named flags (after pg-boss's plans). Nothing else asks which database it is on.
 */
export type DialectName = 'sqlite' | 'postgres';

export interface Capabilities {
  readonly dialect: DialectName;
  /** `FOR UPDATE SKIP LOCKED` lets several workers claim disjoint rows concurrently. */
  readonly skipLocked: boolean;
  /** Column type of an auto-incrementing integer primary key. */
  readonly serialPrimaryKeyType: 'integer' | 'bigserial';
}

export const CAPABILITIES: Record<DialectName, Capabilities> = {
  sqlite: Object.freeze({ dialect: 'sqlite', skipLocked: false, serialPrimaryKeyType: 'integer' }),
  postgres: Object.freeze({ dialect: 'postgres', skipLocked: true, serialPrimaryKeyType: 'bigserial' }),
};
