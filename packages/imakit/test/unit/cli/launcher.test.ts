/**
 * The launcher (bin/imakit.js, bin/entry.js) runs the bundled CLI only while its build is newer
 * than every source file (in a checkout; an installed build is trusted without a walk), and the
 * bundle (scripts/build.mjs into a scratch package) gives the same output as the sources for the
 * evmctl drop-in and for commands that start each kind of worker thread: the list-replay offload
 * (a list over 4 MiB), the hash pool (`label`) and the preflight pool (`--workers 2`). The bundle is
 * compiled with its V8 code cache.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, rmSync, symlinkSync, utimesSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, run, tempDir } from '../../helpers.ts';
import { chooseEntry, STAMP, stampText } from '../../../bin/entry.js';
import { buildList } from '../core/ima-list/build-list.ts';
import { renderEvmctlPcrs } from '../../../src/core/tcg/pcr-values.ts';
import { OFFLOAD_MIN_BYTES } from '../../../src/host/attest/list-replay-offload.ts';

/** A report without what differs run to run: timings (files per second, durations), pool order. */
function untimed(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(untimed);
  if (x === null || typeof x !== 'object') return x;
  return Object.fromEntries(
    Object.entries(x)
      .filter(([k]) => !/persecond|seconds|duration|elapsed|^ms$|Ms$/i.test(k))
      // label's `changed` lists paths in the order the worker pool finished them
      .map(([k, v]) => [k, k === 'changed' && Array.isArray(v) ? [...(v as string[])].sort() : untimed(v)]),
  );
}

test('chooseEntry: the bundle only when its stamp is newer than every source file', () => {
  const { dir, cleanup } = tempDir();
  try {
    mkdirSync(join(dir, 'src/core/deep'), { recursive: true });
    writeFileSync(join(dir, 'src/core/deep/a.ts'), '');
    writeFileSync(join(dir, 'src/b.ts'), '');
    assert.equal(chooseEntry(dir, {}).kind, 'source', 'no build');
    mkdirSync(join(dir, 'dist'));
    writeFileSync(join(dir, 'dist', STAMP), '');
    assert.deepEqual(
      chooseEntry(dir, {}),
      { kind: 'source', reason: 'no build (npm run build)' },
      'no bundle',
    );
    writeFileSync(join(dir, 'dist/cli.cjs'), '');
    const old = new Date(Date.now() - 60_000);
    utimesSync(join(dir, 'src/core/deep/a.ts'), old, old);
    utimesSync(join(dir, 'src/b.ts'), old, old);
    assert.deepEqual(chooseEntry(dir, {}), { kind: 'dist', reason: 'build is up to date' });
    assert.equal(chooseEntry(dir, { IMAKIT_FROM_SOURCE: '1' }).kind, 'source');
    const later = new Date(Date.now() + 60_000);
    utimesSync(join(dir, 'src/core/deep/a.ts'), later, later);
    const e = chooseEntry(dir, {});
    assert.equal(e.kind, 'source');
    assert.match(e.reason, /src\/core\/deep\/a\.ts is newer/);

    // the stamp a build writes: its start time and file list decide, not the stamp's mtime
    utimesSync(join(dir, 'src/core/deep/a.ts'), old, old);
    writeFileSync(join(dir, 'dist', STAMP), stampText(dir, Date.now() - 30_000));
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'dist', STAMP), 'utf8')).sources.sort(), [
      'b.ts',
      'core/deep/a.ts',
    ]);
    assert.equal(chooseEntry(dir, {}).kind, 'dist');
    // saved after the build started (while it ran): stale, although older than the stamp file
    const during = new Date(Date.now() - 10_000);
    utimesSync(join(dir, 'src/b.ts'), during, during);
    assert.match(chooseEntry(dir, {}).reason, /src\/b\.ts is newer/);
    utimesSync(join(dir, 'src/b.ts'), old, old);
    assert.equal(chooseEntry(dir, {}).kind, 'dist');
    // a listed file that is gone
    rmSync(join(dir, 'src/b.ts'));
    assert.match(chooseEntry(dir, {}).reason, /src\/b\.ts is newer than the build \(or gone\)/);
  } finally {
    cleanup();
  }
});

test('chooseEntry: an installed package (under node_modules) runs its build without looking at src/', () => {
  const { dir, cleanup } = tempDir();
  try {
    const root = join(dir, 'node_modules/imakit');
    mkdirSync(join(root, 'dist'), { recursive: true });
    writeFileSync(join(root, 'dist', STAMP), '');
    assert.equal(chooseEntry(root, {}).kind, 'source', 'no bundle');
    writeFileSync(join(root, 'dist/cli.cjs'), '');
    // no src/ at all: a walk would throw
    assert.deepEqual(chooseEntry(root, {}), { kind: 'dist', reason: 'installed package' });
    assert.equal(chooseEntry(root, { IMAKIT_FROM_SOURCE: '1' }).kind, 'source');
  } finally {
    cleanup();
  }
});

test('the compiled CLI equals the sources, worker threads included', () => {
  const { dir, cleanup } = tempDir();
  try {
    // a scratch package: copies of what the build reads, links to what it only loads
    const pkg = join(dir, 'pkg');
    mkdirSync(pkg);
    for (const f of ['package.json', 'tsconfig.json', 'tsconfig.build.json'])
      cpSync(join(REPO_ROOT, f), join(pkg, f));
    for (const d of ['src', 'bin', 'scripts', 'test/vectors'])
      cpSync(join(REPO_ROOT, d), join(pkg, d), { recursive: true });
    // dependencies are hoisted to the workspace root's node_modules
    symlinkSync(join(REPO_ROOT, '../../node_modules'), join(pkg, 'node_modules'));
    symlinkSync(join(REPO_ROOT, 'build'), join(pkg, 'build'));
    const b = run(process.execPath, ['scripts/build.mjs'], { cwd: pkg });
    assert.equal(b.status, 0, b.stdout + b.stderr);

    // a list large enough for the worker offload, its PCRs, a small tree
    const l = buildList(Math.ceil(OFFLOAD_MIN_BYTES / 100) + 500, { banks: ['sha1', 'sha256'] });
    assert.ok(l.bytes.length > OFFLOAD_MIN_BYTES);
    writeFileSync(join(dir, 'list'), l.bytes);
    for (const bank of ['sha1', 'sha256'] as const)
      writeFileSync(
        join(dir, `pcrs_${bank}`),
        renderEvmctlPcrs(l.pcrs.get(bank)!, bank === 'sha1' ? 20 : 32),
      );
    const tree = join(dir, 'tree');
    mkdirSync(join(tree, 'bin'), { recursive: true });
    for (let i = 0; i < 20; i++) writeFileSync(join(tree, `f${i}`), `file ${i}\n`.repeat(i + 1));
    cpSync('/bin/true', join(tree, 'bin/true'));

    // the evmctl drop-in on a file signed by evmctl, and on one it did not sign
    for (const f of ['good', 'bad']) writeFileSync(join(dir, f), `${f}\n`);
    const key = join(REPO_ROOT, 'test/vectors/rsa2048.key');
    const s = run('evmctl', ['ima_sign', '-a', 'sha256', '-k', key, '--sigfile', join(dir, 'good')]);
    assert.equal(s.status, 0, s.stderr);
    const cert = join(REPO_ROOT, 'test/vectors/rsa2048.cer');
    const env = { ...process.env, IMAKIT_LAUNCH_TRACE: '1' };
    for (const f of ['good', 'bad']) {
      const argv = ['evmctl', 'ima_verify', '--sigfile', '--key', cert, join(dir, f)];
      const bundled = run(process.execPath, [join(pkg, 'bin/imakit.js'), ...argv], { env, cwd: dir });
      const source = run(process.execPath, [join(pkg, 'bin/imakit.js'), ...argv], {
        env: { ...env, IMAKIT_FROM_SOURCE: '1' },
        cwd: dir,
      });
      // the bundle ran, with its code cache accepted
      assert.equal(bundled.stderr.split('\n')[0], 'imakit: dist (build is up to date)', bundled.stderr);
      assert.doesNotMatch(bundled.stderr, /without the code cache/);
      assert.equal(bundled.status, f === 'good' ? 0 : 1, bundled.stderr);
      assert.equal(bundled.status, source.status);
      assert.equal(bundled.stdout, source.stdout);
      assert.equal(
        bundled.stderr.split('\n').slice(1).join('\n'),
        source.stderr.split('\n').slice(1).join('\n'),
      );
    }

    const commands = [
      [
        'log',
        'verify',
        join(dir, 'list'),
        '--pcrs',
        `sha1,${join(dir, 'pcrs_sha1')}`,
        '--pcrs',
        `sha256,${join(dir, 'pcrs_sha256')}`,
        '--json',
      ],
      ['label', tree, '--hash', '--dry-run', '--workers', '2', '--json'],
      ['preflight', tree, '--builtin', 'appraise_tcb', '--profile', 'debian-6.1', '--workers', '2', '--json'],
    ];
    for (const argv of commands) {
      const compiled = run(process.execPath, [join(pkg, 'bin/imakit.js'), ...argv], { env, cwd: dir });
      const source = run(process.execPath, [join(pkg, 'bin/imakit.js'), ...argv], {
        env: { ...env, IMAKIT_FROM_SOURCE: '1' },
        cwd: dir,
      });
      assert.match(compiled.stderr, /^imakit: dist \(build is up to date\)/, argv[0]);
      assert.match(source.stderr, /^imakit: source \(IMAKIT_FROM_SOURCE=1\)/, argv[0]);
      assert.equal(compiled.status, source.status, `${argv[0]}: ${compiled.stderr}`);
      assert.ok(
        compiled.status === 0 || compiled.status === 1,
        `${argv[0]} exit ${compiled.status}: ${compiled.stderr}`,
      );
      assert.deepEqual(untimed(JSON.parse(compiled.stdout)), untimed(JSON.parse(source.stdout)), argv[0]);
    }
    // the list's verdict says it passed, so the offload ran to the end in the compiled worker
    const v = JSON.parse(
      run(process.execPath, [join(pkg, 'bin/imakit.js'), ...commands[0]!], { cwd: dir }).stdout,
    ) as { status: string };
    assert.equal(v.status, 'pass');
    assert.ok(JSON.parse(readFileSync(join(pkg, 'dist', STAMP), 'utf8')).sources.includes('cli/main.ts'));
  } finally {
    cleanup();
  }
});
