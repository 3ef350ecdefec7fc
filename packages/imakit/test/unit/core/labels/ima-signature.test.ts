/**
 * IMA signatures end to end:
 *  - byte-identical RSA signatures to evmctl's vectors (sha1/sha256/sha512, --keyid, keycert SKID,
 *    EVM type 3 / portable over the recorded metadata digests, sigv3 fs-verity);
 *  - ECDSA and SM2 vector signatures verify;
 *  - fresh RSA-2048/3072/4096, P-256/384/521 and SM2 keys with self-signed certs made by openssl:
 *    imakit signs → `evmctl ima_verify` accepts; `evmctl ima_sign` signs → imakit verifies
 *    (RSA byte-identical); tampering fails both ways;
 *  - verdicts: pass / fail / unknown-key / unsupported.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isImakitError } from '../../../../src/errors.ts';
import { toHex } from '../../../../src/core/bytes/bytes.ts';
import { hash, hashAlgoByName, type HashAlgo } from '../../../../src/core/hash/hash-algo.ts';
import { loadPrivateKey, loadPublicKey, type PrivateKey } from '../../../../src/core/keys/keys.ts';
import { parseSignatureV2 } from '../../../../src/core/labels/signature-header.ts';
import { parseImaXattr } from '../../../../src/core/labels/ima-xattr.ts';
import { signDigest, verifyDigest } from '../../../../src/core/keys/sign-digest.ts';
import {
  Keyring,
  signImaDigest,
  signVerityDigest,
  sigv3Digest,
  verifySignatureValue,
} from '../../../../src/core/labels/ima-signature.ts';
import { hex, run, tempDir, vector, vectorOutputLine, vectorPath } from '../../../helpers.ts';

const alg = (n: string): HashAlgo => hashAlgoByName(n);
const KEYRING = new Keyring(
  ['rsa2048.cer', 'p256.cer', 'sm2.cer', 'rsa2048_skid.cer'].map((c) => loadPublicKey(vector(c))),
);
const lastHex = (line: string): string => line.trim().split(/\s+/).pop()!;

test('RSA signatures are byte-identical to the evmctl vectors', () => {
  const rsa = loadPrivateKey(vector('rsa2048.key'));
  const keycert = loadPrivateKey(vector('rsa2048_skid_keycert.pem'));
  for (const file of ['hello.txt', 'empty.bin'])
    for (const a of ['sha256', 'sha1', 'sha512']) {
      const want = lastHex(vectorOutputLine(`${file} key=rsa2048.key algo=${a} `));
      const got = signImaDigest({ key: rsa, algo: alg(a), digest: hash(a, vector(file)) });
      assert.equal(toHex(got), want, `${file} ${a}`);
    }
  const hello256 = hash('sha256', vector('hello.txt'));
  assert.equal(
    toHex(signImaDigest({ key: rsa, algo: alg('sha256'), digest: hello256, keyid: 0xaabbccdd })),
    lastHex(vectorOutputLine('key=rsa2048.key sha256 --keyid aabbccdd')),
  );
  assert.equal(
    toHex(signImaDigest({ key: keycert, algo: alg('sha256'), digest: hello256 })),
    lastHex(vectorOutputLine('hello.txt key=rsa2048_skid_keycert.pem algo=sha256')),
  );
});

test('EVM signature vectors: type 3 and portable type 5 over the recorded digests', () => {
  const rsa = loadPrivateKey(vector('rsa2048.key'));
  const d3 = hex(vectorOutputLine('evm sig digest (non-portable):').split(':')[1]!);
  const d5 = hex(vectorOutputLine('evm sig digest (portable):').split(':')[1]!);
  assert.equal(
    toHex(signImaDigest({ key: rsa, algo: alg('sha256'), digest: d3 })),
    lastHex(vectorOutputLine('rsa2048/sha256 evm type3')),
  );
  assert.equal(
    toHex(signImaDigest({ key: rsa, algo: alg('sha256'), digest: d5, xattrType: 0x05 })),
    lastHex(vectorOutputLine('rsa2048/sha256 evm portable')),
  );
  // the random ECDSA/SM2 EVM vectors verify over the same digests
  const sm2d3 = hex('c5849c64ea58120695e9c39e50ea6abbb131b20bd9ea7750ff9a4e7d561f25fe');
  const sm2d5 = hex('355fe9d3f27ea3ab6f8b6dd2a0f6460f275582f72a675b8fa305961c5ba94e03');
  for (const [prefix, d] of [
    ['p256/sha256 evm type3', d3],
    ['p256/sha256 evm portable', d5],
    ['sm2/sm3 evm type3', sm2d3],
    ['sm2/sm3 evm portable', sm2d5],
  ] as const) {
    const v = verifySignatureValue(
      parseSignatureV2(hex(lastHex(vectorOutputLine(prefix)))),
      () => d,
      KEYRING,
    );
    assert.equal(v.status, 'pass', `${prefix}: ${v.detail}`);
  }
});

test('sigv3 (fs-verity) vector: hash and signature byte-identical to evmctl 1.6.2', () => {
  const rsa = loadPrivateKey(vector('rsa2048.key'));
  const line = vectorOutputLine(
    'sha256:37061ef2ac4c21bec68489b56138c5780306a4ad7fe6676236ecdf2c9027cd92 hello.txt 06',
  );
  const vd = hex('37061ef2ac4c21bec68489b56138c5780306a4ad7fe6676236ecdf2c9027cd92');
  assert.equal(
    toHex(sigv3Digest(0x06, alg('sha256'), vd)),
    '47869ba41183247480c56c1c1a5bc65eb0e7578758cad0fccd46f31100fd4c44',
  );
  const got = signVerityDigest({ key: rsa, algo: alg('sha256'), verityDigest: vd });
  assert.equal(toHex(got), lastHex(line));
  assert.ok(toHex(got).startsWith('0603044d0e4f4d01005b95d8ff'));
  // sha512 fs-verity digest, type 6 algo 6
  const l512 = vectorOutputLine(' hello.txt 0603064d0e4f4d');
  const vd512 = hex(l512.split(' ')[0]!.split(':')[1]!);
  assert.equal(
    toHex(signVerityDigest({ key: rsa, algo: alg('sha512'), verityDigest: vd512 })),
    lastHex(l512),
  );
  // verification hashes ima_file_id itself
  const v = verifySignatureValue(parseSignatureV2(got), () => vd, KEYRING);
  assert.equal(v.status, 'pass', v.detail);
  assert.throws(
    () => signVerityDigest({ key: rsa, algo: alg('sha512'), verityAlgo: alg('sha256'), verityDigest: vd }),
    (e) => isImakitError(e, 'E_SIG_UNSUPPORTED'),
  );
});

test('ECDSA and SM2 vector signatures verify; verdict statuses', () => {
  for (const file of ['hello.txt', 'empty.bin'])
    for (const [key, a] of [
      ['p256.key', 'sha256'],
      ['p256.key', 'sha384'],
      ['sm2.key', 'sm3'],
    ] as const) {
      const x = parseImaXattr(hex(lastHex(vectorOutputLine(`${file} key=${key} algo=${a} `))));
      assert.ok(x.kind === 'signature');
      if (x.kind !== 'signature') continue;
      const v = verifySignatureValue(x.sig, (h) => hash(h, vector(file)), KEYRING);
      assert.equal(v.status, 'pass', `${file} ${key} ${a}: ${v.detail}`);
      assert.equal(v.keyid, key.startsWith('p256') ? '027eaa7d' : '31a4fbf1');
      const bad = verifySignatureValue(
        x.sig,
        (h) => hash(h, vector(file === 'hello.txt' ? 'empty.bin' : 'hello.txt')),
        KEYRING,
      );
      assert.equal(bad.status, 'fail');
      assert.equal(bad.code, 'E_SIG_INVALID');
    }
  const rsaSig = parseSignatureV2(hex(lastHex(vectorOutputLine('hello.txt key=rsa2048.key algo=sha256 '))));
  const file = (h: HashAlgo): Uint8Array => hash(h, vector('hello.txt'));
  assert.equal(verifySignatureValue(rsaSig, file, KEYRING).status, 'pass');
  assert.equal(verifySignatureValue({ ...rsaSig, keyid: 0x12345678 }, file, KEYRING).status, 'unknown-key');
  assert.equal(verifySignatureValue(rsaSig, file, new Keyring([])).code, 'E_KEY_NOT_FOUND');
  // --keyid aabbccdd: same body, key found only if the keyring has that id
  assert.equal(verifySignatureValue({ ...rsaSig, keyid: 0xaabbccdd }, file, KEYRING).status, 'unknown-key');
  // streebog: a valid header the runtime cannot hash
  const u = verifySignatureValue({ ...rsaSig, hashAlgo: 18 }, file, KEYRING);
  assert.equal(u.status, 'unsupported');
  // a tampered body byte, a truncated body, and RSA with the wrong DigestInfo algorithm
  const t = rsaSig.sig.slice();
  t[100] = t[100]! ^ 0x40;
  assert.equal(verifySignatureValue({ ...rsaSig, sig: t }, file, KEYRING).status, 'fail');
  assert.equal(
    verifySignatureValue({ ...rsaSig, sig: rsaSig.sig.subarray(1) }, file, KEYRING).status,
    'fail',
  );
  assert.equal(verifySignatureValue({ ...rsaSig, hashAlgo: 7 }, file, KEYRING).status, 'fail');
  // custom-SKID cert: only the SKID id matches (pitfall 13)
  const skidKey = loadPrivateKey(vector('rsa2048_skid.key'));
  const viaSpki = parseSignatureV2(
    signImaDigest({ key: skidKey, algo: alg('sha256'), digest: file(alg('sha256')) }),
  );
  assert.equal(viaSpki.keyid, 0x76732299);
  assert.equal(verifySignatureValue(viaSpki, file, KEYRING).status, 'unknown-key');
  const m = verifySignatureValue({ ...viaSpki, keyid: 0x11121314 }, file, KEYRING);
  assert.equal(m.status, 'pass');
  assert.equal(m.matchedBy, 'skid');
});

test('wrong key type and hash pairings', () => {
  const sm2 = loadPrivateKey(vector('sm2.key'));
  const d = hash('sha256', vector('hello.txt'));
  assert.throws(
    () => signDigest(sm2, alg('sha256'), d),
    (e) => isImakitError(e, 'E_KEY_MISMATCH'),
  );
  assert.throws(() => signDigest(sm2, alg('sm3'), d.subarray(1)), RangeError);
  const rsa = loadPrivateKey(vector('rsa2048.key'));
  assert.throws(
    () => signDigest(rsa, alg('streebog256'), d),
    (e) => isImakitError(e, 'E_SIG_UNSUPPORTED'),
  );
  // verifyDigest never throws on garbage signature bytes
  const p256 = loadPublicKey(vector('p256.cer'));
  for (const junk of [new Uint8Array(0), new Uint8Array(72).fill(0x30), new Uint8Array(300)]) {
    assert.equal(verifyDigest(p256, alg('sha256'), d, junk), false);
    assert.equal(verifyDigest(rsa.publicKey, alg('sha256'), d, junk), false);
    assert.equal(verifyDigest(sm2.publicKey, alg('sm3'), d, junk), false);
  }
});

/** Fresh keys for the evmctl interop test: [label, genpkey args, digest algos, cert sign opts]. */
const FRESH: ReadonlyArray<readonly [string, readonly string[], readonly string[], readonly string[]]> = [
  ['rsa2048', ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'], ['sha256', 'sha1'], ['-sha256']],
  ['rsa3072', ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:3072'], ['sha384'], ['-sha256']],
  ['rsa4096', ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:4096'], ['sha512'], ['-sha256']],
  ['p256', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'], ['sha256'], ['-sha256']],
  ['p384', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384'], ['sha384', 'sha256'], ['-sha384']],
  ['p521', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-521'], ['sha512'], ['-sha512']],
  ['sm2', ['-algorithm', 'SM2'], ['sm3'], ['-sm3', '-sigopt', 'distid:1234567812345678']],
];

function must(r: { status: number; stdout: string; stderr: string }, what: string): string {
  assert.equal(r.status, 0, `${what}: ${r.stdout}${r.stderr}`);
  return r.stdout;
}

function getUserIma(file: string): Uint8Array {
  const out = must(run('getfattr', ['--absolute-names', '-e', 'hex', '-n', 'user.ima', file]), 'getfattr');
  return hex(out.match(/user\.ima=0x([0-9a-f]+)/)![1]!);
}

test('fresh keys: imakit ⇄ evmctl ima_sign / ima_verify (RSA byte-identical, ECDSA, SM2)', () => {
  const { dir, cleanup } = tempDir();
  try {
    const data = join(dir, 'data.bin');
    writeFileSync(data, Buffer.from('imakit interop ' + dir));
    for (const [label, gen, algos, certOpts] of FRESH) {
      const keyFile = join(dir, `${label}.key`);
      const certFile = join(dir, `${label}.der`);
      must(run('openssl', ['genpkey', ...gen, '-out', keyFile]), `genpkey ${label}`);
      must(
        run('openssl', [
          'req',
          '-x509',
          '-new',
          '-key',
          keyFile,
          ...certOpts,
          '-subj',
          `/CN=imakit ${label}`,
          '-days',
          '2',
          '-addext',
          'subjectKeyIdentifier=hash',
          '-addext',
          'keyUsage=digitalSignature',
          '-outform',
          'DER',
          '-out',
          certFile,
        ]),
        `req ${label}`,
      );
      const key: PrivateKey = loadPrivateKey(readFileSync(keyFile));
      const pub = loadPublicKey(readFileSync(certFile));
      assert.equal(pub.keyid, key.keyid, label);
      const ring = new Keyring([pub]);
      for (const a of algos) {
        const what = `${label}/${a}`;
        const content = readFileSync(data);
        // imakit signs, evmctl verifies
        const ours = signImaDigest({ key, algo: alg(a), digest: hash(a, content) });
        must(run('setfattr', ['-n', 'user.ima', '-v', '0x' + toHex(ours), data]), 'setfattr');
        must(
          run('evmctl', ['ima_verify', '--xattr-user', '--key', certFile, data]),
          `evmctl ima_verify ${what}`,
        );
        // evmctl signs, imakit verifies
        must(
          run('evmctl', ['ima_sign', '--xattr-user', '-a', a, '--key', keyFile, data]),
          `evmctl ima_sign ${what}`,
        );
        const theirs = getUserIma(data);
        const parsed = parseImaXattr(theirs);
        assert.ok(parsed.kind === 'signature', what);
        if (parsed.kind !== 'signature') continue;
        assert.equal(parsed.sig.keyid, key.keyid, what);
        assert.equal(parsed.sig.hashAlgo, alg(a).id, what);
        const v = verifySignatureValue(parsed.sig, (h) => hash(h, content), ring);
        assert.equal(v.status, 'pass', `${what}: ${v.detail}`);
        if (key.alg === 'rsa') assert.equal(toHex(theirs), toHex(ours), `${what} byte-identical`);
        // tampered content: both sides reject
        const other = new Uint8Array([...content, 0x0a]);
        assert.equal(verifySignatureValue(parsed.sig, (h) => hash(h, other), ring).status, 'fail', what);
      }
      // evmctl rejects an imakit signature once the file changes
      const a0 = algos[0]!;
      const sig = signImaDigest({ key, algo: alg(a0), digest: hash(a0, readFileSync(data)) });
      must(run('setfattr', ['-n', 'user.ima', '-v', '0x' + toHex(sig), data]), 'setfattr');
      writeFileSync(data, Buffer.concat([readFileSync(data), Buffer.from('x')]));
      assert.notEqual(
        run('evmctl', ['ima_verify', '--xattr-user', '--key', certFile, data]).status,
        0,
        `${label} tampered`,
      );
    }
  } finally {
    cleanup();
  }
});

test('SM2 fresh key: imakit signature verifies with openssl pkeyutl over the bare digest only', () => {
  const { dir, cleanup } = tempDir();
  try {
    const keyFile = join(dir, 'sm2.key');
    const pubFile = join(dir, 'sm2.pub');
    must(run('openssl', ['genpkey', '-algorithm', 'SM2', '-out', keyFile]), 'genpkey');
    must(run('openssl', ['pkey', '-in', keyFile, '-pubout', '-out', pubFile]), 'pubout');
    const key = loadPrivateKey(readFileSync(keyFile));
    const d = hash('sm3', vector('hello.txt'));
    const x = parseSignatureV2(signImaDigest({ key, algo: alg('sm3'), digest: d }));
    writeFileSync(join(dir, 'd.bin'), d);
    writeFileSync(join(dir, 's.bin'), x.sig);
    const args = ['pkeyutl', '-verify', '-pubin', '-inkey', pubFile, '-sigfile', join(dir, 's.bin')];
    must(run('openssl', [...args, '-in', join(dir, 'd.bin')]), 'pkeyutl raw');
    const z = run('openssl', [
      ...args,
      '-rawin',
      '-digest',
      'sm3',
      '-pkeyopt',
      'distid:1234567812345678',
      '-in',
      vectorPath('hello.txt'),
    ]);
    assert.notEqual(z.status, 0);
  } finally {
    cleanup();
  }
});

test('RSA DigestInfo for md5/sha224/rmd160/sha3: byte-identical to evmctl and openssl; sm3/md4 refused', () => {
  const { dir, cleanup } = tempDir();
  try {
    const rsa = loadPrivateKey(vector('rsa2048.key'));
    const data = join(dir, 'h.txt');
    writeFileSync(data, vector('hello.txt'));
    for (const a of ['md5', 'sha224', 'rmd160']) {
      must(
        run('evmctl', ['ima_sign', '--xattr-user', '-a', a, '--key', vectorPath('rsa2048.key'), data]),
        `evmctl ${a}`,
      );
      const ours = signImaDigest({ key: rsa, algo: alg(a), digest: hash(a, vector('hello.txt')) });
      assert.equal(toHex(getUserIma(data)), toHex(ours), a);
    }
    // evmctl 1.4 has no sha3 in its table: compare the raw PKCS#1 block with openssl pkeyutl
    for (const a of ['sha3-256', 'sha3-384', 'sha3-512']) {
      const d = hash(a, vector('hello.txt'));
      writeFileSync(join(dir, 'd.bin'), d);
      must(
        run('openssl', [
          'pkeyutl',
          '-sign',
          '-in',
          join(dir, 'd.bin'),
          '-inkey',
          vectorPath('rsa2048.key'),
          '-pkeyopt',
          `digest:${a}`,
          '-out',
          join(dir, 's.bin'),
        ]),
        `pkeyutl ${a}`,
      );
      assert.equal(toHex(signDigest(rsa, alg(a), d)), toHex(readFileSync(join(dir, 's.bin'))), a);
    }
    for (const a of ['sm3', 'md4'])
      assert.throws(
        () => signDigest(rsa, alg(a), new Uint8Array(alg(a).size)),
        (e) => isImakitError(e, 'E_SIG_UNSUPPORTED'),
        a,
      );
  } finally {
    cleanup();
  }
});

test('ECDSA digest truncation and P-192: imakit ⇄ openssl pkeyutl for digests shorter and longer than the curve', () => {
  const { dir, cleanup } = tempDir();
  try {
    const keyFile = join(dir, 'p192.key');
    const pubFile = join(dir, 'p192.pub');
    must(
      run('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-192', '-out', keyFile]),
      'genpkey',
    );
    must(run('openssl', ['pkey', '-in', keyFile, '-pubout', '-out', pubFile]), 'pubout');
    for (const [k, p] of [
      [keyFile, pubFile],
      [vectorPath('p256.key'), vectorPath('p256.pub')],
    ] as const) {
      const key = loadPrivateKey(readFileSync(k));
      for (const a of ['sha1', 'sha512']) {
        const d = hash(a, vector('hello.txt'));
        const [df, sf, of] = ['d.bin', 's.bin', 'o.bin'].map((n) => join(dir, n)) as [string, string, string];
        writeFileSync(df, d);
        writeFileSync(sf, signDigest(key, alg(a), d));
        must(
          run('openssl', ['pkeyutl', '-verify', '-pubin', '-inkey', p, '-in', df, '-sigfile', sf]),
          `${key.curve} ${a}`,
        );
        must(run('openssl', ['pkeyutl', '-sign', '-inkey', k, '-in', df, '-out', of]), 'pkeyutl sign');
        assert.equal(
          verifyDigest(key.publicKey, alg(a), d, new Uint8Array(readFileSync(of))),
          true,
          `${key.curve} ${a}`,
        );
      }
    }
  } finally {
    cleanup();
  }
});
