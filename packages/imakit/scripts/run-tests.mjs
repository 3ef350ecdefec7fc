#!/usr/bin/env node
// Node 20 has no glob for --test: collect *.test.ts under the given directories and run them
// through node's test runner with tsx. The TAP stream is passed through and read on the way: every
// skipped test is listed with its reason, and a skip whose reason is not on SKIP_ALLOWED fails the
// run (a skipped test must never count as passing, DEVELOPERS.md). The last line printed is exactly
// `N passed, N failed, N skipped`; the root `npm test` sums these lines across workspaces.
import { readdirSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';

/**
 * Skips that CI accepts, each with why the environment (not imakit) is at fault. Keep it short:
 * anything else that skips is a test that did not run, and the run fails.
 */
export const SKIP_ALLOWED = [
  {
    pattern: /^cannot open the block device holding /,
    why: 'sandboxes (containers, microVMs) forbid opening the root disk; the loop-mount test covers the same path',
  },
];

/** Read one TAP stream: counts from the runner's summary and each skip with its test name and reason. */
export function readTap(lines) {
  const skips = [];
  const totals = { pass: 0, fail: 0, cancelled: 0, skipped: 0, todo: 0 };
  let sawSummary = false;
  for (const line of lines) {
    // node escapes '#' in test names as '\#', so the first ' # SKIP' is the directive
    const s = /^\s*(?:not )?ok \d+ - (.*?) # SKIP(?: (.*))?$/.exec(line);
    if (s) skips.push({ name: s[1], reason: (s[2] ?? '').trim() });
    // the runner's own summary is at column 0 (subtests are indented)
    const m = /^# (pass|fail|cancelled|skipped|todo) (\d+)$/.exec(line);
    if (m) {
      totals[m[1]] = Number(m[2]);
      sawSummary = true;
    }
  }
  return { skips, totals, sawSummary };
}

/** The allow-list entry that accepts `reason`, or undefined. */
export function allowedSkip(reason) {
  return SKIP_ALLOWED.find((a) => a.pattern.test(reason));
}

function collect(dirs) {
  const files = [];
  const walk = (d) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.test.ts')) files.push(p);
    }
  };
  for (const d of dirs) walk(d);
  return files;
}

async function main() {
  const files = collect(process.argv.slice(2));
  if (files.length === 0) {
    console.error(`no test files under ${process.argv.slice(2).join(', ')}`);
    console.log('0 passed, 1 failed, 0 skipped');
    return 1;
  }
  const concurrency = process.env.TEST_CONCURRENCY ?? '2';
  const child = spawn(
    process.execPath,
    [
      '--conditions=source',
      '--import',
      'tsx',
      '--test',
      `--test-concurrency=${concurrency}`,
      '--test-reporter=tap',
      ...files,
    ],
    { stdio: ['inherit', 'pipe', 'inherit'] },
  );
  const lines = [];
  const rl = createInterface({ input: child.stdout, crlfDelay: Infinity });
  rl.on('line', (line) => {
    lines.push(line);
    process.stdout.write(`${line}\n`);
  });
  const [code] = await Promise.all([
    new Promise((resolve) => child.on('close', (c) => resolve(c ?? 1))),
    new Promise((resolve) => rl.on('close', resolve)),
  ]);
  const { skips, totals, sawSummary } = readTap(lines);
  let failed = totals.fail + totals.cancelled;
  console.log('# skip allow-list (any other skip fails the run):');
  for (const a of SKIP_ALLOWED) console.log(`#   ${a.pattern.source}  -- ${a.why}`);
  console.log(`# skipped tests: ${skips.length}`);
  let refused = 0;
  for (const s of skips) {
    const ok = allowedSkip(s.reason) !== undefined;
    if (!ok) refused++;
    console.log(`#   ${ok ? 'allowed' : 'NOT ALLOWED'}: ${s.name} -- ${s.reason || '(no reason given)'}`);
  }
  if (refused > 0) console.log(`# ${refused} skip(s) with a reason not on the allow-list: the run fails`);
  if (!sawSummary) {
    console.log('# the test runner printed no summary: the run fails');
    failed = Math.max(failed, 1);
  } else if (code !== 0 && failed === 0) {
    // e.g. a file that failed to load is reported by the exit status alone
    console.log(`# the test runner exited with status ${code}: the run fails`);
    failed = 1;
  }
  console.log(`${totals.pass} passed, ${failed} failed, ${skips.length} skipped`);
  return failed > 0 || refused > 0 || code !== 0 ? 1 : 0;
}

// importable (the tests read readTap and the allow-list) without running anything
if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href)
  process.exitCode = await main();
