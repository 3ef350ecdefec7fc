/**
 * Labelling a staging tree with imakit's own library (security.ima hashes and signatures),
 * so that the real kernel judges labels imakit wrote. v1 signatures come from evmctl (`--rsa`),
 * which is the only producer of that deprecated format we compare against.
 */
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { hash, hashAlgoByName } from '../../src/core/hash/hash-algo.ts';
import { imaDigestXattr } from '../../src/core/labels/ima-xattr.ts';
import { signImaDigest } from '../../src/core/labels/ima-signature.ts';
import { generateKeyPair, exportPrivateKeyPem } from '../../src/core/keys/key-gen.ts';
import { buildCertificate } from '../../src/core/keys/x509-build.ts';
import { loadPrivateKey, type PrivateKey } from '../../src/core/keys/keys.ts';
import { run } from '../helpers.ts';

/** A signing key with its certificate. */
export interface TestKey {
  readonly key: PrivateKey;
  readonly certDer: Uint8Array;
  readonly privatePem: string;
  readonly publicPem: string;
}

/** A fresh self-signed signing key (RSA 2048 or EC P-256). */
export function makeKey(alg: 'rsa' | 'ec', cn: string): TestKey {
  const kp = generateKeyPair(alg === 'rsa' ? { alg: 'rsa', bits: 2048 } : { alg: 'ec', curve: 'P-256' });
  const cert = buildCertificate({
    publicKey: kp.publicKey,
    issuerKey: kp.privateKey,
    subject: `CN=${cn}`,
    ca: false,
    codeSigning: true,
  });
  const privatePem = exportPrivateKeyPem(kp.privateKey);
  return {
    key: loadPrivateKey(new TextEncoder().encode(privatePem)),
    certDer: cert.der,
    privatePem,
    publicPem: kp.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

/** A staging tree for a data disk. Files are written as root with explicit modes/owners. */
export class Tree {
  readonly dir: string;
  constructor(prefix = 'imakit-kernel-tree-') {
    this.dir = mkdtempSync(join(tmpdir(), prefix));
  }
  path(rel: string): string {
    return join(this.dir, rel);
  }
  /** write a file (parents created) */
  file(
    rel: string,
    content: string | Uint8Array,
    opts: { mode?: number; uid?: number; gid?: number } = {},
  ): string {
    const p = this.path(rel);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, content);
    chmodSync(p, opts.mode ?? 0o644);
    if (opts.uid !== undefined) chownSync(p, opts.uid, opts.gid ?? opts.uid);
    return p;
  }
  /** set an xattr (raw bytes) */
  xattr(rel: string, name: string, value: Uint8Array): void {
    setXattrSync(this.path(rel), name, value);
  }
  /** security.ima = imakit's digest xattr of the current content */
  hashLabel(rel: string, algo = 'sha256'): Uint8Array {
    const a = hashAlgoByName(algo);
    const v = imaDigestXattr(a, hash(a, readFileSync(this.path(rel))));
    this.xattr(rel, 'security.ima', v);
    return v;
  }
  /** security.ima = imakit's v2 signature of the current content */
  signLabel(rel: string, key: TestKey, algo = 'sha256'): Uint8Array {
    const a = hashAlgoByName(algo);
    const v = signImaDigest({ key: key.key, algo: a, digest: hash(a, readFileSync(this.path(rel))) });
    this.xattr(rel, 'security.ima', v);
    return v;
  }
  /** a v1 signature (`evmctl ima_sign --rsa -a sha1`): the deprecated format, from evmctl */
  signV1(rel: string, key: TestKey): Uint8Array {
    const kdir = mkdtempSync(join(tmpdir(), 'imakit-v1-'));
    try {
      writeFileSync(join(kdir, 'key.pem'), key.privatePem);
      const r = run('evmctl', [
        'ima_sign',
        '--rsa',
        '-a',
        'sha1',
        '--key',
        join(kdir, 'key.pem'),
        this.path(rel),
      ]);
      if (r.status !== 0) throw new Error(`evmctl ima_sign --rsa failed: ${r.stderr}`);
    } finally {
      rmSync(kdir, { recursive: true, force: true });
    }
    return getXattrHex(this.path(rel), 'security.ima');
  }
  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function setXattrSync(p: string, name: string, value: Uint8Array): void {
  const r = run('setfattr', ['-n', name, '-v', `0x${Buffer.from(value).toString('hex')}`, p]);
  if (r.status !== 0) throw new Error(`setfattr ${name} ${p}: ${r.stderr}`);
}

/** An xattr's value read with getfattr. */
export function getXattrHex(p: string, name: string): Uint8Array {
  const r = run('getfattr', ['--absolute-names', '-e', 'hex', '-n', name, p]);
  const m = new RegExp(`${name.replace('.', '\\.')}=0x([0-9a-f]+)`).exec(r.stdout);
  if (m?.[1] === undefined) throw new Error(`no ${name} on ${p}`);
  return new Uint8Array(Buffer.from(m[1], 'hex'));
}
