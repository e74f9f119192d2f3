/**
 * JSON Schema pieces shared by the routes. Query values arrive as strings and stay strings.
 *
 * Request schemas validate (Ajv, through Fastify). Response schemas, and the resource schemas
 * they refer to by `$id`, describe: they feed the OpenAPI document (src/api/openapi.ts) and the
 * test suite checks every response against them; they are not used to serialise, so that a field
 * missing from a schema shows up as a failing test instead of vanishing from answers.
 */
export const pageQueryProperties = {
  limit: { type: 'string', description: 'Page size, 1..100 (default 50).' },
  cursor: { type: 'string', description: 'The `nextCursor` of the previous page.' },
} as const;

export const pageQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: pageQueryProperties,
} as const;

export const idParamsSchema = {
  type: 'object',
  properties: { id: { type: 'string' } },
  required: ['id'],
} as const;

/** Wraps a resource's schema in its name: `{"ticket": {...}}`. */
export function wrapped(name: string, schema: object): object {
  return { type: 'object', additionalProperties: false, required: [name], properties: { [name]: schema } };
}

/** A reference to a resource schema registered with `addSchema` (src/api/app.ts). */
export function ref(id: string): { $ref: string } {
  return { $ref: `${id}#` };
}

/** `{"tickets": [...], "nextCursor": "..." | null}` (docs/api.md, "Conventions"). */
export function pageOf(name: string, itemId: string): object {
  return {
    type: 'object',
    additionalProperties: false,
    required: [name, 'nextCursor'],
    properties: { [name]: { type: 'array', items: ref(itemId) }, nextCursor: { type: ['string', 'null'] } },
  };
}

/** ISO 8601 UTC with milliseconds, as every time the API answers with (docs/api.md, "Conventions"). */
export const ISO_TIME_PATTERN = '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.\\d{3}Z$';
export const isoTime = { type: 'string', pattern: ISO_TIME_PATTERN } as const;
/** A time a client sends in a query or body: ISO 8601 UTC, milliseconds optional. */
export const CLIENT_TIME_PATTERN = '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,3})?Z$';

/** An id a client names in a query or header: its prefix and a bounded id. */
export function idPattern(prefix: string): string {
  return `^${prefix}_[A-Za-z0-9]{1,60}$`;
}

/** A query parameter naming a resource by id, `?ticketId=tkt_...`. */
export function idQuery(prefix: string, description: string): { type: 'string'; pattern: string; description: string } {
  return { type: 'string', pattern: idPattern(prefix), description };
}

/** `since` (inclusive) and `until` (exclusive) of a list's time window. */
export const timeWindowQueryProperties = {
  since: { type: 'string', pattern: CLIENT_TIME_PATTERN, description: 'Only items at or after this time.' },
  until: { type: 'string', pattern: CLIENT_TIME_PATTERN, description: 'Only items before this time.' },
} as const;
export const isoTimeOrNull = { type: ['string', 'null'], pattern: ISO_TIME_PATTERN } as const;

/** An id with its type prefix (docs/api.md, "Conventions"). */
export function idOf(prefix: string): { type: 'string'; pattern: string } {
  return { type: 'string', pattern: `^${prefix}_` };
}

/** A 204 answer: no body. */
export const noContent = { type: 'null', description: 'No content.' } as const;

