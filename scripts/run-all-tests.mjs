#!/usr/bin/env node
// `npm test` at the root: each workspace's own test command, in order; fails if any fails. Each
// workspace's test script ends with a line `N passed, N failed, N skipped`
// (packages/imakit/scripts/run-tests.mjs); those lines are relabelled `# <workspace>: ...` as they
// pass through and summed into the one closing line of the whole run, printed last and alone.
import { readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const SUMMARY = /^(\d+) passed, (\d+) failed, (\d+) skipped$/;

async function runWorkspace(dir, name) {
  const child = spawn('npm', ['test', '--silent'], { cwd: dir, stdio: ['inherit', 'pipe', 'inherit'] });
  let last;
  const rl = createInterface({ input: child.stdout, crlfDelay: Infinity });
  rl.on('line', (line) => {
    const m = SUMMARY.exec(line);
    if (m) {
      last = m.slice(1, 4).map(Number);
      process.stdout.write(`# ${name}: ${line}\n`);
    } else process.stdout.write(`${line}\n`);
  });
  const [code] = await Promise.all([
    new Promise((resolve) => child.on('close', (c) => resolve(c ?? 1))),
    new Promise((resolve) => rl.on('close', resolve)),
  ]);
  return { code, counts: last };
}

// the root is this repository; a test passes another (a scratch workspace) as the first argument
async function main(root = fileURLToPath(new URL('..', import.meta.url))) {
  const { workspaces } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  let status = 0;
  const sum = [0, 0, 0];
  for (const ws of workspaces) {
    const pkg = JSON.parse(readFileSync(join(root, ws, 'package.json'), 'utf8'));
    if (!pkg.scripts?.test) continue;
    console.log(`# workspace ${pkg.name}: npm test`);
    const { code, counts } = await runWorkspace(join(root, ws), pkg.name);
    if (code !== 0) status = code;
    if (counts) counts.forEach((n, i) => (sum[i] += n));
    else {
      // a workspace whose runner prints no summary cannot be counted: count it as one failure
      console.log(`# ${pkg.name}: no "N passed, N failed, N skipped" line; counted as a failure`);
      sum[1] += 1;
      status ||= 1;
    }
  }
  console.log(`${sum[0]} passed, ${sum[1]} failed, ${sum[2]} skipped`);
  return status;
}

if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href)
  process.exitCode = await main(process.argv[2]);
