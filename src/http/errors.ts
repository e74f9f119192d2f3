/**
 * The boundary where anything thrown becomes the documented error body. Fastify's own errors
 * (bad JSON, body too large, schema validation) are mapped onto the catalogue; anything else is
 * `internal`, logged with its cause, and never shown to the client.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { isDatabaseUnavailable } from '../db/unavailable.js';
import { AppError, type ErrorDetail } from '../errors.js';

interface AjvError {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}

/** `/webhook/targetUrl` under body `webhook` → `webhook.targetUrl`. */
function toDetail(error: AjvError, context: string): ErrorDetail {
  const segments = error.instancePath.split('/').filter(Boolean);
  let message = error.message ?? 'is not valid';
  if (error.keyword === 'additionalProperties') {
    segments.push(String(error.params.additionalProperty));
    message = 'is not an allowed field';
  } else if (error.keyword === 'required') {
    segments.push(String(error.params.missingProperty));
    message = 'is required';
  } else if (error.keyword === 'enum') {
    message = `must be one of ${(error.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
  } else if (error.keyword === 'type') {
    message = `must be ${String(error.params.type).replaceAll(',', ' or ')}`;
  }
  const path = segments.join('.') || (context === 'body' ? 'body' : context);
  return { path, message };
}

export function toAppError(error: FastifyError | AppError | Error): AppError {
  if (error instanceof AppError) return error;
  const fastifyError = error as FastifyError & { validation?: AjvError[]; validationContext?: string };
  if (fastifyError.validation) {
    const context = fastifyError.validationContext ?? 'body';
    const details = fastifyError.validation.map((e) => toDetail(e, context));
    return new AppError('validation_failed', 'The request is not valid.', details, { cause: error });
  }
  switch (fastifyError.code) {
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new AppError('invalid_json', 'The body is empty; send a JSON object.', undefined, { cause: error });
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new AppError('invalid_json', 'The body is not valid JSON.', undefined, { cause: error });
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new AppError('payload_too_large', 'The body is over 1 MiB.', undefined, { cause: error });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new AppError('unsupported_media_type', 'Send the body as application/json.', undefined, { cause: error });
    default:
      break;
  }
  if (error instanceof SyntaxError && fastifyError.statusCode === 400) {
    return new AppError('invalid_json', 'The body is not valid JSON.', undefined, { cause: error });
  }
  if (isDatabaseUnavailable(error)) {
    return new AppError('unavailable', 'The database cannot be reached right now; nothing was done. Try again shortly.', undefined, { cause: error });
  }
  return new AppError('internal', 'An unexpected error occurred.', undefined, { cause: error });
}

/** How long a client should wait before sending a request refused as `unavailable` again. */
const UNAVAILABLE_RETRY_AFTER_SECONDS = 5;

export function sendError(request: FastifyRequest, reply: FastifyReply, error: AppError): FastifyReply {
  const body: Record<string, unknown> = { code: error.code, message: error.message };
  if (error.details && error.details.length > 0) body.details = error.details;
  body.requestId = request.id;
  if (error.code === 'unavailable') reply.header('retry-after', UNAVAILABLE_RETRY_AFTER_SECONDS);
  // The request holding the key is answered within moments, or its lock runs out.
  if (error.code === 'idempotency_key_in_use') reply.header('retry-after', 1);
  return reply.status(error.status).send({ error: body });
}
