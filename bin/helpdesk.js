#!/usr/bin/env -S node --max-semi-space-size=4
// The young generation's semi-spaces at 4 MB instead of V8's 16: a server allocates fast and
// V8 grew them to their maximum within seconds of load, about 30 MB of resident memory that a
// delivery drain does not need (docs/deployment.md, "Sizing"; docs/benchmarks.md, "Issue 19").
// Node takes this flag only on its command line, so it rides on this line (npx helpdesk starts
// the server through it, the benchmarks read it from here, and npm start passes the same flag).
import { existsSync } from 'node:fs';

// dist/ is built by `npm install` (the prepare script); an install with --ignore-scripts or a
// fresh checkout of a branch may lack it, and that deserves a sentence, not a stack trace.
if (!existsSync(new URL('../dist/cli/main.js', import.meta.url))) {
  process.stderr.write('helpdesk: dist/ is not built: run "npm run build" (npm install does it), then try again\n');
  process.exit(1);
}
const { main } = await import('../dist/cli/main.js');
await main(process.argv.slice(2));
