/**
 * Request schemas compiled by their first request rather than at start. Fastify compiles the
 * body, query, params and headers schema of every route before it listens: for this API that
 * was the largest single part of a start (some 300 ms of Ajv code generation on the 2-core
 * machine of docs/benchmarks.md, "Start-up"), for routes most processes never see. Here the Ajv
 * instance Fastify creates hands out a stand-in for each schema, which compiles the real
 * validator when it is first called and then delegates to it; the shared schemas (`$id`) are
 * added to Ajv, and checked against the meta-schema, just before that first compile.
 *
 * What changes: a schema Ajv refuses is found by the first request of its route (a 500 and an
 * error in the log), not by the start; the tests call every route. What does not: the options,
 * the errors and their order, since the same Ajv validates.
 */

/**
 * What a validator is to Fastify: called with the value, its errors read afterwards. (Fastify
 * passes a second argument only to a function with Ajv's `schemaEnv`, for coercion and defaults,
 * which this API turns off.)
 */
interface Validator {
  (data: unknown): boolean | Promise<unknown>;
  errors?: unknown;
}

/** The part of an Ajv instance that Fastify's compiler uses. */
export interface SchemaCompiler {
  addSchema(schema: object): unknown;
  compile(schema: object): Validator;
}

/** For Fastify's `ajv.onCreate`: called once, before Fastify adds the shared schemas. */
export function compileOnFirstUse(ajv: SchemaCompiler): void {
  const addSchema = ajv.addSchema.bind(ajv);
  const compile = ajv.compile.bind(ajv);
  const pending: object[] = [];
  const addPending = () => {
    for (const schema of pending.splice(0)) addSchema(schema);
  };
  ajv.addSchema = (schema) => {
    pending.push(schema);
    return ajv;
  };
  ajv.compile = (schema) => {
    let validate: Validator | null = null;
    const standIn: Validator = (data) => {
      if (validate === null) {
        addPending();
        validate = compile(schema);
      }
      const result = validate(data);
      standIn.errors = validate.errors;
      return result;
    };
    return standIn;
  };
}
