/** `imakit label` on generated trees: labels, counts, dry run, resume, repair, JSON, EVM. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { main } from '../../../src/cli/main.ts';
import { memoryIo } from '../../../src/cli/io.ts';
import { getXattr, setXattr } from '../../../src/host/fs/xattr.ts';
import { tempDir, vectorPath, run } from '../../helpers.ts';
import { globToMatcher } from '../../../src/host/fs/walk.ts';

const RSA_KEY = vectorPath('rsa2048.key');
const RSA_CER = vectorPath('rsa2048.cer');
const P256_KEY = vectorPath('p256.key');
const P256_CER = vectorPath('p256.cer');

function makeTree(dir: string): string[] {
  const files: string[] = [];
  for (let d = 0; d < 3; d++) {
    mkdirSync(join(dir, `d${d}`, 'sub'), { recursive: true });
    for (let i = 0; i < 4; i++) {
      const p = join(dir, `d${d}`, i % 2 ? 'sub' : '', `f${i}.bin`);
      writeFileSync(p, randomBytes(100 + i * 3000));
      files.push(p);
    }
  }
  symlinkSync('d0/f0.bin', join(dir, 'link'));
  writeFileSync(join(dir, 'skip.log'), 'excluded');
  return files;
}

async function label(args: string[]) {
  const io = memoryIo();
  const status = await main(['label', '--exclude', '*.log', ...args], io);
  return { status, out: io.out(), err: io.err() };
}

test('label --sign: every regular file signed (evmctl verifies), summary counts, symlink skipped, exclude', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const files = makeTree(dir);
    const r = await label([
      '--sign',
      '--key',
      RSA_KEY,
      '-a',
      'sha256',
      '-x',
      '--exclude',
      '*.log',
      '--json',
      dir,
    ]);
    assert.equal(r.status, 0, r.err);
    const rep = JSON.parse(r.out);
    assert.deepEqual(
      {
        files: rep.files,
        labelled: rep.labelled,
        unchanged: rep.unchanged,
        failed: rep.failed,
        skipped: rep.skipped,
        dryRun: rep.dryRun,
      },
      { files: 12, labelled: 12, unchanged: 0, failed: 0, skipped: 1, dryRun: false },
    );
    assert.equal(typeof rep.bytes, 'number');
    assert.ok(Array.isArray(rep.failures));
    assert.equal(getXattr(join(dir, 'skip.log'), 'user.ima'), null);
    const v = run('evmctl', ['ima_verify', '--xattr-user', '--key', RSA_CER, ...files]);
    assert.equal(v.status, 0, v.stderr);
    // identical to what evmctl writes (deterministic RSA)
    const e = run('evmctl', ['ima_sign', '-n', '-a', 'sha256', '--key', RSA_KEY, files[3]!]);
    assert.equal(Buffer.from(getXattr(files[3]!, 'user.ima')!).toString('hex'), e.stdout.trim());
  } finally {
    cleanup();
  }
});

test('--dry-run writes nothing; a second run rewrites nothing (resume); a corrupted label gets fixed', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const files = makeTree(dir);
    const dry = await label(['--key', RSA_KEY, '-x', dir]);
    assert.equal(dry.status, 0);
    const d = await label(['--key', RSA_KEY, '-x', '--dry-run', '--json', dir]);
    assert.equal(JSON.parse(d.out).unchanged, 12);
    // now a fresh tree for the real dry-run check
    const { dir: dir2, cleanup: c2 } = tempDir();
    try {
      const f2 = makeTree(dir2);
      const r = JSON.parse((await label(['--key', RSA_KEY, '-x', '--dry-run', '--json', dir2])).out);
      assert.equal(r.labelled, 12);
      assert.equal(r.dryRun, true);
      for (const f of f2) assert.equal(getXattr(f, 'user.ima'), null);
    } finally {
      c2();
    }
    // corrupt one label and change another file's content
    setXattr(files[0]!, 'user.ima', new Uint8Array([0x04, 0x04, ...new Uint8Array(32)]));
    writeFileSync(files[5]!, 'new content');
    const again = JSON.parse((await label(['--key', RSA_KEY, '-x', '--json', dir])).out);
    assert.equal(again.labelled, 2);
    assert.equal(again.unchanged, 10);
    assert.equal(
      run('evmctl', ['ima_verify', '--xattr-user', '--key', RSA_CER, files[0]!, files[5]!]).status,
      0,
    );
    const text = await label(['--key', RSA_KEY, '-x', dir]);
    assert.match(text.out, /12 files: 0 labelled, 12 already correct, 0 failed/);
  } finally {
    cleanup();
  }
});

test('ECDSA labels resume too: a valid existing randomized signature is kept', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const files = makeTree(dir);
    assert.equal((await label(['--key', P256_KEY, '-x', dir])).status, 0);
    const before = Buffer.from(getXattr(files[1]!, 'user.ima')!).toString('hex');
    const r = JSON.parse((await label(['--key', P256_KEY, '-x', '--json', dir])).out);
    assert.equal(r.unchanged, 12);
    assert.equal(Buffer.from(getXattr(files[1]!, 'user.ima')!).toString('hex'), before);
    assert.equal(run('evmctl', ['ima_verify', '--xattr-user', '--key', P256_CER, ...files]).status, 0);
  } finally {
    cleanup();
  }
});

test('hash labels on security.ima and EVM portable signatures that evmctl verifies', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const files = makeTree(dir);
    const h = await label(['--hash', '-a', 'sha256', '--json', dir]);
    assert.equal(h.status, 0, h.out + h.err);
    const e = run('evmctl', ['ima_hash', '-n', '-a', 'sha256', files[2]!]);
    assert.equal(Buffer.from(getXattr(files[2]!, 'security.ima')!).toString('hex'), e.stdout.trim());
    const p = await label(['--hash', '--key', RSA_KEY, '--evm', 'portable', '--json', dir]);
    assert.equal(p.status, 0, p.out + p.err);
    assert.equal(JSON.parse(p.out).labelled, 12);
    for (const f of files.slice(0, 3)) assert.equal(run('evmctl', ['verify', '--key', RSA_CER, f]).status, 0);
    assert.equal(
      JSON.parse((await label(['--hash', '--key', RSA_KEY, '--evm', 'portable', '--json', dir])).out)
        .unchanged,
      12,
    );
  } finally {
    cleanup();
  }
});

test('bad options and unreadable roots give clear errors', async () => {
  const r = await label(['--sign', '/nonexistent-imakit']);
  assert.equal(r.status, 2);
  const { dir, cleanup } = tempDir();
  try {
    const m = await label(['--key', RSA_KEY, '-x', '--json', join(dir, 'missing')]);
    assert.equal(m.status, 3);
    assert.equal(JSON.parse(m.out).failures[0].code, 'E_IO_READ');
  } finally {
    cleanup();
  }
});

test('exclude globs', () => {
  assert.ok(globToMatcher('*.log').re.test('a.log'));
  assert.ok(!globToMatcher('*.log').anchored);
  const m = globToMatcher('d0/**/f?.bin');
  assert.ok(m.anchored && m.re.test('d0/sub/f1.bin') && m.re.test('d0/f1.bin') && !m.re.test('d1/f1.bin'));
});
