/**
 * The console's API types (admin/src/generated/api-schema.ts) are generated from the OpenAPI
 * document by `npm run openapi:types` and committed. Generated again here, by the same script,
 * from the document this source tree serves, they must equal the committed file: a route schema
 * changed without regenerating fails here, before the console can drift from the server.
 * (`npm run typecheck` then compiles the console against the committed file.)
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { servedDocumentForTools } from '../../helpers/served-openapi.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the document is arbitrary JSON
type Json = any;

const COMMITTED = 'admin/src/generated/api-schema.ts';

describe('Generated API types of the console', () => {
  const served = servedDocumentForTools('helpdesk-openapi-types-');

  /** What `npm run openapi:types` writes for this document. */
  async function generate(from: Json, name: string): Promise<string> {
    const documentFile = join(served.directory, `${name}.json`);
    const out = join(served.directory, `${name}.ts`);
    await writeFile(documentFile, JSON.stringify(from));
    await promisify(execFile)(process.execPath, ['scripts/openapi-types.mjs', '--document', documentFile, '--out', out]);
    return readFile(out, 'utf8');
  }

  it('are what `npm run openapi:types` makes of the document the server serves', async () => {
    const generated = await generate(served.document, 'served');
    const committed = readFileSync(COMMITTED, 'utf8');
    expect(generated === committed, `${COMMITTED} is out of date: run \`npm run openapi:types\` and commit it`).toBe(true);
    // Names the console relies on: the resources, and the operations by their operationIds.
    expect(generated).toMatch(/^ {8}Webhook: \{$/m);
    expect(generated).toMatch(/^ {4}listWebhookDeliveries: \{$/m);
  });

  it('change when the document does, so a stale file cannot pass', async () => {
    const changed = structuredClone(served.document);
    changed.components.schemas.Ticket.properties.mood = { type: 'string' };
    const generated = await generate(changed, 'changed');
    expect(generated).not.toBe(readFileSync(COMMITTED, 'utf8'));
    expect(generated).toContain('mood?: string;');
  });
});
