#!/usr/bin/env -S node --max-semi-space-size=4 --heap-growing-percent=100
// Two V8 settings that size the heap to what a server keeps alive (docs/deployment.md, "Memory"):
// semi-spaces of 4 MB instead of 16, which a busy server grew to within seconds; and an old
// generation that grows to twice what survived the last full collection, where V8 let it grow
// to about four times. Both are soft: the heap still grows as far as the live set needs. Node
// takes them only on its command line, so they ride on this line (npx helpdesk starts the
// server through it, the benchmarks read them from here, and npm start passes the same flags).
import { existsSync } from 'node:fs';

// dist/ is built by `npm install` (the prepare script); an install with --ignore-scripts or a
// fresh checkout of a branch may lack it, and that deserves a sentence, not a stack trace.
if (!existsSync(new URL('../dist/cli/main.js', import.meta.url))) {
  process.stderr.write('helpdesk: dist/ is not built: run "npm run build" (npm install does it), then try again\n');
  process.exit(1);
}
const { main } = await import('../dist/cli/main.js');
await main(process.argv.slice(2));
