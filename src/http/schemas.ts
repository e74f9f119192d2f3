/** JSON Schema pieces shared by the routes. Query values arrive as strings and stay strings. */
export const pageQueryProperties = {
  limit: { type: 'string' },
  cursor: { type: 'string' },
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

export const ADMIN = ['admin'] as const;
export const AGENT_OR_ADMIN = ['agent', 'admin'] as const;
