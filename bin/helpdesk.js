#!/usr/bin/env node
import { existsSync } from 'node:fs';

// dist/ is built by `npm install` (the prepare script); an install with --ignore-scripts or a
// fresh checkout of a branch may lack it, and that deserves a sentence, not a stack trace.
if (!existsSync(new URL('../dist/cli/main.js', import.meta.url))) {
  process.stderr.write('helpdesk: dist/ is not built: run "npm run build" (npm install does it), then try again\n');
  process.exit(1);
}
const { main } = await import('../dist/cli/main.js');
await main(process.argv.slice(2));
