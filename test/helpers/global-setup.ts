/**
 * Once per run: a throw-away certificate authority and a certificate for localhost and
 * 127.0.0.1 signed by it, so that tests run real HTTPS receivers that the server trusts (as an
 * operator would with NODE_EXTRA_CA_CERTS), and the PostgreSQL verdict, said out loud.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { postgresReachable, selectedDialects } from './databases.js';

declare module 'vitest' {
  export interface ProvidedContext {
    tls: { caPath: string; ca: string; cert: string; key: string };
    postgresAvailable: boolean;
  }
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: 'pipe' });
}

export default async function setup(project: TestProject): Promise<() => void> {
  const dir = mkdtempSync(join(tmpdir(), 'helpdesk-tls-'));
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=Helpdesk Test CA'], dir);
  writeFileSync(join(dir, 'leaf.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n');
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', '/CN=localhost'], dir);
  openssl(['x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'leaf.pem', '-days', '2', '-extfile', 'leaf.ext'], dir);
  project.provide('tls', {
    caPath: join(dir, 'ca.pem'),
    ca: readFileSync(join(dir, 'ca.pem'), 'utf8'),
    cert: readFileSync(join(dir, 'leaf.pem'), 'utf8'),
    key: readFileSync(join(dir, 'leaf.key'), 'utf8'),
  });

  const wantsPostgres = selectedDialects().includes('postgres');
  const available = wantsPostgres && (await postgresReachable());
  project.provide('postgresAvailable', available);
  if (wantsPostgres && !available) {
    if (process.env.HELPDESK_TEST_REQUIRE_POSTGRES === 'true') {
      throw new Error(`PostgreSQL is required (HELPDESK_TEST_REQUIRE_POSTGRES=true) but not reachable at ${process.env.HELPDESK_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'}`);
    }
    process.stdout.write('\n*** PostgreSQL is not reachable: every PostgreSQL test is SKIPPED in this run (SQLite tests still run). ***\n\n');
  }
  return () => rmSync(dir, { recursive: true, force: true });
}
