/**
 * A webhook's `filter` (docs/api.md, "Filters"): a query in the MongoDB query language over an
 * event's filter document `{event, ticket, changes}`, evaluated by sift. Only the operators of
 * the contract pass: the query is checked here, key by key, before sift sees it, and sift itself
 * is built with those operators only, so that `$where` (which sift would run as code) or
 * `$regex` (a regular expression an admin could make catastrophically slow) can reach it
 * neither way.
 */
import sift from 'sift';
import type { ErrorDetail } from '../errors.js';
import type { FilterDocument } from '../events/filter-document.js';

const { createQueryTester, $eq, $ne, $in, $nin, $gt, $gte, $lt, $lte, $exists, $all, $size, $and, $or, $nor, $not } = sift;

/** The operators a filter may use, and nothing else: sift runs only these. */
const OPERATIONS = { $eq, $ne, $in, $nin, $gt, $gte, $lt, $lte, $exists, $all, $size, $and, $or, $nor, $not };

export const FILTER_OPERATORS = Object.keys(OPERATIONS);

/** The largest filter, serialised as JSON, in bytes. */
export const MAX_FILTER_BYTES = 4096;
/** The deepest nesting of objects and arrays, the filter itself being level 1. */
export const MAX_FILTER_DEPTH = 6;

/** A query: field paths and logical operators at its top. */
export type WebhookFilter = Record<string, unknown>;

export type FilterMatcher = (document: FilterDocument) => boolean;

const LOGICAL = new Set(['$and', '$or', '$nor']);
const COMPARISONS = new Set(['$eq', '$ne', '$gt', '$gte', '$lt', '$lte']);
const LISTS = new Set(['$in', '$nin', '$all']);

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `$or[1]["ticket.priority"].$in`: keys holding a dot are quoted, so a path reads one way. */
function childPath(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return /^[$A-Za-z_][\w$-]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

class FilterChecker {
  readonly problems: ErrorDetail[] = [];

  problem(path: string, message: string): void {
    this.problems.push({ path, message });
  }

  /** A query: `{<field path>: <value or operators>, $and: [...], ...}`. */
  query(query: unknown, path: string, depth: number): void {
    if (!isPlainObject(query)) return this.problem(path, 'must be an object');
    if (depth > MAX_FILTER_DEPTH) return this.problem(path, `nests deeper than ${MAX_FILTER_DEPTH} levels`);
    for (const [key, value] of Object.entries(query)) {
      const at = childPath(path, key);
      if (LOGICAL.has(key)) this.clauses(value, at, depth + 1);
      else if (key === '$not') this.problem(at, 'applies to a field, not to a whole query: write {"<field>": {"$not": {...}}}, or use $nor');
      else if (key.startsWith('$')) this.problem(at, OPERATIONS[key as keyof typeof OPERATIONS] ? 'applies to a field: write {"<field>": {"' + key + '": ...}}' : 'is not a supported operator');
      else this.field(key, value, at, depth + 1);
    }
  }

  /** The array of queries of `$and`, `$or` or `$nor`. */
  clauses(value: unknown, path: string, depth: number): void {
    if (!Array.isArray(value) || value.length === 0) return this.problem(path, 'must be a non-empty array of queries');
    if (depth > MAX_FILTER_DEPTH) return this.problem(path, `nests deeper than ${MAX_FILTER_DEPTH} levels`);
    value.forEach((clause, i) => this.query(clause, childPath(path, i), depth + 1));
  }

  field(key: string, value: unknown, path: string, depth: number): void {
    if (key.split('.').some((segment) => segment === '' || segment.startsWith('$'))) {
      return this.problem(path, 'is not a field path: dot-separated names, none empty or starting with $');
    }
    if (isPlainObject(value) && Object.keys(value).some((k) => k.startsWith('$'))) this.operators(value, path, depth);
    else this.literal(value, path, depth);
  }

  /** `{$gt: 1, $lt: 5}`: operators only, applied to one field. */
  operators(operators: Record<string, unknown>, path: string, depth: number): void {
    if (depth > MAX_FILTER_DEPTH) return this.problem(path, `nests deeper than ${MAX_FILTER_DEPTH} levels`);
    const keys = Object.keys(operators);
    if (keys.length === 0) return this.problem(path, 'must hold at least one operator');
    for (const [key, value] of Object.entries(operators)) {
      const at = childPath(path, key);
      if (!key.startsWith('$')) this.problem(at, 'must not mix operators and fields in one object');
      else if (COMPARISONS.has(key)) this.literal(value, at, depth + 1);
      else if (LISTS.has(key)) {
        if (!Array.isArray(value)) this.problem(at, 'must be an array');
        else this.literal(value, at, depth + 1);
      } else if (key === '$exists') {
        if (typeof value !== 'boolean') this.problem(at, 'must be true or false');
      } else if (key === '$size') {
        if (!Number.isInteger(value) || (value as number) < 0) this.problem(at, 'must be a non-negative integer');
      } else if (key === '$not') {
        if (!isPlainObject(value) || !Object.keys(value).some((k) => k.startsWith('$'))) this.problem(at, 'must be an object of operators, such as {"$in": [...]}');
        else this.operators(value, at, depth + 1);
      } else if (LOGICAL.has(key)) this.problem(at, 'combines whole queries: use it at the top of a query, not on a field');
      else this.problem(at, 'is not a supported operator');
    }
  }

  /** A value compared as it is: any JSON, but no key that looks like an operator. */
  literal(value: unknown, path: string, depth: number): void {
    if (typeof value !== 'object' || value === null) return;
    if (depth > MAX_FILTER_DEPTH) return this.problem(path, `nests deeper than ${MAX_FILTER_DEPTH} levels`);
    if (Array.isArray(value)) {
      value.forEach((item, i) => this.literal(item, childPath(path, i), depth + 1));
      return;
    }
    for (const [key, item] of Object.entries(value)) {
      const at = childPath(path, key);
      if (key.startsWith('$')) this.problem(at, 'is not a supported operator here: a compared value may not hold keys starting with $');
      else this.literal(item, at, depth + 1);
    }
  }
}

/**
 * What is wrong with a filter, each problem at its path under `path` (such as
 * `webhook.filter.$or[1]["ticket.priority"].$regex`); empty when it may be stored.
 */
export function filterProblems(filter: unknown, path: string): ErrorDetail[] {
  if (!isPlainObject(filter)) return [{ path, message: 'must be an object or null' }];
  const bytes = Buffer.byteLength(JSON.stringify(filter), 'utf8');
  if (bytes > MAX_FILTER_BYTES) return [{ path, message: `must be at most ${MAX_FILTER_BYTES} bytes as JSON (it is ${bytes})` }];
  const checker = new FilterChecker();
  checker.query(filter, path, 1);
  if (checker.problems.length > 0) return checker.problems;
  try {
    createQueryTester(filter, { operations: OPERATIONS });
  } catch (error) {
    return [{ path, message: `is not a valid query: ${(error as Error).message}` }];
  }
  return [];
}

/**
 * Objects rebuilt without a prototype: sift follows a path with `item[key]`, which finds what an
 * object inherits, so that `{"ticket.constructor.name": "Object"}` would match every ticket and a
 * custom field named `toString` would never be missing. Arrays stay arrays (sift tells them by
 * their type), so only their elements are rebuilt.
 */
function ownFieldsOnly(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(ownFieldsOnly);
  if (!isPlainObject(value)) return value;
  const copy = Object.create(null) as Record<string, unknown>;
  for (const [key, item] of Object.entries(value)) copy[key] = ownFieldsOnly(item);
  return copy;
}

/** One copy per document, however many webhooks' filters try it (the outbox shares one per event). */
const ownFieldCopies = new WeakMap<FilterDocument, unknown>();

/** Compiles a filter that passed filterProblems. */
export function compileFilter(filter: WebhookFilter): FilterMatcher {
  const test = createQueryTester(filter, { operations: OPERATIONS });
  return (document) => {
    let copy = ownFieldCopies.get(document);
    if (copy === undefined) {
      copy = ownFieldsOnly(document);
      ownFieldCopies.set(document, copy);
    }
    return test(copy);
  };
}

/** More distinct filters than this and the cache starts over (a webhook's filter rarely changes). */
const MAX_CACHED_MATCHERS = 1024;

/**
 * Matchers of stored filters (their JSON text), each compiled once per distinct text, so that a
 * change's fan-out compiles none it saw before.
 */
export function filterMatcherCache(): (storedFilter: string) => FilterMatcher {
  const matchersByText = new Map<string, FilterMatcher>();
  return (storedFilter) => {
    let matcher = matchersByText.get(storedFilter);
    if (!matcher) {
      if (matchersByText.size >= MAX_CACHED_MATCHERS) matchersByText.clear();
      matcher = compileFilter(JSON.parse(storedFilter) as WebhookFilter);
      matchersByText.set(storedFilter, matcher);
    }
    return matcher;
  };
}
