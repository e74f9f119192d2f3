/**
 * What a route declares besides its schemas, read by the app's hooks (authentication, the role
 * check, bodiless action POSTs) and by the OpenAPI document (security, error responses). The
 * routes import their role lists from here, so the declarations come with them.
 */
import type { ErrorCode } from '../errors.js';
import type { Principal, Role } from '../shared/principal.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Roles allowed on the route; absent means no API key is needed. */
    roles?: readonly Role[];
    /** Action endpoints whose fields are all optional accept a POST with no body. */
    bodyOptional?: boolean;
    /** Errors of the route's own rules (a duplicate, a closed ticket), for the OpenAPI document. */
    errors?: readonly ErrorCode[];
  }
  interface FastifyRequest {
    /** The caller, once authenticated (null on the routes that need no key). */
    principal: Principal | null;
  }
}

export const ADMIN = ['admin'] as const satisfies readonly Role[];
export const AGENT_OR_ADMIN = ['agent', 'admin'] as const satisfies readonly Role[];
