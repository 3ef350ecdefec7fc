#!/usr/bin/env node
// Thin launcher: the bundled CLI with its code cache when the build is up to date (bin/entry.js),
// else the TypeScript sources through tsx. IMAKIT_LAUNCH_TRACE=1 says which on stderr.
import { fileURLToPath } from 'node:url';
import { chooseEntry } from './entry.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const entry = chooseEntry(root, process.env);
if (process.env.IMAKIT_LAUNCH_TRACE === '1')
  process.stderr.write(`imakit: ${entry.kind} (${entry.reason})\n`);
let main;
if (entry.kind === 'dist') {
  const { loadBundle, readCodeCache } = await import('./load-bundle.js');
  const file = `${root}dist/cli.cjs`;
  const { exports, script } = loadBundle(file, readCodeCache(file));
  if (process.env.IMAKIT_LAUNCH_TRACE === '1' && script.cachedDataRejected !== false)
    process.stderr.write('imakit: compiled without the code cache\n');
  ({ main } = exports);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../src/cli/main.ts'));
}
process.exitCode = await main(process.argv.slice(2));
