/**
 * labelTree on real trees (issue 10): hard links labelled once per inode (item 1), writes through
 * the hashed descriptor only, never through a symlink swapped in (item 15), signatures never
 * downgraded to hashes and `keep` mode (item 2). Labels are checked with evmctl and getfattr.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, linkSync, mkdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { labelTree } from '../../../../src/host/label/label-tree.ts';
import { labelImaFile, loadSigningKeyFile } from '../../../../src/host/label/label-file.ts';
import { evmLabelFile } from '../../../../src/host/label/evm-file.ts';
import { resolveHashAlgo } from '../../../../src/core/hash/hash-algo.ts';
import { resolveEvmConfig } from '../../../../src/core/evm/evm-config.ts';
import { setXattr } from '../../../../src/host/fs/xattr.ts';
import { evmRefHmac, tempDir, vectorPath, run } from '../../../helpers.ts';

const RSA_KEY = vectorPath('rsa2048.key');
const RSA_CER = vectorPath('rsa2048.cer');
const sha256 = resolveHashAlgo('sha256');

/** `getfattr -n NAME -e hex` of a file, or null when absent (an independent reader). */
function getfattr(path: string, name: string): string | null {
  const r = run('getfattr', ['--absolute-names', '-h', '-n', name, '-e', 'hex', path]);
  if (r.status !== 0) return null;
  const m = new RegExp(`^${name.replace('.', '\\.')}=0x([0-9a-f]+)$`, 'm').exec(r.stdout);
  return m ? m[1]! : null;
}

test('hard links: one inode hashed and labelled once, every path reported, no E_IO_CHANGED (issue 10 item 1)', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const key = loadSigningKeyFile(RSA_KEY);
    const size = 3 << 20; // large enough that a second hash through another link overlaps our write
    const inodes = 6;
    const paths: string[] = [];
    mkdirSync(join(dir, 'a'));
    mkdirSync(join(dir, 'b'));
    for (let i = 0; i < inodes; i++) {
      const p = join(dir, 'a', `f${i}`);
      writeFileSync(p, randomBytes(size));
      paths.push(p);
      for (const d of ['a', 'b']) {
        const l = join(dir, d, `link${i}-${d}`);
        linkSync(p, l);
        paths.push(l);
      }
    }
    for (const workers of [1, 2]) {
      for (const p of paths.filter((_, i) => i % 3 === 0))
        setXattr(p, 'security.ima', new Uint8Array([1, 2]));
      const r = await labelTree({ roots: [dir], ima: 'sign', algo: sha256, key, workers });
      assert.deepEqual(r.failures, [], `workers ${workers}`);
      assert.equal(r.files, paths.length);
      assert.equal(r.inodes, inodes);
      assert.equal(r.hardLinks, paths.length - inodes);
      assert.equal(r.labelled, paths.length, 'every path reported with its inode outcome');
      assert.deepEqual([...r.changed].sort(), [...paths].sort());
      assert.equal(r.bytes, inodes * size, 'each inode read once');
      // the signatures verify with evmctl through every path
      const v = run('evmctl', ['ima_verify', '--key', RSA_CER, ...paths]);
      assert.equal(v.status, 0, v.stderr + v.stdout);
      // a re-run finds every path already correct
      const again = await labelTree({ roots: [dir], ima: 'sign', algo: sha256, key, workers });
      assert.equal(again.unchanged, paths.length);
      assert.equal(again.labelled, 0);
    }
  } finally {
    cleanup();
  }
});

test('labelTree writes through the hashed descriptor: a symlink swapped in gets nothing, its target is untouched (item 15)', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const key = loadSigningKeyFile(RSA_KEY);
    mkdirSync(join(dir, 'tree'));
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'a file outside the tree that must stay unlabelled');
    const path = join(dir, 'tree', 'f');
    writeFileSync(path, randomBytes(5000));
    const moved = join(dir, 'moved');
    const r = await labelTree({
      roots: [join(dir, 'tree')],
      ima: 'sign',
      algo: sha256,
      key,
      evm: { kind: 'portable', config: resolveEvmConfig('debian-6.1'), uuid: 'none' },
      workers: 1,
      beforeWrite: (p) => {
        renameSync(p, moved);
        symlinkSync(victim, p);
      },
    });
    assert.deepEqual(r.failures, []);
    assert.equal(r.labelled, 1);
    assert.equal(getfattr(victim, 'security.ima'), null, 'the symlink target got no signature');
    assert.equal(getfattr(victim, 'security.evm'), null);
    assert.notEqual(getfattr(moved, 'security.ima'), null);
    const v = run('evmctl', ['ima_verify', '--key', RSA_CER, moved]);
    assert.equal(v.status, 0, v.stderr);
    assert.equal(run('evmctl', ['verify', '--key', RSA_CER, moved]).status, 0);
  } finally {
    cleanup();
  }
});

test('labelImaFile and evmLabelFile write on the opened file, not through a swapped symlink (item 15)', () => {
  const { dir, cleanup } = tempDir();
  try {
    const key = loadSigningKeyFile(RSA_KEY);
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'victim');
    for (const which of ['ima', 'evm'] as const) {
      const path = join(dir, `f-${which}`);
      const moved = join(dir, `moved-${which}`);
      writeFileSync(path, randomBytes(3000));
      const swap = (p: string): void => {
        renameSync(p, moved);
        symlinkSync(victim, p);
      };
      if (which === 'ima') labelImaFile(path, { kind: 'sign', algo: sha256, key }, { beforeWrite: swap });
      else
        evmLabelFile(path, {
          evm: { kind: 'portable', key, algo: sha256 },
          input: { config: resolveEvmConfig('debian-6.1'), uuid: 'none' },
          ima: { kind: 'sign', algo: sha256, key },
          beforeWrite: swap,
        });
      assert.equal(getfattr(victim, 'security.ima'), null, which);
      assert.equal(getfattr(victim, 'security.evm'), null, which);
      assert.equal(run('evmctl', ['ima_verify', '--key', RSA_CER, moved]).status, 0, which);
    }
  } finally {
    cleanup();
  }
});

test('--hash never replaces a signature; keep mode rewrites only security.evm (item 2)', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const signed = join(dir, 'signed');
    const plain = join(dir, 'plain');
    writeFileSync(signed, randomBytes(2000));
    writeFileSync(plain, randomBytes(2000));
    const s = run('evmctl', ['ima_sign', '-a', 'sha256', '--key', RSA_KEY, signed]);
    assert.equal(s.status, 0, s.stderr);
    const sig = getfattr(signed, 'security.ima');
    const hmacKey = new Uint8Array(randomBytes(32));
    const evm = {
      kind: 'hmac' as const,
      config: resolveEvmConfig('debian-6.1'),
      uuid: new Uint8Array(16),
      hmacKey,
    };
    const r = await labelTree({ roots: [dir], ima: 'hash', algo: sha256, evm, workers: 1 });
    assert.deepEqual(r.failures, []);
    assert.equal(r.signaturesKept, 1);
    assert.equal(getfattr(signed, 'security.ima'), sig, 'signature kept');
    assert.equal(getfattr(plain, 'security.ima')?.slice(0, 4), '0404', 'unsigned file hashed');
    // keep mode after a chmod (the preflight fix for invalid-HMAC): security.ima untouched, even a
    // hash on changed content; security.evm recomputed and equal to the independent reference HMAC
    writeFileSync(plain, 'new content');
    chmodSync(plain, 0o600);
    const imaBefore = getfattr(plain, 'security.ima');
    const keyFile = join(dir, 'hmac.key');
    writeFileSync(keyFile, hmacKey);
    const k = await labelTree({ roots: [signed, plain], ima: 'keep', algo: sha256, evm, workers: 1 });
    assert.deepEqual(k.failures, []);
    assert.deepEqual(k.changed, [plain], 'only the chmod-ed file needed a new HMAC');
    assert.equal(getfattr(plain, 'security.ima'), imaBefore);
    assert.equal(getfattr(signed, 'security.ima'), sig);
    const zero = '00000000-0000-0000-0000-000000000000';
    for (const f of [signed, plain])
      assert.equal(getfattr(f, 'security.evm'), '02' + evmRefHmac(f, keyFile, zero), f);
  } finally {
    cleanup();
  }
});
