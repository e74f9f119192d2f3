/**
 * The OpenAPI document as the server serves it, held to what client generators and API tools
 * expect of one: Redocly's recommended rules (redocly.yaml) pass with no error and no warning,
 * every operation has an operationId of its own (src/api/openapi.ts, OPERATION_IDS), and the
 * text cites the repository's own docs only. Each check is also shown failing on a broken copy,
 * so a linter that stopped looking could not pass for a clean document.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { OPERATION_IDS } from '../../../src/api/openapi.js';
import { isStaticPage, pointer } from '../../helpers/openapi-check.js';
import { API } from '../../helpers/server.js';
import { servedDocumentForTools } from '../../helpers/served-openapi.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the document is arbitrary JSON
type Json = any;

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];
const REDOCLY = 'node_modules/.bin/redocly';

interface LintResult {
  exitCode: number;
  /** `<rule> <severity> <where>`, one per problem. */
  problems: string[];
}

let runs = 0;

/** Runs the linter on the document as `npm run openapi:lint` does, offline. */
async function lint(document: Json, directory: string): Promise<LintResult> {
  const file = join(directory, `openapi-${(runs += 1)}.json`);
  await writeFile(file, JSON.stringify(document, null, 2));
  const env = { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' };
  const { exitCode, stdout } = await new Promise<{ exitCode: number; stdout: string }>((resolve) =>
    execFile(REDOCLY, ['lint', file, '--config', 'redocly.yaml', '--format', 'json'], { env, maxBuffer: 64 * 1024 * 1024 }, (error, stdout) =>
      resolve({ exitCode: error ? Number(error.code ?? 1) : 0, stdout }),
    ),
  );
  const report = JSON.parse(stdout) as { problems: { ruleId: string; severity: string; location: { pointer: string }[] }[] };
  return { exitCode, problems: report.problems.map((p) => `${p.ruleId} ${p.severity} ${p.location[0]?.pointer ?? ''}`) };
}

/** Every operation of the document, in `paths` and `webhooks`, with where it is. */
function operationsOf(document: Json): { where: string; operation: Json }[] {
  return [
    ...Object.entries<Json>(document.paths).map(([path, item]) => [`paths ${path}`, item] as const),
    ...Object.entries<Json>(document.webhooks ?? {}).map(([name, item]) => [`webhooks ${name}`, item] as const),
  ].flatMap(([where, item]) => Object.entries<Json>(item).filter(([method]) => METHODS.includes(method)).map(([method, operation]) => ({ where: `${method.toUpperCase()} ${where}`, operation })));
}

/** Why the document's operationIds would make a poor client: missing, shared, or not a method name. */
function operationIdProblems(document: Json): string[] {
  const problems: string[] = [];
  const seen = new Map<string, string>();
  for (const { where, operation } of operationsOf(document)) {
    const id = operation.operationId;
    if (typeof id !== 'string') problems.push(`${where}: no operationId`);
    else if (!/^[a-z][a-zA-Z]*$/.test(id)) problems.push(`${where}: operationId ${id} is not a camelCase method name`);
    else if (seen.has(id)) problems.push(`${where}: operationId ${id} is also ${seen.get(id)}'s`);
    else seen.set(id, where);
  }
  return problems;
}

describe('OpenAPI document, as tools read it', () => {
  const served = servedDocumentForTools('helpdesk-openapi-lint-');

  it("passes Redocly's recommended rules with no error and no warning", async () => {
    const result = await lint(served.document, served.directory);
    expect(result).toEqual({ exitCode: 0, problems: [] });
  });

  it('is refused by the same lint when an operationId, a security requirement or the servers go missing', async () => {
    const broken = structuredClone(served.document);
    delete broken.paths[`${API}/webhooks`].get.operationId;
    delete broken.paths['/healthz'].get.security;
    broken.servers = [];
    const result = await lint(broken, served.directory);
    expect(result.exitCode).not.toBe(0);
    expect(result.problems.sort()).toEqual(
      [
        `operation-operationId warn #/paths/${pointer(`${API}/webhooks`)}/get/operationId`,
        'security-defined error #/paths/~1healthz/get',
        'no-empty-servers error #/servers',
      ].sort(),
    );
  });

  it('gives every operation an operationId of its own that a generated client can use as a method name', () => {
    expect(operationIdProblems(served.document)).toEqual([]);
    expect(operationsOf(served.document).length).toBeGreaterThan(26);
    // The check itself: a missing id and a shared one are both named.
    const broken = structuredClone(served.document);
    delete broken.paths['/healthz'].get.operationId;
    broken.paths['/metrics'].get.operationId = 'listWebhooks';
    expect(operationIdProblems(broken)).toEqual(['GET paths /healthz: no operationId', `GET paths ${API}/webhooks: operationId listWebhooks is also GET paths /metrics's`]);
  });

  it('names no route in OPERATION_IDS that the router does not have', () => {
    const routes = new Set(
      served.server.runtime.app.routeTable.filter((r) => r.method !== 'HEAD' && !isStaticPage(r.url)).map((r) => `${r.method} ${r.url.startsWith(`${API}/`) ? r.url.slice(API.length) : r.url}`),
    );
    expect(Object.keys(OPERATION_IDS).filter((key) => !routes.has(key))).toEqual([]);
    expect(routes.size).toBe(Object.keys(OPERATION_IDS).length);
  });

  it("cites only the repository's own docs, and carries the license of package.json", () => {
    const cited = [...new Set(JSON.stringify(served.document).match(/[\w./-]+\.md\b/g) ?? [])];
    expect(cited.length).toBeGreaterThan(0);
    expect(cited.filter((file) => !/^docs\/[\w-]+\.md$/.test(file) || !existsSync(file))).toEqual([]);
    const license = (JSON.parse(readFileSync('package.json', 'utf8')) as { license: string }).license;
    expect(served.document.info.license).toEqual({ name: license, identifier: license });
  });
});
