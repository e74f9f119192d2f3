/** The served OpenAPI document, for the tests that hand it to an outside tool. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';
import { API, startTestServer, type TestServer } from './server.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the document is arbitrary JSON
type Json = any;

/**
 * For a test file that hands the served OpenAPI document to an outside tool (the linter, the
 * type generator): the document this source tree serves, read once from a server started for
 * the file, and a temporary directory for the tool's files; both are gone after the file.
 */
export function servedDocumentForTools(prefix: string): { readonly document: Json; readonly directory: string; readonly server: TestServer } {
  const state: { document?: Json; directory?: string; server?: TestServer } = {};
  beforeAll(async () => {
    state.directory = await mkdtemp(join(tmpdir(), prefix));
    state.server = await startTestServer('sqlite', { startWorker: false });
    const response = await state.server.request('GET', `${API}/openapi.json`, { key: null });
    expect(response.status).toBe(200);
    state.document = response.body;
  });
  afterAll(async () => {
    await state.server?.close();
    if (state.directory) await rm(state.directory, { recursive: true, force: true });
  });
  return {
    get document() {
      return state.document;
    },
    get directory() {
      return state.directory!;
    },
    get server() {
      return state.server!;
    },
  };
}
