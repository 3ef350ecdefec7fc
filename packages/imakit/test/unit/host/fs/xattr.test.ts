/**
 * Xattr access through fs-xattr, cross-checked with getfattr/setfattr (attr package), on a fresh
 * temporary file. We run as root, so security.* and trusted.* are writable.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, symlinkSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import {
  getXattr,
  getXattrAsync,
  listXattrs,
  listXattrsAsync,
  readXattrSet,
  removeXattr,
  removeXattrAsync,
  setXattr,
  setXattrAsync,
} from '../../../../src/host/fs/xattr.ts';
import { toHex } from '../../../../src/core/bytes/bytes.ts';
import { isImakitError } from '../../../../src/errors.ts';
import { REPO_ROOT, run, tempDir } from '../../../helpers.ts';

const getfattrHex = (path: string, name: string): string | null => {
  const r = run('getfattr', ['--absolute-names', '-e', 'hex', '-n', name, path]);
  if (r.status !== 0) return null;
  const m = new RegExp(`^${name.replace(/\./g, '\\.')}=0x([0-9a-f]*)$`, 'm').exec(r.stdout);
  return m ? m[1]! : null;
};

test('binary round trips with NUL bytes for security.*, trusted.*, user.* (imakit ⇄ getfattr/setfattr)', () => {
  const { dir, cleanup } = tempDir();
  try {
    const f = join(dir, 'file');
    writeFileSync(f, 'x');
    for (const name of ['security.ima', 'security.evm', 'trusted.imakit', 'user.imakit']) {
      const value = new Uint8Array([0x00, 0x04, 0x00, ...randomBytes(40), 0x00]);
      setXattr(f, name, value);
      assert.deepEqual(getXattr(f, name), value, name);
      assert.equal(getfattrHex(f, name), toHex(value), `getfattr ${name}`);
      // the other direction: setfattr writes, imakit reads
      const other = randomBytes(17);
      other[3] = 0;
      assert.equal(run('setfattr', ['-n', name, '-v', `0x${other.toString('hex')}`, f]).status, 0);
      assert.equal(toHex(getXattr(f, name)!), other.toString('hex'));
    }
    // an empty value is a present value
    setXattr(f, 'user.empty', new Uint8Array(0));
    assert.deepEqual(getXattr(f, 'user.empty'), new Uint8Array(0));
    const names = listXattrs(f);
    for (const n of ['security.ima', 'security.evm', 'trusted.imakit', 'user.imakit', 'user.empty'])
      assert.ok(names.includes(n), n);
  } finally {
    cleanup();
  }
});

test('absent: null / false; readXattrSet keeps only present names', () => {
  const { dir, cleanup } = tempDir();
  try {
    const f = join(dir, 'file');
    writeFileSync(f, 'x');
    assert.equal(getXattr(f, 'security.ima'), null);
    assert.equal(removeXattr(f, 'user.nope'), false);
    setXattr(f, 'user.a', new Uint8Array([1]));
    assert.equal(removeXattr(f, 'user.a'), true);
    assert.equal(getXattr(f, 'user.a'), null);
    setXattr(f, 'security.ima', new Uint8Array([4, 4, 0]));
    setXattr(
      f,
      'security.capability',
      new Uint8Array([1, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
    );
    const set = readXattrSet(f, ['security.selinux', 'security.ima', 'security.capability']);
    assert.deepEqual([...set.keys()], ['security.ima', 'security.capability']);
    assert.deepEqual(set.get('security.ima'), new Uint8Array([4, 4, 0]));
  } finally {
    cleanup();
  }
});

test('async variants', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const f = join(dir, 'file');
    writeFileSync(f, 'x');
    const v = new Uint8Array([0, 1, 0, 2]);
    await setXattrAsync(f, 'user.x', v);
    assert.deepEqual(await getXattrAsync(f, 'user.x'), v);
    assert.equal(await getXattrAsync(f, 'user.y'), null);
    assert.ok((await listXattrsAsync(f)).includes('user.x'));
    assert.equal(await removeXattrAsync(f, 'user.x'), true);
    assert.equal(await removeXattrAsync(f, 'user.x'), false);
  } finally {
    cleanup();
  }
});

test('xattr calls follow symlinks (documented: callers lstat first)', () => {
  const { dir, cleanup } = tempDir();
  try {
    const f = join(dir, 'file');
    writeFileSync(f, 'x');
    symlinkSync(f, join(dir, 'link'));
    setXattr(f, 'user.t', new Uint8Array([7]));
    assert.deepEqual(getXattr(join(dir, 'link'), 'user.t'), new Uint8Array([7]));
  } finally {
    cleanup();
  }
});

test('errors carry a catalogue code and the path', () => {
  const { dir, cleanup } = tempDir();
  try {
    const missing = join(dir, 'missing');
    assert.throws(
      () => getXattr(missing, 'user.x'),
      (e) => isImakitError(e, 'E_XATTR_READ') && e.context.path === missing && /ENOENT/.test(e.message),
    );
    assert.throws(
      () => setXattr(missing, 'user.x', new Uint8Array(1)),
      (e) => isImakitError(e, 'E_XATTR_WRITE') && e.context.path === missing,
    );
    assert.throws(
      () => listXattrs(missing),
      (e) => isImakitError(e, 'E_XATTR_READ'),
    );
    // procfs has no user.* xattrs: ENOTSUP
    assert.throws(
      () => setXattr('/proc/self/status', 'user.x', new Uint8Array(1)),
      (e) => isImakitError(e, 'E_XATTR_UNSUPPORTED') && e.context.path === '/proc/self/status',
    );
    assert.throws(() => getXattr('', 'user.x'), TypeError);
    assert.throws(() => setXattr(missing, 'user.x', 'text' as unknown as Uint8Array), TypeError);
  } finally {
    cleanup();
  }
});

test('EPERM maps to E_PERMISSION (user.* on a device node is refused)', () => {
  // the kernel refuses user.* xattrs on special files with EPERM (fs/xattr.c xattr_permission)
  assert.throws(
    () => setXattr('/dev/null', 'user.imakit', new Uint8Array(1)),
    (e) => isImakitError(e, 'E_PERMISSION') && e.context.path === '/dev/null',
  );
});

test('EPERM writing security.* (no CAP_SYS_ADMIN, as uid 65534) is E_PERMISSION with the likely cause', () => {
  const { dir, cleanup } = tempDir();
  try {
    chmodSync(dir, 0o755);
    const file = join(dir, 'f');
    writeFileSync(file, 'x\n');
    chownSync(file, 65534, 65534);
    const lib = fileURLToPath(new URL('../../../../src/host/fs/xattr.ts', import.meta.url));
    const script = join(dir, 'child.mts');
    writeFileSync(
      script,
      `import { setXattr } from ${JSON.stringify(lib)};
process.setgid(65534);
process.setuid(65534);
try {
  setXattr(${JSON.stringify(file)}, 'security.ima', new Uint8Array([4, 4]));
  process.stdout.write('{"written":true}');
} catch (e) {
  process.stdout.write(JSON.stringify({ code: e.code, message: e.message }));
}
`,
    );
    chmodSync(script, 0o644);
    const r = spawnSync(process.execPath, ['--import', 'tsx', script], { encoding: 'utf8', cwd: REPO_ROOT });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { code?: string; message?: string };
    assert.equal(out.code, 'E_PERMISSION');
    assert.match(
      out.message ?? '',
      /f, field security\.ima: EPERM: .*\(security\.\* xattrs need CAP_SYS_ADMIN/,
    );
    assert.equal(getXattr(file, 'security.ima'), null);
  } finally {
    cleanup();
  }
});
