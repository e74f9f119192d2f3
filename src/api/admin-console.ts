/**
 * The admin console (admin/, docs/console.md): static files built by `npm run build` into
 * dist/admin and served at /admin/. The files hold no data and need no key; every call the page
 * makes goes through the API with the admin key the user signs in with. @fastify/static is loaded
 * by the first request for the console, not at start (lazy-site.ts).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { AppError } from '../errors.js';
import { mountOnFirstRequest } from './lazy-site.js';

export const CONSOLE_PREFIX = '/admin/';

/** The same from src/http (tests) and from dist/http (the built server): the repository root's dist/admin. */
const CONSOLE_ROOT = fileURLToPath(new URL('../../dist/admin/', import.meta.url));

/** The page talks to its own origin only, and nothing may frame it (clickjacking of its buttons). */
const CONTENT_SECURITY_POLICY = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

export function registerAdminConsole(app: FastifyInstance, root = CONSOLE_ROOT): void {
  if (!existsSync(root)) {
    app.get('/admin', { schema: { hide: true } }, async () => {
      throw new AppError('not_found', 'The admin console is not built: run `npm run build`.');
    });
    return;
  }
  mountOnFirstRequest(app, {
    // The page itself, at `/admin` and `/admin/` alike (the router ignores a trailing slash; the
    // assets are linked by absolute paths under /admin/, so either address works), and its files.
    urls: ['/admin', `${CONSOLE_PREFIX}*`],
    async build(site) {
      const { default: fastifyStatic } = await import('@fastify/static');
      await site.register(fastifyStatic, {
        root,
        prefix: CONSOLE_PREFIX,
        index: false,
        wildcard: true,
        setHeaders: (reply, path) => {
          reply.header('content-security-policy', CONTENT_SECURITY_POLICY);
          reply.header('x-content-type-options', 'nosniff');
          reply.header('referrer-policy', 'no-referrer');
          // Vite names assets by their content hash: they never change; index.html always may.
          reply.header('cache-control', path.includes('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache');
        },
      });
      site.get('/admin', async (_request, reply) => reply.sendFile('index.html'));
    },
  });
}
