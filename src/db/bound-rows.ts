/**
 * Batches bound as a fixed number of parameters, whatever their size, so that a batch
 * statement's text is the same for one row or a thousand. On SQLite the statement cache is keyed
 * by text: an IN list or a multi-row VALUES of every length missed it and was prepared afresh
 * (and Kysely compiled a node per value); on PostgreSQL a short statement over arrays plans in
 * well under a millisecond, whatever the batch, where a UNION ALL of a SELECT per row took
 * longer to plan than to run.
 *
 * PostgreSQL binds one array per column and reads them back with `unnest`. SQLite has no arrays:
 * the batch is bound as one JSON text and read back with `json_each`, which stores exactly the
 * bytes that binding each value would (NUL characters and unpaired surrogates included, checked
 * on SQLite 3.53).
 */
import { sql, type RawBuilder, type SqlBool } from 'kysely';
import type { Capabilities } from './capabilities.js';
import type { Db } from './connection.js';

export type ColumnType = 'text' | 'integer';

/** Every column of a table with its type, so that a column added to the table must be added to its batches. */
export type ColumnsOf<Row> = Record<keyof Row, ColumnType>;

/** Column names, in order, with the SQL type of each: the shape of a bound batch. */
export type BatchColumns<Row extends object = Record<string, unknown>> = { readonly [Name in keyof Row & string]?: ColumnType };

/**
 * The rows as a derived table named `alias`, with the columns of `columns` in their order; each
 * row supplies a value (or null) per column name.
 */
export function boundRows<Row extends object>(capabilities: Capabilities, alias: string, columns: BatchColumns<Row>, rows: readonly Row[]): RawBuilder<unknown> {
  const names = Object.keys(columns) as (keyof Row & string)[];
  if (capabilities.arrayParameters) {
    const arrays = names.map((name) => sql`cast(${rows.map((row) => row[name] ?? null)} as ${sql.raw(columns[name]!)}[])`);
    return sql`unnest(${sql.join(arrays)}) as ${sql.raw(alias)}(${sql.join(names.map((name) => sql.ref(name)))})`;
  }
  const picks = names.map((name, i) => sql`value ->> ${sql.lit(i)} as ${sql.ref(name)}`);
  const json = JSON.stringify(rows.map((row) => names.map((name) => row[name] ?? null)));
  return sql`(select ${sql.join(picks)} from json_each(${json})) as ${sql.raw(alias)}`;
}

/**
 * `column` is one of `values`. On PostgreSQL as `= any(array)`, which the planner turns into
 * index lookups for the array's elements; `in (select unnest(...))` is planned as a join with a
 * guessed row count instead.
 */
export function inList(capabilities: Capabilities, column: string, values: readonly string[]): RawBuilder<SqlBool> {
  return capabilities.arrayParameters
    ? sql<SqlBool>`${sql.ref(column)} = any(cast(${values} as text[]))`
    : sql<SqlBool>`${sql.ref(column)} in (select value from json_each(${JSON.stringify(values)}))`;
}

/** Inserts the rows in one statement of fixed text; the columns' order is that of `columns`. */
export async function insertRows<Row extends object>(db: Db, capabilities: Capabilities, table: string, columns: BatchColumns<Row>, rows: readonly Row[]): Promise<void> {
  if (rows.length === 0) return;
  const names = sql.join(Object.keys(columns).map((name) => sql.ref(name)));
  await sql`insert into ${sql.table(table)} (${names}) select ${names} from ${boundRows(capabilities, 'batch', columns, rows)}`.execute(db);
}
