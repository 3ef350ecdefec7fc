/**
 * Real-kernel EVM scenarios (real-kernel.md §6 f1/f2, §8.3, §7 "EVM" and "EVM HMAC layout"):
 * with a known HMAC key (wrapped by imakit's evm-key-blob into the kernel's encrypted-key
 * format), the kernel writes security.evm HMACs in `evm=fix`; imakit's evmInput/evmHmac with the
 * debian-6.1 config must reproduce every one byte for byte. Then the disk is tampered with
 * offline and booted in enforce mode: every tampered file is denied with the expected cause.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  runVm,
  debugfs,
  DEFAULT_DATA_UUID,
  type Access,
  type VmResult,
  type VmSpec,
} from '../../src/host/vm/index.ts';
import { hash, hashAlgoByName } from '../../src/core/hash/hash-algo.ts';
import { evmDigest, evmInput } from '../../src/core/evm/evm-input.ts';
import { resolveEvmConfig } from '../../src/core/evm/evm-config.ts';
import { signImaDigest } from '../../src/core/labels/ima-signature.ts';
import { createEvmKeyBlob, decryptEvmKeyBlob } from '../../src/core/evm/evm-key-blob.ts';
import {
  BOOT_TIMEOUT_MS,
  BOOT_TIMES,
  KERNEL_DIR,
  byLabel,
  kernelHmacOf,
  saveFixture,
  printBootTimes,
} from './helpers.ts';
import { Tree, getXattrHex, makeKey, type TestKey } from './labels.ts';
import { tempDir } from '../helpers.ts';

const U = DEFAULT_DATA_UUID;
const LSM = 'lsm=landlock,lockdown,yama,integrity,apparmor'; // §5.3 workaround
const POLICY = [
  `measure func=FILE_CHECK fsuuid=${U} template=evm-sig`,
  `appraise func=FILE_CHECK fsuuid=${U}`,
].join('\n');
const CONFIG = resolveEvmConfig('debian-6.1');
const SHA256 = hashAlgoByName('sha256');

/** sha1/sha256 of the staged files' contents, for the manifest (the emulator's replay hashes these). */
function contentDigests(t: Tree): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const p of ['none.txt', 'ima-only.txt', 'user.txt', 'mode600.txt', 'portable.txt', 'untouched.txt']) {
    const c = readFileSync(t.path(p));
    out[p] = Object.fromEntries(
      ['sha1', 'sha256'].map((a) => [a, Buffer.from(hash(hashAlgoByName(a), c)).toString('hex')]),
    );
  }
  return out;
}

describe('real kernel: EVM HMACs and offline tampering', { concurrency: 1 }, () => {
  let tree: Tree;
  let evmKeyPair: TestKey;
  const evmKey = new Uint8Array(randomBytes(32));
  const kmk = new Uint8Array(randomBytes(32));
  const outs: { cleanup: () => void }[] = [];
  let f1: VmResult | undefined;
  const staged: Record<string, Record<string, string>> = {};

  before(() => {
    tree = new Tree();
    evmKeyPair = makeKey('rsa', 'imakit evm key');
    tree.file('none.txt', 'no xattrs\n');
    tree.file('ima-only.txt', 'only security.ima\n');
    tree.hashLabel('ima-only.txt');
    tree.file('user.txt', 'owned by 1000\n', { uid: 1000 });
    tree.file('mode600.txt', 'mode 0600\n', { mode: 0o600 });
    tree.file('portable.txt', 'portable signature\n');
    const ima = tree.hashLabel('portable.txt');
    // a portable EVM signature (0x05) built with imakit: ino/generation zeroed, no fs UUID (pitfall 21)
    const input = evmInput({
      kind: 'portable',
      xattrs: new Map([['security.ima', ima]]),
      meta: { ino: 0n, generation: 0, uid: 0, gid: 0, mode: 0o100644 },
      fsUuid: null,
      config: CONFIG,
    });
    tree.xattr(
      'portable.txt',
      'security.evm',
      signImaDigest({ key: evmKeyPair.key, algo: SHA256, digest: evmDigest(SHA256, input), xattrType: 0x05 }),
    );
    tree.file('untouched.txt', 'left alone\n');
    for (const p of [
      'none.txt',
      'ima-only.txt',
      'user.txt',
      'mode600.txt',
      'portable.txt',
      'untouched.txt',
    ]) {
      const x: Record<string, string> = {};
      for (const n of ['security.ima', 'security.evm']) {
        try {
          x[n] = Buffer.from(getXattrHex(tree.path(p), n)).toString('hex');
        } catch {
          // not set
        }
      }
      staged[p] = x;
    }
  });
  after(() => {
    tree.cleanup();
    for (const o of outs) o.cleanup();
    printBootTimes();
  });
  const boot = async (s: VmSpec, keepDataDisk = false): Promise<VmResult> => {
    const o = tempDir('imakit-kernel-out-');
    outs.push(o);
    return runVm(s, { kernelDir: KERNEL_DIR, outDir: o.dir, timeoutMs: BOOT_TIMEOUT_MS, keepDataDisk });
  };

  test('f1: kernel-written HMACs (evm=fix) = imakit evmHmac, byte for byte', async () => {
    const read = (p: string, label = p): Access => ({ op: 'read', path: p, label });
    const workload: Access[] = [
      read('none.txt'),
      read('ima-only.txt'),
      read('user.txt'),
      read('mode600.txt'),
      read('portable.txt', 'portable-1'),
      read('untouched.txt'),
      { op: 'chmod', path: 'none.txt', mode: '0640', label: 'chmod' },
      { op: 'create', path: 'new.txt', content: 'created in the guest\n', label: 'create' },
      { op: 'create', path: 'new-chown.txt', content: 'created, then chowned\n', label: 'create-2' },
      { op: 'chown', path: 'new-chown.txt', owner: '1000:1000', label: 'chown' },
      {
        op: 'setxattr',
        path: 'ima-only.txt',
        name: 'user.note',
        value: '"not protected"',
        label: 'setxattr',
      },
      { op: 'chmod', path: 'portable.txt', mode: '0600', label: 'chmod-portable' },
    ];
    // issue 6: the blob is imakit's (createEvmKeyBlob), loaded with `keyctl add encrypted evm-key
    // "load <blob>"`; the kernel's HMACs below are then computed with the key imakit wrapped
    const blob = createEvmKeyBlob({ masterKey: kmk, plain: evmKey });
    const spec: VmSpec = {
      append: [LSM, 'ima_appraise=fix', 'evm=fix', 'ima_hash=sha256', 'ima_template=ima-sig'],
      policy: POLICY,
      evmKey: { kmk, blob: blob.payloadHex },
      evmCerts: [evmKeyPair.certDer],
      files: tree.dir,
      workload,
    };
    const r = await boot(spec, true);
    f1 = r;
    assert.equal(r.policyLoaded, true);
    assert.match(r.dmesg, /evm: key initialized/);
    assert.equal(r.evmState, '3', 'EVM_INIT_HMAC | EVM_INIT_X509');
    assert.match(readFileSync(join(r.outDir, 'keys.log'), 'utf8'), /^evm-key ok \d+$/m, 'imakit blob loaded');
    // the kernel exports the loaded key as the same blob (same IV, deterministic re-encryption)
    assert.equal(r.evmKeyExported, blob.payloadHex, 'keyctl pipe of the loaded key = imakit blob');
    assert.deepEqual(decryptEvmKeyBlob(r.evmKeyExported, kmk), evmKey);
    for (const a of r.accesses) assert.equal(a.outcome, 'allowed', `${a.label}: ${a.stderr}`);
    const hmacFiles = r.files.filter((f) => f.xattrs['security.evm']?.startsWith('02'));
    const names = hmacFiles.map((f) => f.path).sort();
    assert.deepEqual(names, [
      'ima-only.txt',
      'mode600.txt',
      'new-chown.txt',
      'new.txt',
      'none.txt',
      'untouched.txt',
      'user.txt',
    ]);
    for (const f of hmacFiles) {
      assert.ok(
        f.xattrs['security.ima']?.startsWith('0404'),
        `${f.path}: kernel wrote a sha256 security.ima`,
      );
      assert.equal(f.xattrs['security.evm'], kernelHmacOf(evmKey, f), `${f.path}: HMAC`);
    }
    // files the kernel created have random generations; mkfs-made ones have 0 (§4.3)
    const gen = (p: string): number | undefined => r.files.find((f) => f.path === p)?.generation;
    assert.equal(gen('none.txt'), 0);
    assert.notEqual(gen('new.txt'), undefined);
    // the portable signature stays a signature; the chmod made it fail (immutable) (§7)
    const portable = r.files.find((f) => f.path === 'portable.txt');
    assert.ok(portable?.xattrs['security.evm']?.startsWith('05'));
    assert.equal(portable?.mode, 0o100600);
    BOOT_TIMES.push({
      scenario: 'f1 evm=fix',
      bootMs: r.info.bootMs,
      totalMs: r.info.totalMs,
      asserts: `${hmacFiles.length} kernel HMACs = imakit evmHmac (chmod, chown, create, user.* setxattr)`,
    });
    saveFixture('evm-fix-hmac', r, spec, {
      description:
        'EVM HMAC key known (hex in result.json evmKeyHex), ima_appraise=fix evm=fix, lsm= workaround (scenario f1)',
      asserts: ['every kernel-written security.evm HMAC = imakit evmHmac(debian-6.1 config, fs UUID)'],
      inputs: {
        fsUuid: U,
        evmKeyHex: Buffer.from(evmKey).toString('hex'),
        kmkHex: Buffer.from(kmk).toString('hex'),
        // the disk before the run: labels as staged (the kernel rewrites them), content digests
        labelsBefore: staged,
        fileDigests: contentDigests(tree),
      },
    });
  });

  test('f2: offline tampering is denied in enforce with the expected causes', async (t) => {
    if (f1?.dataImage == null) {
      t.skip('f1 did not produce a data disk');
      return;
    }
    const img = f1.dataImage;
    const dir = tempDir('imakit-evm-tamper-');
    outs.push(dir);
    const zeros = join(dir.dir, 'evm-zero');
    writeFileSync(zeros, Buffer.concat([Buffer.from([0x02]), Buffer.alloc(20)]));
    const otherIma = join(dir.dir, 'ima-other');
    writeFileSync(
      otherIma,
      Buffer.concat([Buffer.from([0x04, 0x04]), hash(SHA256, Buffer.from('something else'))]),
    );
    await debugfs(img, [
      'sif /none.txt uid 1001',
      'sif /user.txt generation 7',
      `ea_set -f ${otherIma} /ima-only.txt security.ima`,
      'ea_rm /mode600.txt security.evm',
      `ea_set -f ${zeros} /new.txt security.evm`,
    ]);
    const expected: Record<string, string> = {
      'none.txt': 'invalid-HMAC',
      'user.txt': 'invalid-HMAC',
      'ima-only.txt': 'invalid-HMAC',
      'mode600.txt': 'missing-HMAC',
      'new.txt': 'invalid-HMAC',
      'portable.txt': 'invalid-fail-immutable',
      'untouched.txt': '',
      'new-chown.txt': '',
    };
    const spec: VmSpec = {
      append: [LSM, 'ima_appraise=enforce', 'ima_hash=sha256', 'ima_template=ima-sig'],
      policy: POLICY,
      evmKey: { plain: evmKey, kmk },
      evmCerts: [evmKeyPair.certDer],
      dataImage: img,
      workload: Object.keys(expected).map((p) => ({ op: 'read', path: p, label: p })),
      generations: false,
    };
    const r = await boot(spec);
    const acc = byLabel(r);
    const got: Record<string, string> = {};
    const want: Record<string, string> = {};
    for (const [p, cause] of Object.entries(expected)) {
      const a = acc.get(p);
      got[p] = `${a?.outcome} ${a?.audit.find((x) => x.type === 1800)?.fields.cause ?? ''}`;
      want[p] = cause === '' ? 'allowed ' : `denied ${cause}`;
    }
    assert.deepEqual(got, want);
    BOOT_TIMES.push({
      scenario: 'f2 tampered/enforce',
      bootMs: r.info.bootMs,
      totalMs: r.info.totalMs,
      asserts:
        'uid, generation, security.ima, zeroed/removed security.evm, chmod after portable sig: denied with causes',
    });
    saveFixture('evm-tamper-enforce', r, spec, {
      description: 'f1 disk tampered with debugfs, booted with ima_appraise=enforce (scenario f2)',
      asserts: [
        'tampered files denied with invalid-HMAC / missing-HMAC / invalid-fail-immutable; untouched allowed',
      ],
      inputs: {
        tampering: {
          'none.txt': 'uid 1001',
          'user.txt': 'generation 7',
          'ima-only.txt': 'security.ima replaced',
          'mode600.txt': 'security.evm removed',
          'new.txt': 'security.evm zeroed',
          'portable.txt': 'chmod 0600 in f1',
        },
        expected,
        fsUuid: U,
        evmKeyHex: Buffer.from(evmKey).toString('hex'),
        fileDigests: contentDigests(tree),
        // contents of the files f1 created (the workload's `content`)
        createdContents: { 'new.txt': 'created in the guest\n', 'new-chown.txt': 'created, then chowned\n' },
      },
    });
  });
});
