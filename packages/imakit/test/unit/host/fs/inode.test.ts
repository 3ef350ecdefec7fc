/**
 * Inode metadata for EVM h_misc: lstat fields and the generation through FS_IOC_GETVERSION (native
 * addon) or `lsattr -vd` (e2fsprogs), on the ext4 temp directory and on tmpfs (no generation).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hasIoctlAddon, readGeneration, readInodeMeta, toInodeMeta } from '../../../../src/host/fs/inode.ts';
import { isImakitError } from '../../../../src/errors.ts';
import { run, tempDir } from '../../../helpers.ts';

const lsattrGeneration = (p: string): number => {
  const r = run('lsattr', ['-vd', p]);
  assert.equal(r.status, 0, r.stderr);
  return Number(/^\s*(\d+)/.exec(r.stdout)![1]);
};

test('the native addon is built (npm ci runs node-gyp for binding.gyp)', () => {
  assert.ok(
    hasIoctlAddon(),
    'build/Release/imakit_ioctl.node missing: run `npm ci` or `npx node-gyp rebuild`',
  );
});

test('regular file: lstat fields and generation equal stat(1) and lsattr -vd, via ioctl and via lsattr', () => {
  const { dir, cleanup } = tempDir();
  try {
    const f = join(dir, 'file');
    writeFileSync(f, 'hello', { mode: 0o640 });
    const m = readInodeMeta(f);
    const st = lstatSync(f, { bigint: true });
    assert.equal(m.ino, st.ino);
    assert.equal(m.mode, 0o100640);
    assert.equal(m.uid, Number(st.uid));
    assert.equal(m.gid, Number(st.gid));
    assert.equal(m.size, 5n);
    assert.ok(m.isRegular && !m.isDirectory && !m.isSymlink);
    assert.equal(m.generationSource, 'ioctl');
    assert.equal(m.generation, lsattrGeneration(f));
    const viaLsattr = readInodeMeta(f, { method: 'lsattr' });
    assert.equal(viaLsattr.generationSource, 'lsattr');
    assert.equal(viaLsattr.generation, m.generation);
    assert.deepEqual(toInodeMeta(m), {
      ino: m.ino,
      generation: m.generation,
      uid: m.uid,
      gid: m.gid,
      mode: m.mode,
    });
    // directories have generations too (the kernel HMACs directories)
    const d = readInodeMeta(dir);
    assert.ok(d.isDirectory);
    assert.equal(d.generation, lsattrGeneration(dir));
    assert.equal(d.mode & 0o170000, 0o040000);
  } finally {
    cleanup();
  }
});

test('given generation (evmctl --generation) and generation: false', () => {
  const { dir, cleanup } = tempDir();
  try {
    const f = join(dir, 'file');
    writeFileSync(f, '');
    const m = readInodeMeta(f, { generation: 12345 });
    assert.equal(m.generation, 12345);
    assert.equal(m.generationSource, 'given');
    const n = readInodeMeta(f, { generation: false });
    assert.equal(n.generation, null);
    assert.throws(() => readInodeMeta(f, { generation: 2 ** 32 }), RangeError);
  } finally {
    cleanup();
  }
});

test('symlinks are not followed and get no generation; missing path → E_IO_READ', () => {
  const { dir, cleanup } = tempDir();
  try {
    const f = join(dir, 'file');
    writeFileSync(f, 'x');
    const l = join(dir, 'link');
    symlinkSync(f, l);
    const m = readInodeMeta(l);
    assert.ok(m.isSymlink);
    assert.equal(m.mode & 0o170000, 0o120000);
    assert.equal(m.generation, null);
    assert.notEqual(m.ino, readInodeMeta(f).ino);
    assert.throws(
      () => toInodeMeta(m),
      (e) => isImakitError(e, 'E_INODE_GENERATION') && e.context.path === l,
    );
    assert.throws(
      () => readInodeMeta(join(dir, 'missing')),
      (e) => isImakitError(e, 'E_IO_READ') && e.context.path === join(dir, 'missing'),
    );
    // ELOOP from O_NOFOLLOW when asked directly for a symlink's generation
    assert.throws(
      () => readGeneration(l, 'ioctl'),
      (e) => isImakitError(e, 'E_IO_READ'),
    );
  } finally {
    cleanup();
  }
});

test('tmpfs has no FS_IOC_GETVERSION: generation null, E_INODE_GENERATION when required', (t) => {
  if (!existsSync('/dev/shm')) {
    t.skip('no /dev/shm tmpfs on this machine');
    return;
  }
  const dir = mkdtempSync('/dev/shm/imakit-');
  try {
    const f = join(dir, 'file');
    writeFileSync(f, 'x');
    for (const method of ['auto', 'ioctl', 'lsattr'] as const) {
      const m = readInodeMeta(f, { method });
      assert.equal(m.generation, null, method);
      assert.throws(
        () => toInodeMeta(m),
        (e) => isImakitError(e, 'E_INODE_GENERATION'),
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
