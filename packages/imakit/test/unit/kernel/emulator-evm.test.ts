/**
 * EVM on the emulator (real-kernel.md §7, §8.3): kernel-written HMACs (recomputed here with an
 * independent implementation of the §7 layout), metadata changes, portable signatures, and the
 * failure causes after offline tampering.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createHash, createHmac } from 'node:crypto';
import { vectorPath } from '../../helpers.ts';
import { Emulator, ext4Fs } from '../../../src/kernel/emulator.ts';
import { getProfile } from '../../../src/kernel/profiles.ts';
import { runAccess } from '../../../src/kernel/workload.ts';
import type { Inode } from '../../../src/kernel/inode-state.ts';
import { loadPrivateKey, loadPublicKey } from '../../../src/core/keys/keys.ts';
import { signImaDigest } from '../../../src/core/labels/ima-signature.ts';
import { hashAlgoByName } from '../../../src/core/hash/hash-algo.ts';
import { evmInput } from '../../../src/core/evm/evm-input.ts';
import { resolveEvmConfig } from '../../../src/core/evm/evm-config.ts';

const UUID = '28b23254-9467-44c0-b6ba-34b12e85a26f';
const KEY = new Uint8Array(32).map((_, i) => i * 7 + 1);
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Independent HMAC per real-kernel.md §7: values (selinux, SMACK*, apparmor, ima, capability) ‖ <QIIIH2x ‖ uuid. */
function refHmac(i: Inode): string {
  const order = ['security.selinux', 'security.apparmor', 'security.ima', 'security.capability'];
  const misc = Buffer.alloc(24);
  misc.writeBigUInt64LE(BigInt(i.ino), 0);
  misc.writeUInt32LE(i.generation >>> 0, 8);
  misc.writeUInt32LE(i.uid, 12);
  misc.writeUInt32LE(i.gid, 16);
  misc.writeUInt16LE(i.mode, 20);
  const key = Buffer.alloc(128);
  Buffer.from(KEY).copy(key);
  const h = createHmac('sha1', key);
  for (const n of order) {
    const v = i.xattrs.get(n);
    if (v) h.update(v);
  }
  h.update(misc).update(Buffer.from(UUID.replace(/-/g, ''), 'hex'));
  return '02' + h.digest('hex');
}

const rsaKey = loadPrivateKey(new Uint8Array(readFileSync(vectorPath('rsa2048.key'))));
const rsaCertDer = new Uint8Array(readFileSync(vectorPath('rsa2048.cer')));

function boot(cmdline: string) {
  const emu = new Emulator({
    profile: getProfile('debian-6.1'),
    cmdline: `lsm=landlock,lockdown,yama,integrity,apparmor ${cmdline}`,
  });
  const fs = ext4Fs(UUID);
  emu.addKey('_evm', loadPublicKey(rsaCertDer), rsaCertDer);
  emu.loadEvmHmacKey(KEY);
  emu.loadPolicy(`appraise func=FILE_CHECK fsuuid=${UUID}\n`);
  return { emu, fs };
}

function portableSigned(
  emu: Emulator,
  fs: ReturnType<typeof ext4Fs>,
  path: string,
  content: Uint8Array,
): Inode {
  const ima = Uint8Array.of(0x04, 0x04, ...createHash('sha256').update(content).digest());
  const inode = emu.addFile({ path, fs, content, mode: 0o100644, xattrs: new Map([['security.ima', ima]]) });
  const input = evmInput({
    kind: 'portable',
    xattrs: inode.xattrs,
    meta: { ino: 0n, generation: 0, uid: 0, gid: 0, mode: 0o100644 },
    fsUuid: null,
    config: resolveEvmConfig('debian-6.1'),
  });
  const digest = new Uint8Array(createHash('sha256').update(input).digest());
  inode.xattrs.set(
    'security.evm',
    signImaDigest({ key: rsaKey, algo: hashAlgoByName('sha256'), digest, xattrType: 0x05 }),
  );
  return inode;
}

test('fix + evm=fix: the kernel writes security.ima and an HMAC, and keeps it valid across metadata changes', () => {
  const { emu, fs } = boot('ima_appraise=fix evm=fix ima_hash=sha256 ima_template=ima-sig');
  const bare = emu.addFile({ path: 'bare', fs, content: enc('bare\n'), generation: 0 });
  const hashed = emu.addFile({
    path: 'hashed',
    fs,
    content: enc('hashed\n'),
    uid: 1000,
    gid: 1000,
    mode: 0o100600,
    xattrs: new Map([
      ['security.ima', Uint8Array.of(0x04, 0x04, ...createHash('sha256').update('hashed\n').digest())],
    ]),
  });
  const r1 = runAccess(emu, { op: 'read', path: 'bare' }, 0, fs);
  assert.equal(r1.audit[0]?.fields.cause, 'missing-hash');
  const r2 = runAccess(emu, { op: 'read', path: 'hashed' }, 1, fs);
  assert.equal(r2.audit[0]?.fields.cause, 'missing-HMAC');
  for (const i of [bare, hashed])
    assert.equal(Buffer.from(i.xattrs.get('security.evm')!).toString('hex'), refHmac(i), i.path);
  runAccess(emu, { op: 'chmod', path: 'bare', mode: '600' }, 2, fs);
  runAccess(emu, { op: 'chown', path: 'hashed', owner: '0:0' }, 3, fs);
  const before = Buffer.from(bare.xattrs.get('security.evm')!).toString('hex');
  runAccess(emu, { op: 'setxattr', path: 'bare', name: 'user.note', value: '"hello"' }, 4, fs);
  assert.equal(
    Buffer.from(bare.xattrs.get('security.evm')!).toString('hex'),
    before,
    'user.* is not protected',
  );
  for (const i of [bare, hashed])
    assert.equal(
      Buffer.from(i.xattrs.get('security.evm')!).toString('hex'),
      refHmac(i),
      `${i.path} after metadata change`,
    );
  const created = runAccess(emu, { op: 'create', path: 'new', content: 'fresh\n' }, 5, fs);
  assert.equal(created.outcome, 'allowed');
  const n = emu.inode('new', fs)!;
  assert.deepEqual(
    n.xattrs.get('security.ima'),
    Uint8Array.of(0x04, 0x04, ...createHash('sha256').update('fresh\n').digest()),
  );
  assert.equal(Buffer.from(n.xattrs.get('security.evm')!).toString('hex'), refHmac(n));
});

test('portable signature: pass_immutable, untouched by the kernel, invalid-fail-immutable after chmod', () => {
  const { emu, fs } = boot('ima_appraise=fix evm=fix ima_hash=sha256 ima_template=ima-sig');
  const p = portableSigned(emu, fs, 'portable', enc('portable\n'));
  const sigBefore = p.xattrs.get('security.evm');
  const r = runAccess(emu, { op: 'read', path: 'portable' }, 0, fs);
  assert.equal(r.audit.length, 0, 'verified against _evm');
  runAccess(emu, { op: 'chmod', path: 'portable', mode: '600' }, 1, fs);
  assert.deepEqual(p.xattrs.get('security.evm'), sigBefore, 'portable signatures are never replaced');
  const r2 = runAccess(emu, { op: 'read', path: 'portable' }, 2, fs);
  assert.equal(r2.audit[0]?.fields.cause, 'invalid-fail-immutable');
});

test('enforce after offline tampering: invalid-HMAC, missing-HMAC; untouched files allowed', () => {
  const { emu, fs } = boot('ima_appraise=fix evm=fix ima_hash=sha256 ima_template=ima-sig');
  for (const n of ['uid', 'gen', 'ima', 'zero', 'gone', 'ok'])
    emu.addFile({ path: n, fs, content: enc(`${n}\n`) });
  ['uid', 'gen', 'ima', 'zero', 'gone', 'ok'].forEach((n, i) =>
    runAccess(emu, { op: 'read', path: n }, i, fs),
  );
  // second boot in enforce mode with the tampered disk
  const e2 = new Emulator({
    profile: getProfile('debian-6.1'),
    cmdline:
      'lsm=landlock,lockdown,yama,integrity,apparmor ima_appraise=enforce ima_hash=sha256 ima_template=ima-sig',
  });
  e2.loadEvmHmacKey(KEY);
  e2.loadPolicy(`appraise func=FILE_CHECK fsuuid=${UUID}\n`);
  for (const i of emu.files()) {
    const x = new Map(i.xattrs);
    let uid = i.uid;
    let generation = i.generation;
    if (i.path === 'uid') uid = 1000;
    if (i.path === 'gen') generation = 99;
    if (i.path === 'ima')
      x.set(
        'security.ima',
        Uint8Array.of(
          0x04,
          0x04,
          ...createHash('sha256')
            .update('ima\n')
            .digest()
            .map((b, k) => (k === 0 ? b ^ 1 : b)),
        ),
      );
    if (i.path === 'zero') x.set('security.evm', new Uint8Array(21).fill(0, 1).fill(2, 0, 1));
    if (i.path === 'gone') x.delete('security.evm');
    e2.addFile({
      path: i.path,
      fs,
      content: i.content!,
      uid,
      gid: i.gid,
      mode: i.mode,
      ino: i.ino,
      generation,
      xattrs: x,
    });
  }
  const want: Record<string, string | null> = {
    uid: 'invalid-HMAC',
    gen: 'invalid-HMAC',
    ima: 'invalid-HMAC',
    zero: 'invalid-HMAC',
    gone: 'missing-HMAC',
    ok: null,
  };
  Object.entries(want).forEach(([n, cause], k) => {
    const r = runAccess(e2, { op: 'read', path: n }, k, fs);
    assert.equal(r.outcome, cause === null ? 'allowed' : 'denied', n);
    assert.equal(r.audit.find((a) => a.type === 1800)?.fields.cause ?? null, cause, n);
  });
});
