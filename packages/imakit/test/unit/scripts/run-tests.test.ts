import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, run, tempDir } from '../../helpers.ts';

// scripts/run-tests.mjs (the package's `npm test`) and the root scripts/run-all-tests.mjs: skips
// are counted and refused unless allow-listed, and the run ends with one `N passed, N failed, N
// skipped` line. The runner is driven over scratch test files, so these checks do not depend on
// which skips this machine happens to produce.
const RUNNER = join(REPO_ROOT, 'scripts/run-tests.mjs');
const ROOT_RUNNER = join(REPO_ROOT, '../../scripts/run-all-tests.mjs');

// without NODE_TEST_CONTEXT: a nested runner would report to this test's runner, not to its stdout
const { NODE_TEST_CONTEXT: _parent, ...ENV } = process.env;

function runTests(files: Record<string, string>): { status: number; lines: string[] } {
  const { dir, cleanup } = tempDir();
  try {
    for (const [name, body] of Object.entries(files)) writeFileSync(join(dir, name), body);
    // cwd: the package, so `--import tsx` resolves
    const r = run(process.execPath, [RUNNER, dir], {
      cwd: REPO_ROOT,
      env: { ...ENV, TEST_CONCURRENCY: '1' },
    });
    return { status: r.status, lines: r.stdout.trimEnd().split('\n') };
  } finally {
    cleanup();
  }
}

const HEAD = "import { test } from 'node:test';\n";

test('a skip whose reason is not allow-listed fails the run and is listed with its reason', () => {
  const r = runTests({
    'a.test.ts': `${HEAD}test('passes', () => {});\ntest('env', { skip: 'tool missing' }, () => {});\n`,
    'b.test.ts': `${HEAD}test('outer', async (t) => { await t.test('inner', (s) => s.skip()); });\n`,
  });
  assert.equal(r.status, 1);
  assert.ok(r.lines.includes('#   NOT ALLOWED: env -- tool missing'), r.lines.join('\n'));
  assert.ok(r.lines.includes('#   NOT ALLOWED: inner -- (no reason given)'));
  assert.equal(r.lines.at(-1), '2 passed, 0 failed, 2 skipped');
});

test('only allow-listed skips: the run passes, and the allow-list is printed', () => {
  const r = runTests({
    'a.test.ts': `${HEAD}test('p', () => {});\ntest('uuid', (t) => t.skip('cannot open the block device holding /tmp/x: EACCES'));\n`,
  });
  assert.equal(r.status, 0, r.lines.join('\n'));
  assert.ok(r.lines.some((l) => l.startsWith('#   ^cannot open the block device holding')));
  assert.ok(r.lines.some((l) => l.startsWith('#   allowed: uuid -- cannot open')));
  assert.equal(r.lines.at(-1), '1 passed, 0 failed, 1 skipped');
});

test('failures and files that do not load are counted as failed', () => {
  const r = runTests({
    'a.test.ts': `${HEAD}import assert from 'node:assert';\ntest('f', () => assert.equal(1, 2));\ntest('p', () => {});\n`,
    'b.test.ts': `import './missing-module.ts';\n`,
  });
  assert.equal(r.status, 1);
  assert.equal(r.lines.at(-1), '1 passed, 2 failed, 0 skipped');
});

test('root npm test: sums the workspaces, relabels their lines, fails if one fails or prints no summary', () => {
  const { dir, cleanup } = tempDir();
  try {
    const ws = (name: string, script: string): void => {
      mkdirSync(join(dir, name));
      writeFileSync(join(dir, name, 'package.json'), JSON.stringify({ name, scripts: { test: script } }));
    };
    ws('one', "node -e \"console.log('ok 1'); console.log('3 passed, 0 failed, 1 skipped')\"");
    ws('two', 'node -e "console.log(\'5 passed, 2 failed, 0 skipped\'); process.exit(1)"');
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ private: true, workspaces: ['one', 'two'] }));
    const r = run(process.execPath, [ROOT_RUNNER, dir], { env: ENV });
    const lines = r.stdout.trimEnd().split('\n');
    assert.equal(r.status, 1);
    assert.ok(lines.includes('# one: 3 passed, 0 failed, 1 skipped'), r.stdout);
    assert.equal(lines.filter((l) => /^\d+ passed, \d+ failed, \d+ skipped$/.test(l)).length, 1);
    assert.equal(lines.at(-1), '8 passed, 2 failed, 1 skipped');

    ws('three', 'node -e "console.log(1)"');
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ private: true, workspaces: ['one', 'three'] }));
    const r2 = run(process.execPath, [ROOT_RUNNER, dir], { env: ENV });
    assert.equal(r2.status, 1, 'a workspace with no summary line fails the run');
    assert.equal(r2.stdout.trimEnd().split('\n').at(-1), '3 passed, 1 failed, 1 skipped');
  } finally {
    cleanup();
  }
});
