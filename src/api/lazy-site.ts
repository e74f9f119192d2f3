/**
 * A part of the site whose plugins load on its first request: the admin console and Swagger UI.
 * Their modules (@fastify/static and what it pulls in, Swagger UI's routes) were a good part of a
 * start, for pages a process behind a load balancer may never serve (docs/deployment.md,
 * "Start-up"). The server registers only the paths; the first request under them builds a
 * Fastify instance of its own with the plugins, and every request is answered by it, through
 * `inject`, and sent on by the server's route. So the server's hooks (request id, log line,
 * metrics) and its error and not-found answers stay the same as when the plugins were its own.
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';

/** How the inner instance tells the server that nothing there matched, or that a handler threw. */
const UNMATCHED = 'x-helpdesk-unmatched';
const FAILED = 'x-helpdesk-failed';

/** Framing, and what the server's own reply sets itself. */
const NOT_COPIED = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'date', UNMATCHED, FAILED]);

export interface LazySite {
  /** The paths routed to the site (GET and HEAD), e.g. `/docs` and `/docs/*`. */
  readonly urls: readonly string[];
  /** Registers the site's plugins and routes on its own instance, under the same paths. */
  build(site: FastifyInstance): Promise<void>;
}

async function buildSite(definition: LazySite, failures: Map<string, unknown>): Promise<FastifyInstance> {
  // The server's router options, so that the same request matches the same route.
  const site = Fastify({ routerOptions: { ignoreTrailingSlash: true } });
  site.setNotFoundHandler(async (_request, reply) => reply.code(404).header(UNMATCHED, '1').send());
  site.setErrorHandler(async (error, request, reply) => {
    failures.set(request.id, error);
    return reply.code(500).header(FAILED, request.id).send();
  });
  await definition.build(site);
  await site.ready();
  return site;
}

export function mountOnFirstRequest(app: FastifyInstance, definition: LazySite): void {
  let site: Promise<FastifyInstance> | null = null;
  const failures = new Map<string, unknown>();
  const handler = async (request: FastifyRequest, reply: FastifyReply) => {
    // A build that failed (a file missing) is tried again by the next request.
    site ??= buildSite(definition, failures).catch((error: unknown) => {
      site = null;
      throw error;
    });
    const answer = await (await site).inject({ method: request.method as 'GET' | 'HEAD', url: request.url, headers: request.headers });
    const failed = answer.headers[FAILED];
    if (typeof failed === 'string') {
      const error = failures.get(failed);
      failures.delete(failed);
      throw error;
    }
    if (answer.headers[UNMATCHED] !== undefined) return reply.callNotFound();
    for (const [name, value] of Object.entries(answer.headers)) {
      if (value !== undefined && !NOT_COPIED.has(name)) reply.header(name, value);
    }
    // A HEAD answer has no body to measure: the length is the one a GET would send.
    if (request.method === 'HEAD' && answer.headers['content-length'] !== undefined) reply.header('content-length', answer.headers['content-length']);
    // No body (a redirect, a 304, a HEAD) is sent as none, so that no content type is made up for it.
    return reply.code(answer.statusCode).send(request.method === 'HEAD' || answer.rawPayload.length === 0 ? undefined : answer.rawPayload);
  };
  for (const url of definition.urls) app.route({ method: ['GET', 'HEAD'], url, schema: { hide: true }, handler });
}
