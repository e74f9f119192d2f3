/**
 * The OpenAPI document exactly as `helpdesk serve` answers it at /helpdesk/api/v1/openapi.json,
 * for the scripts that generate from it or lint it. It comes from the built server (dist/, which
 * `npm run build` makes), started on a throwaway SQLite database in a temporary directory and
 * never listening: the document is made from the routes, so it needs no socket and no data.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The document from a JSON file when one is named, else from the built server. */
export async function openApiDocument(file) {
  if (file !== undefined) return JSON.parse(await readFile(file, 'utf8'));
  const dist = new URL('../dist/', import.meta.url);
  const [{ loadConfig }, { createRuntime }, { createLogger }] = await Promise.all([
    import(new URL('config.js', dist).href),
    import(new URL('runtime.js', dist).href),
    import(new URL('logger.js', dist).href),
  ]).catch((error) => {
    throw new Error('dist/ is not built: run "npm run build" first', { cause: error });
  });
  const directory = await mkdtemp(join(tmpdir(), 'helpdesk-openapi-'));
  try {
    const config = loadConfig({
      HELPDESK_DATABASE_URL: `sqlite:${join(directory, 'helpdesk.db')}`,
      // Given, so that no key file is written; nothing is sealed with it.
      HELPDESK_SECRET_KEY: Buffer.alloc(32).toString('base64'),
      HELPDESK_LOG_LEVEL: 'silent',
    });
    const runtime = await createRuntime(config, { logger: createLogger('silent') });
    try {
      const response = await runtime.app.inject({ method: 'GET', url: '/helpdesk/api/v1/openapi.json' });
      if (response.statusCode !== 200) throw new Error(`the server answered ${response.statusCode} for its OpenAPI document`);
      return response.json();
    } finally {
      await runtime.close();
    }
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

/** `--name value` pairs of a command line. */
export function optionsOf(argv, known) {
  const options = {};
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i]?.replace(/^--/, '');
    if (!known.includes(name) || argv[i + 1] === undefined) throw new Error(`usage: ${known.map((k) => `[--${k} <file>]`).join(' ')}`);
    options[name] = argv[i + 1];
  }
  return options;
}
