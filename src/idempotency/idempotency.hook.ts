/**
 * The HTTP side of `Idempotency-Key` (src/idempotency): on an authenticated POST carrying the
 * header, claim the key once the body is valid (a request refused by validation leaves no
 * trace, as at Stripe), answer a replay from the stored response, and store the response this
 * request ends with. GET, PUT and DELETE are idempotent already; the header is ignored there.
 */
import type { FastifyInstance } from 'fastify';
import { AppError } from '../errors.js';
import { idempotencyKeyProblem, type IdempotencyClaim, type IdempotencyService } from './idempotency.service.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The Idempotency-Key this request holds until its response is stored. */
    idempotency: IdempotencyClaim | null;
  }
}

export function registerIdempotency(app: FastifyInstance, idempotency: IdempotencyService): void {
  app.decorateRequest('idempotency', null);

  app.addHook('preHandler', async (request, reply) => {
    if (request.method !== 'POST' || request.principal === null) return;
    const key = request.headers['idempotency-key'];
    if (key === undefined) return;
    const problem = Array.isArray(key) ? 'must be sent once' : idempotencyKeyProblem(key);
    if (problem !== null) throw AppError.invalidField('Idempotency-Key', problem);
    const start = await idempotency.start(request.principal.keyId, key as string, idempotency.fingerprint(request.method, request.url, request.body));
    if (start.kind === 'replay') {
      return reply.status(start.status).header('idempotent-replayed', 'true').type('application/json; charset=utf-8').send(start.body);
    }
    request.idempotency = start.claim;
    return undefined;
  });

  app.addHook('onSend', async (request, reply, payload) => {
    const claim = request.idempotency;
    if (claim === null) return payload;
    request.idempotency = null;
    try {
      await idempotency.finish(claim, reply.statusCode, typeof payload === 'string' ? payload : '');
    } catch (error) {
      // The answer stands; the key stays locked until LOCK_MS has passed, then a retry runs.
      request.log.warn({ err: error }, 'could not store the response of an Idempotency-Key');
    }
    return payload;
  });
}
