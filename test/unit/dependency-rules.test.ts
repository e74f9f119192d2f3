/**
 * The import rules of .dependency-cruiser.cjs and eslint.config.js bite: a copy of src/ passes
 * them as it is, and fails them, each rule by name, once forbidden imports are added to it (a
 * file cycle, the delivery engine importing a domain, a layer importing one above it, SQL outside
 * a repository, outbound HTTP outside outbound/, a part that is in no layer). `npm test` runs the
 * same checker over the real tree.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CRUISER = join(ROOT, 'node_modules/dependency-cruiser/bin/dependency-cruise.mjs');

/** The files added to the copy, each breaking the rules named beside it. */
const FORBIDDEN: { file: string; text: string; rules: string[] }[] = [
  {
    file: 'src/delivery/knows-webhooks.ts',
    text: "import type { Webhook } from '../webhooks/webhook.js';\nexport type Known = Webhook;\n",
    rules: ['delivery-engine-imports-no-domain', 'layer-delivery'],
  },
  {
    file: 'src/shared/ping.ts',
    text: "import { pong } from './pong.js';\nexport const ping = (): number => pong() + 1;\n",
    rules: ['no-cycles'],
  },
  {
    file: 'src/shared/pong.ts',
    text: "import { ping } from './ping.js';\nexport const pong = (): number => (ping as unknown as number) ? 1 : 0;\n",
    // The cycle is reported once, from the file where the walk entered it.
    rules: [],
  },
  {
    file: 'src/db/knows-tickets.ts',
    text: "import type { Ticket } from '../tickets/ticket.js';\nexport type Stored = Ticket;\n",
    rules: ['layer-db'],
  },
  {
    file: 'src/tickets/tickets-sql.service.ts',
    text: "import { sql } from 'kysely';\nexport const count = sql`select count(*) from tickets`;\n",
    rules: ['sql-only-in-repositories'],
  },
  {
    file: 'src/webhooks/own-client.ts',
    text: "import { request } from 'undici';\nimport { lookup } from 'node:dns';\nexport const send = { request, lookup };\n",
    rules: ['outbound-http-only-in-outbound'],
  },
  {
    file: 'src/reports/report.ts',
    text: 'export const report = 1;\n',
    rules: [],
  },
  {
    file: 'src/api/reports.ts',
    text: "import { report } from '../reports/report.js';\nexport const reports = [report];\n",
    rules: ['every-file-in-a-layer'],
  },
];

function cruise(cwd: string): { status: number | null; output: string } {
  // The output type of `npm run depcheck`: each broken rule with the comment that says why.
  const result = spawnSync(process.execPath, [CRUISER, 'src', '--config', join(ROOT, '.dependency-cruiser.cjs'), '--output-type', 'err-long'], { cwd, encoding: 'utf8' });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

describe('dependency rules', () => {
  let copy: string;

  beforeAll(() => {
    copy = mkdtempSync(join(tmpdir(), 'helpdesk-depcruise-'));
    cpSync(join(ROOT, 'src'), join(copy, 'src'), { recursive: true });
    cpSync(join(ROOT, 'tsconfig.json'), join(copy, 'tsconfig.json'));
    symlinkSync(join(ROOT, 'node_modules'), join(copy, 'node_modules'));
  });

  afterAll(() => rmSync(copy, { recursive: true, force: true }));

  it('pass on src/ as it is', () => {
    const { status, output } = cruise(copy);
    expect(output).toContain('no dependency violations found');
    expect(status).toBe(0);
  });

  it('fail on each forbidden import, naming the rule, the import and why', () => {
    for (const { file, text } of FORBIDDEN) {
      mkdirSync(dirname(join(copy, file)), { recursive: true });
      writeFileSync(join(copy, file), text);
    }
    const { status, output } = cruise(copy);
    expect(status).not.toBe(0);
    for (const { file, rules } of FORBIDDEN) {
      for (const rule of rules) expect(output, `${rule} for ${file}`).toMatch(new RegExp(`error ${rule}: ${file.replace(/[.]/g, '\\.')}`));
    }
    // Each broken rule comes with the comment that says why it is there.
    expect(output).toMatch(/error delivery-engine-imports-no-domain: .*\n\s+The delivery engine knows nothing of tickets, webhooks/);
    expect(output).toMatch(/error no-cycles: src\/shared\/ping\.ts[\s\S]*src\/shared\/pong\.ts/);
    // Nothing in the untouched tree was reported.
    const reported = [...output.matchAll(/error [\w-]+: (src\/\S+)/g)].map((m) => m[1]);
    expect(reported).toContain('src/shared/ping.ts');
    expect(reported.length).toBeGreaterThan(0);
    for (const from of reported) expect(FORBIDDEN.map((f) => f.file)).toContain(from);
  });
});

describe('lint rules', () => {
  it('refuse a query built outside a repository or db/, and the global fetch outside outbound/', async () => {
    const eslint = new ESLint({ cwd: ROOT });
    const code = "import type { Db } from '../db/connection.js';\nexport const load = (db: Db) => db.selectFrom('tickets').selectAll().execute();\nexport const call = () => fetch('https://example.com');\n";
    const [service] = await eslint.lintText(code, { filePath: join(ROOT, 'src/tickets/load.service.ts') });
    expect(service!.messages.map((m) => m.ruleId).sort()).toEqual(['no-restricted-globals', 'no-restricted-syntax']);
    const [repository] = await eslint.lintText(code.replace(/\nexport const call.*\n/, '\n'), { filePath: join(ROOT, 'src/tickets/load.repository.ts') });
    expect(repository!.messages).toEqual([]);
  });
});
