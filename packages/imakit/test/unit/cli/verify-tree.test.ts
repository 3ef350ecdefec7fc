/**
 * `imakit verify DIR` (issue 10 item 7): every regular file's security.ima and security.evm across
 * a tree, labels made by evmctl, damaged in known ways; the report must name each failing file
 * with its cause, count verdicts, and exit 1; a clean tree exits 0.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, chmodSync, linkSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { main } from '../../../src/cli/main.ts';
import { memoryIo } from '../../../src/cli/io.ts';
import { removeXattr } from '../../../src/host/fs/xattr.ts';
import { tempDir, vectorPath, run } from '../../helpers.ts';

const RSA_KEY = vectorPath('rsa2048.key');
const RSA_CER = vectorPath('rsa2048.cer');
const EVM_COUNTS = { pass: 5, fail: 1, error: 1 };

async function imakit(args: string[]) {
  const io = memoryIo();
  const status = await main(args, io);
  return { status, out: io.out(), err: io.err() };
}

function evmctl(args: string[]): void {
  const r = run('evmctl', args);
  assert.equal(r.status, 0, `evmctl ${args.join(' ')}: ${r.stderr}`);
}

/** A tree labelled by evmctl: signed files with portable EVM signatures, hashed files, a hard link. */
function makeTree(dir: string): Record<string, string> {
  mkdirSync(join(dir, 'bin'));
  mkdirSync(join(dir, 'etc'));
  const f: Record<string, string> = {};
  for (const n of ['s1', 's2', 's3', 's4']) {
    f[n] = join(dir, 'bin', n);
    writeFileSync(f[n]!, randomBytes(4000));
    evmctl(['sign', '--portable', '--imasig', '-a', 'sha256', '--key', RSA_KEY, f[n]!]);
  }
  for (const n of ['h1', 'h2']) {
    f[n] = join(dir, 'etc', n);
    writeFileSync(f[n]!, randomBytes(3000));
    evmctl(['sign', '--portable', '--imahash', '-a', 'sha256', '--key', RSA_KEY, f[n]!]);
  }
  f.link = join(dir, 'etc', 'link-to-s1');
  linkSync(f.s1!, f.link);
  symlinkSync('../bin/s2', join(dir, 'etc', 'sym'));
  return f;
}

test('verify DIR: a clean evmctl-labelled tree passes (ima and evm), hard link and symlink handled', async () => {
  const { dir, cleanup } = tempDir();
  try {
    makeTree(dir);
    const r = await imakit(['verify', '--key', RSA_CER, '--evm', '--no-uuid', '--json', dir]);
    assert.equal(r.status, 0, r.out + r.err);
    const rep = JSON.parse(r.out);
    assert.equal(rep.ok, true);
    assert.deepEqual(
      { files: rep.files, inodes: rep.inodes, passed: rep.passed, failed: rep.failed, skipped: rep.skipped },
      { files: 7, inodes: 6, passed: 7, failed: 0, skipped: 1 },
    );
    assert.deepEqual(rep.ima, { pass: 7 });
    assert.deepEqual(rep.evm, { pass: 7 });
  } finally {
    cleanup();
  }
});

test('verify DIR: each damaged file listed with its cause, counts per verdict, exit 1, text grouped by cause', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const f = makeTree(dir);
    appendFileSync(f.s2!, 'tampered'); // signature no longer matches the content
    appendFileSync(f.h1!, 'tampered'); // hash mismatch
    removeXattr(f.s3!, 'security.ima'); // no label (and the EVM signature covered it)
    chmodSync(f.s4!, 0o700); // metadata change: EVM fails, IMA still passes
    const r = await imakit(['verify', '--key', RSA_CER, '--evm', '--no-uuid', '--json', dir]);
    assert.equal(r.status, 1, r.err);
    const rep = JSON.parse(r.out);
    const causes = Object.fromEntries(
      rep.failures.map((x: { path: string; label: string; code: string }) => [
        x.path,
        `${x.label} ${x.code}`,
      ]),
    );
    assert.deepEqual(causes, {
      [f.s2!]: 'ima E_SIG_INVALID',
      [f.h1!]: 'ima E_VERIFY_HASH_MISMATCH',
      [f.s3!]: 'ima E_VERIFY_NO_LABEL',
      [f.s4!]: 'evm E_SIG_INVALID',
    });
    assert.deepEqual(rep.ima, { pass: 4, fail: 2, 'no-label': 1 });
    // EVM covers metadata, not content: only s3 (its security.ima is gone) and s4 (chmod) fail
    assert.deepEqual(rep.evm, EVM_COUNTS);
    assert.equal(rep.failed, 4);
    assert.equal(rep.passed, 3);
    // evmctl agrees on the IMA verdicts it can give
    assert.notEqual(run('evmctl', ['ima_verify', '--key', RSA_CER, f.s2!]).status, 0);
    assert.equal(run('evmctl', ['ima_verify', '--key', RSA_CER, f.s4!]).status, 0);
    const t = await imakit(['verify', '--key', RSA_CER, '--evm', '--no-uuid', dir]);
    assert.equal(t.status, 1);
    assert.match(t.out, /^ima fail \[E_SIG_INVALID\]: 1\n {2}.*bin\/s2: /m);
    assert.match(
      t.out,
      /7 files \(6 inodes\): 3 passed, 4 failed, 1 skipped; security\.ima: 4 pass, 2 fail, 1 no-label; security\.evm: 5 pass, 1 fail, 1 error$/m,
    );
    // walk options as label: excluding the damaged files leaves a passing tree
    const x = await imakit([
      'verify',
      '--key',
      RSA_CER,
      '--exclude',
      's2',
      '--exclude',
      'h1',
      '--exclude',
      's3',
      dir,
    ]);
    assert.equal(x.status, 0, x.out);
  } finally {
    cleanup();
  }
});

test('verify: a file argument keeps the per-file lines; a tree option on bad input is a usage error', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const f = makeTree(dir);
    const r = await imakit(['verify', '--key', RSA_CER, f.s1!]);
    assert.equal(r.status, 0);
    assert.match(r.out, /s1: ok \(signature rsa-2048 sha256 keyid /);
    const bad = await imakit(['verify', '--key', RSA_CER, '--type', 'x', dir]);
    assert.equal(bad.status, 2);
    const missing = await imakit(['verify', '--key', RSA_CER, join(dir, 'nope'), dir]);
    assert.equal(missing.status, 1);
    assert.match(missing.out, /unreadable error \[E_IO_READ\]: 1/);
  } finally {
    cleanup();
  }
});
