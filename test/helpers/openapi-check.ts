/**
 * Checks an answer of the API against the OpenAPI document the server publishes: the operation
 * of its method and path must document its status, and the body must match that response's
 * schema (JSON Schema 2020-12, as OpenAPI 3.1 has it). startTestServer runs every response of
 * the integration suite through this, so a field added, renamed or left out without the
 * document, or an error status a route was not documented to give, fails the test that met it.
 */
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { patternOf } from '../../src/api/app.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the document is arbitrary JSON
type Json = any;

interface Operation {
  method: string;
  template: string;
  pattern: RegExp;
  responses: Record<string, Json>;
}

const DOCUMENT_ID = 'helpdesk-openapi.json';

const parametersIn = (template: string): number => template.split('{').length - 1;

/** `/webhooks/{id}` → the router's `/webhooks/:id`, and the pattern the router matches it by. */
const patternOfTemplate = (template: string): RegExp => patternOf(template.replace(/\{([^}]+)\}/g, ':$1'));

/** Swagger UI at /docs and the admin console at /admin: static pages, outside the document. */
export function isStaticPage(url: string): boolean {
  return /^\/(docs|admin)(\/|$)/.test(url);
}

/** A JSON pointer segment. */
export const pointer = (segment: string) => segment.replaceAll('~', '~0').replaceAll('/', '~1');

export interface ResponseCheck {
  method: string;
  /** The path requested, with its query string. */
  url: string;
  status: number;
  contentType: string | undefined;
  body: string;
}

export class OpenApiResponseChecker {
  readonly #ajv = new Ajv2020({ strict: false, allErrors: true, validateSchema: false });
  readonly #operations: Operation[] = [];
  readonly #validators = new Map<string, ValidateFunction>();

  constructor(document: Json) {
    // The whole document as one schema: the `#/components/schemas/...` references of the
    // responses resolve inside it, exactly as an OpenAPI tool would resolve them.
    this.#ajv.addSchema(document, DOCUMENT_ID);
    for (const [template, item] of Object.entries<Json>(document.paths)) {
      for (const [method, operation] of Object.entries<Json>(item)) {
        this.#operations.push({ method: method.toUpperCase(), template, pattern: patternOfTemplate(template), responses: operation.responses });
      }
    }
  }

  /** Why the answer does not match the document, or null when it does. */
  problem(answer: ResponseCheck): string | null {
    const path = answer.url.split('?')[0]!;
    const what = `${answer.method} ${path} → ${answer.status}`;
    // A concrete path wins over a templated one that also matches (`/webhooks/activity` over
    // `/webhooks/{id}`), as in OpenAPI and in the router.
    const operations = this.#operations.filter((o) => o.pattern.test(path)).sort((a, b) => parametersIn(a.template) - parametersIn(b.template));
    // HEAD is GET without the body (Fastify answers it for every GET route).
    const head = answer.method === 'HEAD';
    const operation = operations.find((o) => o.method === (head ? 'GET' : answer.method));
    if (head) {
      if (answer.body !== '') return `${what}: a HEAD answer with a body`;
      if (operation || answer.status < 400) return operation ? this.#statusProblem(operation, answer, what) : `${what}: the document has no GET ${path}`;
      return null;
    }
    if (!operation) {
      // No such operation: the answer is a documented error (404, 405, ...), in the error shape.
      if (answer.status < 400) return `${what}: the document has no ${answer.method} ${path}`;
      return this.#check('#/components/schemas/Error', answer, what);
    }
    const key = this.#responseKey(operation, answer.status);
    if (key === null) return this.#statusProblem(operation, answer, what);
    const content = operation.responses[key].content as Record<string, Json> | undefined;
    if (!content) return answer.body === '' ? null : `${what}: documented without a body, answered ${answer.body.slice(0, 200)}`;
    const mediaType = (answer.contentType ?? '').split(';')[0]!.trim();
    if (!(mediaType in content)) return `${what}: content-type ${answer.contentType} not documented (${Object.keys(content).join(', ')})`;
    if (mediaType !== 'application/json') return null;
    const schemaPath = `#/paths/${pointer(operation.template)}/${operation.method.toLowerCase()}/responses/${key}/content/${pointer(mediaType)}/schema`;
    return this.#check(schemaPath, answer, what);
  }

  /** The response of the operation that documents the status: itself, its class (`4XX`) or `default`. */
  #responseKey(operation: Operation, statusCode: number): string | null {
    const status = String(statusCode);
    return [status, `${status[0]}XX`, 'default'].find((key) => key in operation.responses) ?? null;
  }

  #statusProblem(operation: Operation, answer: ResponseCheck, what: string): string | null {
    if (this.#responseKey(operation, answer.status) !== null) return null;
    return `${what}: status not documented for ${operation.method} ${operation.template} (documented: ${Object.keys(operation.responses).join(', ')})`;
  }

  /** A validator for the schema at a JSON pointer into the document (`#/webhooks/...`). */
  validatorAt(documentPointer: string): ValidateFunction {
    const schemaRef = `${DOCUMENT_ID}${documentPointer}`;
    let validate = this.#validators.get(schemaRef);
    if (!validate) {
      validate = this.#ajv.compile({ $ref: schemaRef });
      this.#validators.set(schemaRef, validate);
    }
    return validate;
  }

  #check(documentPointer: string, answer: ResponseCheck, what: string): string | null {
    const validate = this.validatorAt(documentPointer);
    let body: unknown;
    try {
      body = JSON.parse(answer.body);
    } catch {
      return `${what}: the body is not JSON: ${answer.body.slice(0, 200)}`;
    }
    if (validate(body)) return null;
    const errors = (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''} ${JSON.stringify(e.params)}`).join('; ');
    return `${what}: the body does not match the documented schema: ${errors}; body ${answer.body.slice(0, 500)}`;
  }
}
