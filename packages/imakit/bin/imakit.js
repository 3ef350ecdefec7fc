#!/usr/bin/env node
// Thin launcher: the compiled CLI when its build is up to date (bin/entry.js), else the TypeScript
// sources through tsx. IMAKIT_LAUNCH_TRACE=1 says which on stderr.
import { fileURLToPath } from 'node:url';
import { chooseEntry } from './entry.js';

const entry = chooseEntry(fileURLToPath(new URL('..', import.meta.url)), process.env);
if (process.env.IMAKIT_LAUNCH_TRACE === '1')
  process.stderr.write(`imakit: ${entry.kind} (${entry.reason})\n`);
let main;
if (entry.kind === 'dist') ({ main } = await import('../dist/cli/main.js'));
else {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../src/cli/main.ts'));
}
process.exitCode = await main(process.argv.slice(2));
