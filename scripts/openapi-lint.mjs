/**
 * `npm run openapi:lint`: lints the OpenAPI document the built server serves with Redocly's
 * recommended rules (redocly.yaml), the same check test/integration/api/openapi-lint.test.ts
 * makes in `npm test`; exits with the linter's status.
 *
 *   node scripts/openapi-lint.mjs [--document <openapi.json>]
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openApiDocument, optionsOf } from './served-openapi-document.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const options = optionsOf(process.argv.slice(2), ['document']);
const document = await openApiDocument(options.document);
const directory = await mkdtemp(join(tmpdir(), 'helpdesk-openapi-lint-'));
try {
  const file = join(directory, 'openapi.json');
  await writeFile(file, JSON.stringify(document, null, 2));
  const lint = spawnSync(join(root, 'node_modules/.bin/redocly'), ['lint', file, '--config', join(root, 'redocly.yaml')], {
    stdio: 'inherit',
    // No telemetry, no update check: the lint runs offline.
    env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
  });
  process.exitCode = lint.status ?? 1;
} finally {
  await rm(directory, { recursive: true, force: true });
}
