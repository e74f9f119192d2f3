/**
 * The error catalogue: every error the API can answer with, each with a stable machine code and
 * an HTTP status. The HTTP layer maps an AppError to the documented body
 * `{"error": {code, message, details?, requestId}}`; anything else becomes `internal`.
 */

export interface ErrorDetail {
  /** Dotted path into the request, e.g. `webhook.targetUrl`. */
  readonly path: string;
  readonly message: string;
}

export const ERROR_CATALOGUE = {
  unauthorized: { status: 401, description: 'No API key, or one that is not valid.' },
  forbidden: { status: 403, description: 'The key is valid but its role may not do this.' },
  not_found: { status: 404, description: 'No such resource or path.' },
  method_not_allowed: { status: 405, description: 'The path exists but not with this method.' },
  validation_failed: { status: 400, description: 'The request is well-formed JSON but breaks a rule; see details.' },
  invalid_json: { status: 400, description: 'The body is empty or not parsable JSON.' },
  request_timeout: { status: 408, description: 'The request did not arrive whole in time (headers and body).' },
  bad_request: { status: 400, description: 'The request is not valid HTTP.' },
  payload_too_large: { status: 413, description: 'The body is over 1 MiB.' },
  unsupported_media_type: { status: 415, description: 'A POST or PUT whose content-type is not application/json.' },
  conflict: { status: 409, description: 'The request conflicts with the current state (duplicate, closed ticket).' },
  idempotency_key_in_use: { status: 409, description: 'A request with this Idempotency-Key is still running; retry after Retry-After seconds.' },
  idempotency_key_reused: { status: 422, description: 'This Idempotency-Key was used with another request (method, path or body).' },
  rate_limited: { status: 429, description: 'Too many requests.' },
  unavailable: { status: 503, description: 'The database cannot be reached right now; nothing was done. Retry-After says when to try again.' },
  internal: { status: 500, description: 'An unexpected error; the log line with the same requestId has the cause.' },
  config_invalid: { status: 500, description: 'The server configuration is invalid (start-up only).' },
} as const;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: readonly ErrorDetail[] | undefined;

  constructor(code: ErrorCode, message: string, details?: readonly ErrorDetail[], options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AppError';
    this.code = code;
    this.status = ERROR_CATALOGUE[code].status;
    this.details = details;
  }

  static validation(details: readonly ErrorDetail[], message = 'The request is not valid.'): AppError {
    return new AppError('validation_failed', message, details);
  }

  static invalidField(path: string, message: string): AppError {
    return AppError.validation([{ path, message }]);
  }

  static notFound(what: string): AppError {
    return new AppError('not_found', `${what} not found.`);
  }

  static conflict(message: string): AppError {
    return new AppError('conflict', message);
  }

  static config(message: string): AppError {
    return new AppError('config_invalid', message);
  }
}
