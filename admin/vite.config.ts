/**
 * The admin console's build: Preact compiled by Vite into dist/admin, which `helpdesk serve`
 * serves at /admin/. Everything the page needs is in the bundle: no CDN, no web font.
 */
import { fileURLToPath } from 'node:url';
import preact from '@preact/preset-vite';
import { defineConfig } from 'vite';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/admin/',
  plugins: [preact({ prefreshEnabled: false, devToolsEnabled: false })],
  build: {
    outDir: fileURLToPath(new URL('../dist/admin', import.meta.url)),
    emptyOutDir: true,
    // Readable in a stack trace from a user's browser, at little cost for a page this size.
    sourcemap: true,
  },
  logLevel: 'warn',
});
