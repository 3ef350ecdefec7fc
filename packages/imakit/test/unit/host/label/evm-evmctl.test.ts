/**
 * EVM on real files: the digest imakit computes from a file's real metadata (lstat, FS_IOC_GETVERSION
 * generation, security.* xattrs) must verify the signature evmctl 1.4 wrote for that file (fresh
 * keys, --xattr-user), and imakit's HMAC must equal an independent Python computation (evm_ref.py
 * semantics) over values Python reads itself. evmctl 1.4 `hmac` is not used: it is wrong for real
 * kernels (pitfall 19) and reads its key from a hard-coded /etc/keys path.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { chownSync, chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { evmDigest, evmHmac, evmInput, type EvmInputKind } from '../../../../src/core/evm/evm-input.ts';
import { resolveEvmConfig } from '../../../../src/core/evm/evm-config.ts';
import { parseUuid } from '../../../../src/core/bytes/uuid.ts';
import { hashAlgoByName } from '../../../../src/core/hash/hash-algo.ts';
import { toHex } from '../../../../src/core/bytes/bytes.ts';
import { loadPublicKey } from '../../../../src/core/keys/keys.ts';
import { verifyDigest } from '../../../../src/core/keys/sign-digest.ts';
import { readInodeMeta, toInodeMeta } from '../../../../src/host/fs/inode.ts';
import { getXattr, readXattrSet, setXattr } from '../../../../src/host/fs/xattr.ts';
import { hashFileSync } from '../../../../src/host/fs/file-hash.ts';
import { evmRefHmac, run, tempDir, vectorPath } from '../../../helpers.ts';

const SELINUX = Buffer.from('system_u:object_r:tmp_t:s0\0', 'latin1');
const APPARMOR = Buffer.from('unconfined', 'latin1');
// struct vfs_cap_data v2: magic VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE, {permitted, inheritable} x2
const CAPABILITY = Buffer.from('0100000200200000000000000000000000000000', 'hex'); // cap_net_raw+ep

/** A labelled file owned by uid 1000 with mode 0600 and several protected xattrs (some with NULs). */
function makeFile(dir: string): string {
  const f = join(dir, 'file');
  writeFileSync(f, `content ${randomUUID()}\n`);
  chownSync(f, 1000, 1001);
  chmodSync(f, 0o600);
  const sha = hashFileSync(f, ['sha256']).digests.get('sha256')!;
  const ima = Buffer.concat([Buffer.from([0x04, 0x04]), sha]);
  setXattr(f, 'security.ima', ima);
  setXattr(f, 'user.ima', ima); // evmctl --xattr-user -o reads the ima value from user.ima (pitfall 23)
  setXattr(f, 'security.selinux', SELINUX);
  setXattr(f, 'security.apparmor', APPARMOR);
  setXattr(f, 'security.capability', CAPABILITY);
  return f;
}

function genKey(dir: string, alg: 'rsa' | 'ec' | 'sm2'): { key: string; pub: string } {
  const key = join(dir, `${alg}.pem`);
  const pub = join(dir, `${alg}.pub`);
  const args =
    alg === 'rsa'
      ? ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', key]
      : alg === 'ec'
        ? ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key]
        : ['genpkey', '-algorithm', 'SM2', '-out', key];
  assert.equal(run('openssl', args).status, 0);
  assert.equal(run('openssl', ['pkey', '-in', key, '-pubout', '-out', pub]).status, 0);
  return { key, pub };
}

test('evmctl sign (type 3 with and without UUID, portable) verifies over imakit digests of real files', () => {
  const { dir, cleanup } = tempDir();
  try {
    const f = makeFile(dir);
    const meta = readInodeMeta(f);
    assert.equal(meta.generationSource, 'ioctl'); // evmctl reads the same FS_IOC_GETVERSION itself
    const cfg = resolveEvmConfig('evmctl');
    const xattrs = readXattrSet(f, cfg.all);
    assert.equal(xattrs.size, 4);
    const uuidText = randomUUID();
    for (const [alg, hashName] of [
      ['rsa', 'sha256'],
      ['ec', 'sha256'],
      ['sm2', 'sm3'],
    ] as const) {
      const { key, pub } = genKey(dir, alg);
      const pubKey = loadPublicKey(readFileSync(pub));
      const cases: Array<[EvmInputKind, string[], Uint8Array | null]> = [
        ['signature', [`--uuid=${uuidText}`], parseUuid(uuidText)],
        ['signature', ['--uuid'], null],
        ['portable', ['-o'], null],
      ];
      for (const [kind, extra, uuid] of cases) {
        const r = run('evmctl', ['sign', '--xattr-user', '--key', key, '-a', hashName, ...extra, f]);
        assert.equal(r.status, 0, `evmctl ${extra.join(' ')}: ${r.stderr}`);
        const value = getXattr(f, 'user.evm')!;
        assert.equal(value[0], kind === 'portable' ? 0x05 : 0x03);
        const sig = value.subarray(9);
        const input = evmInput({ kind, xattrs, meta: toInodeMeta(meta), fsUuid: uuid, config: cfg });
        const digest = evmDigest(hashName, input);
        assert.ok(
          verifyDigest(pubKey, hashAlgoByName(hashName), digest, sig),
          `${alg} ${kind} ${extra.join(' ')}`,
        );
        // independent check with openssl over the same digest (RSA/ECDSA; openssl SM2 needs a distid)
        if (alg !== 'sm2') {
          writeFileSync(join(dir, 'digest.bin'), digest);
          writeFileSync(join(dir, 'sig.bin'), sig);
          const v = run('openssl', [
            'pkeyutl',
            '-verify',
            '-pubin',
            '-inkey',
            pub,
            '-in',
            join(dir, 'digest.bin'),
            '-sigfile',
            join(dir, 'sig.bin'),
            '-pkeyopt',
            `digest:${hashName}`,
          ]);
          assert.equal(v.status, 0, `openssl: ${v.stdout}${v.stderr}`);
        }
        // a different generation must not verify (non-portable covers it, portable does not)
        const other = evmInput({
          kind,
          xattrs,
          meta: { ...toInodeMeta(meta), generation: (meta.generation! + 1) >>> 0 },
          fsUuid: uuid,
          config: cfg,
        });
        assert.equal(
          verifyDigest(pubKey, hashAlgoByName(hashName), evmDigest(hashName, other), sig),
          kind === 'portable',
        );
      }
    }
  } finally {
    cleanup();
  }
});

test('HMAC over a real file equals an independent Python computation (evm_ref.py)', () => {
  const { dir, cleanup } = tempDir();
  try {
    const f = makeFile(dir);
    const cfg = resolveEvmConfig('debian-6.1');
    const key = readFileSync(vectorPath('evm-key-plain.bin'));
    const uuidText = randomUUID();
    const meta = toInodeMeta(readInodeMeta(f));
    const mine = toHex(
      evmHmac(
        key,
        evmInput({
          kind: 'hmac',
          xattrs: readXattrSet(f, cfg.enabled),
          meta,
          fsUuid: parseUuid(uuidText),
          config: cfg,
        }),
      ),
    );
    // Python reads everything itself: os.lstat, os.getxattr, generation from lsattr -vd
    assert.equal(mine, evmRefHmac(f, vectorPath('evm-key-plain.bin'), uuidText));
    assert.equal(meta.uid, 1000);
    assert.equal(meta.mode, 0o100600);
  } finally {
    cleanup();
  }
});
