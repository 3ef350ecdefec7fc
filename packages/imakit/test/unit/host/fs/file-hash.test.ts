/**
 * Single-pass file hashing: digests vs node:crypto and coreutils sha256sum, fs-verity vs
 * `fsverity digest`, refusal of non-regular files, and detection of files changing while read.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  appendFileSync,
  mkdirSync,
  statSync,
  symlinkSync,
  writeFileSync,
  writeSync,
  openSync,
  closeSync,
} from 'node:fs';
import { join } from 'node:path';
import { hashFileSync } from '../../../../src/host/fs/file-hash.ts';
import { hash } from '../../../../src/core/hash/hash-algo.ts';
import { toHex } from '../../../../src/core/bytes/bytes.ts';
import { isImakitError } from '../../../../src/errors.ts';
import { run, tempDir } from '../../../helpers.ts';

test('several algorithms and fs-verity in one pass equal node:crypto, sha256sum and fsverity', () => {
  const { dir, cleanup } = tempDir();
  try {
    const buffer = Buffer.allocUnsafe(1 << 16); // a small reused buffer forces many reads
    for (const size of [0, 1, 4096, 65_536, 65_537, 3 * (1 << 20) + 11]) {
      const data = randomBytes(size);
      const p = join(dir, `f${size}`);
      writeFileSync(p, data);
      const r = hashFileSync(p, ['sha256', 'sha1', 'sm3', 'md4', 4 /* sha256 again by id */], {
        verity: 'sha256',
        buffer,
      });
      assert.equal(r.size, size);
      assert.deepEqual([...r.digests.keys()], ['sha256', 'sha1', 'sm3', 'md4']);
      assert.equal(toHex(r.digests.get('sha256')!), createHash('sha256').update(data).digest('hex'));
      assert.equal(toHex(r.digests.get('sha1')!), createHash('sha1').update(data).digest('hex'));
      assert.equal(toHex(r.digests.get('sm3')!), createHash('sm3').update(data).digest('hex'));
      assert.equal(toHex(r.digests.get('md4')!), toHex(hash('md4', data)));
      assert.equal(run('sha256sum', [p]).stdout.split(' ')[0], toHex(r.digests.get('sha256')!));
      const fv = run('fsverity', ['digest', p]).stdout;
      assert.equal(`sha256:${toHex(r.verity!)}`, fv.split(' ')[0]);
    }
  } finally {
    cleanup();
  }
});

test('unknown or unsupported algorithms fail before any I/O', () => {
  assert.throws(
    () => hashFileSync('/nonexistent', ['sha257']),
    (e) => isImakitError(e, 'E_HASH_UNKNOWN'),
  );
  assert.throws(
    () => hashFileSync('/nonexistent', ['wp512']),
    (e) => isImakitError(e, 'E_HASH_UNSUPPORTED'),
  );
});

test('non-regular files are refused with E_IO_NOT_REGULAR naming the path', () => {
  const { dir, cleanup } = tempDir();
  try {
    const f = join(dir, 'file');
    writeFileSync(f, 'x');
    const link = join(dir, 'link');
    symlinkSync(f, link);
    const sub = join(dir, 'sub');
    mkdirSync(sub);
    const fifo = join(dir, 'fifo');
    assert.equal(run('mkfifo', [fifo]).status, 0);
    for (const [p, kind] of [
      [link, /symbolic link/],
      [sub, /directory/],
      [fifo, /FIFO/],
      ['/dev/null', /character device/],
    ] as const)
      assert.throws(
        () => hashFileSync(p, ['sha256']),
        (e) => isImakitError(e, 'E_IO_NOT_REGULAR') && e.context.path === p && kind.test(e.message),
        p,
      );
    assert.throws(
      () => hashFileSync(join(dir, 'missing'), ['sha256']),
      (e) => isImakitError(e, 'E_IO_READ') && e.context.path === join(dir, 'missing'),
    );
  } finally {
    cleanup();
  }
});

test('a file appended while it is hashed → E_IO_CHANGED (injected through onProgress)', () => {
  const { dir, cleanup } = tempDir();
  try {
    const p = join(dir, 'grow');
    writeFileSync(p, randomBytes(3 << 20));
    let appended = false;
    assert.throws(
      () =>
        hashFileSync(p, ['sha256'], {
          onProgress: () => {
            if (!appended) appendFileSync(p, 'more');
            appended = true;
          },
        }),
      (e) => isImakitError(e, 'E_IO_CHANGED') && e.context.path === p,
    );
    // unchanged now: succeeds
    assert.equal(hashFileSync(p, ['sha256']).size, (3 << 20) + 4);
  } finally {
    cleanup();
  }
});

test('a same-size rewrite while hashed → E_IO_CHANGED (mtime/ctime)', () => {
  const { dir, cleanup } = tempDir();
  try {
    const p = join(dir, 'rewrite');
    writeFileSync(p, randomBytes(2 << 20));
    const sab = new Int32Array(new SharedArrayBuffer(4));
    let done = false;
    assert.throws(
      () =>
        hashFileSync(p, ['sha256'], {
          onProgress: () => {
            if (done) return;
            done = true;
            Atomics.wait(sab, 0, 0, 30); // step past the coarse kernel timestamp tick
            const fd = openSync(p, 'r+');
            writeSync(fd, Buffer.from('XYZ'), 0, 3, 10);
            closeSync(fd);
          },
        }),
      (e) => isImakitError(e, 'E_IO_CHANGED'),
    );
  } finally {
    cleanup();
  }
});

test('a file appended by another process while hashed → E_IO_CHANGED', async () => {
  const { dir, cleanup } = tempDir();
  const p = join(dir, 'log');
  writeFileSync(p, randomBytes(32 << 20));
  const size0 = statSync(p).size;
  const child = spawn('sh', ['-c', `while :; do printf x >> '${p}'; done`], { stdio: 'ignore' });
  try {
    // wait until the writer is running
    for (let i = 0; i < 200 && statSync(p).size === size0; i++) await new Promise((r) => setTimeout(r, 5));
    assert.ok(statSync(p).size > size0, 'appender did not start');
    assert.throws(
      () => hashFileSync(p, ['sha256', 'sha512']),
      (e) => isImakitError(e, 'E_IO_CHANGED') && e.context.path === p,
    );
  } finally {
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    cleanup();
  }
});
