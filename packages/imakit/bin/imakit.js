#!/usr/bin/env node
'use strict';
// Thin launcher: the bundled CLI with its code cache when the build is up to date (bin/entry.js),
// else the TypeScript sources through tsx. IMAKIT_LAUNCH_TRACE=1 says which on stderr.
// CommonJS (bin/package.json): an ES-module entry makes Node set up its ESM loader before any of
// our code runs, about 3 MB of peak RSS and 10 ms of CPU on every command (bench/startup.ts).
const { chooseEntry } = require('./entry.js');

async function launch() {
  const root = `${require('node:path').join(__dirname, '..')}/`;
  const entry = chooseEntry(root, process.env);
  if (process.env.IMAKIT_LAUNCH_TRACE === '1')
    process.stderr.write(`imakit: ${entry.kind} (${entry.reason})\n`);
  let main;
  if (entry.kind === 'dist') {
    const { loadBundle } = require('./load-bundle.js');
    const { exports, script } = loadBundle(`${root}dist/cli.cjs`);
    if (process.env.IMAKIT_LAUNCH_TRACE === '1' && script.cachedDataRejected !== false)
      process.stderr.write('imakit: compiled without the code cache\n');
    ({ main } = exports);
  } else {
    const { register } = await import('tsx/esm/api');
    register();
    ({ main } = await import('../src/cli/main.ts'));
  }
  process.exitCode = await main(process.argv.slice(2));
}

// an error main() did not catch is an unhandled rejection: printed, exit 1 (as before)
launch();
