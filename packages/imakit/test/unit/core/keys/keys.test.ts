/**
 * Key loading: vector keys, fresh keys in every format openssl writes (PKCS#8, traditional,
 * encrypted PEM / PKCS#8 / DER with right and wrong passphrases), SM2 scalars, key+cert bundles.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isImakitError, type ErrorCode } from '../../../../src/errors.ts';
import { toHex } from '../../../../src/core/bytes/bytes.ts';
import {
  containsPrivateKey,
  loadPrivateKey,
  loadPublicKey,
  loadPublicKeys,
} from '../../../../src/core/keys/keys.ts';
import { sm2PublicFromPrivate } from '../../../../src/core/keys/sm2.ts';
import { formatKeyId } from '../../../../src/core/keys/keyid.ts';
import { run, tempDir, vector, vectorPath } from '../../../helpers.ts';

const code = (c: ErrorCode) => (e: unknown) => isImakitError(e, c);

function ossl(args: string[]): void {
  const r = run('openssl', args);
  assert.equal(r.status, 0, `openssl ${args.join(' ')}: ${r.stderr}`);
}

test('vector keys: algorithm, size and key id; private and public agree', () => {
  const cases = [
    ['rsa2048.key', 'rsa2048.cer', 'rsa', 2048, '4d0e4f4d'],
    ['p256.key', 'p256.cer', 'ec', 256, '027eaa7d'],
    ['sm2.key', 'sm2.cer', 'sm2', 256, '31a4fbf1'],
    ['rsa2048_skid.key', 'rsa2048_skid.cer', 'rsa', 2048, '76732299'], // no cert in the key file: SPKI hash
    ['rsa2048_skid_keycert.pem', 'rsa2048_skid.cer', 'rsa', 2048, '11121314'], // cert in the file: its SKID
  ] as const;
  for (const [k, c, alg, bits, id] of cases) {
    const key = loadPrivateKey(vector(k));
    assert.equal(key.alg, alg, k);
    assert.equal(key.bits, bits, k);
    assert.equal(formatKeyId(key.keyid), id, k);
    const pub = loadPublicKey(vector(c));
    assert.equal(toHex(pub.subjectPublicKey), toHex(key.publicKey.subjectPublicKey), k);
  }
  const sm2 = loadPrivateKey(vector('sm2.key'));
  assert.equal(sm2.d?.length, 32);
  assert.equal(toHex(sm2PublicFromPrivate(sm2.d!)), toHex(sm2.publicKey.subjectPublicKey));
  assert.equal(sm2.keyObject, undefined); // Node cannot sign SM2 the kernel's way: never expose it
  assert.equal(loadPrivateKey(vector('rsa2048_skid_keycert.pem')).publicKey.cert?.skid?.length, 20);
});

test('public keys from PEM SPKI, DER cert, PEM cert bundle and PKCS#1', () => {
  assert.equal(formatKeyId(loadPublicKey(vector('p256.pub')).keyid), '027eaa7d');
  assert.equal(formatKeyId(loadPublicKey(vector('sm2.cer')).keyid), '31a4fbf1');
  const { dir, cleanup } = tempDir();
  try {
    const bundle = join(dir, 'b.pem');
    for (const c of ['rsa2048.cer', 'p256.cer'])
      ossl(['x509', '-inform', 'der', '-in', vectorPath(c), '-out', join(dir, c)]);
    writeFileSync(
      bundle,
      readFileSync(join(dir, 'rsa2048.cer'), 'utf8') + readFileSync(join(dir, 'p256.cer'), 'utf8'),
    );
    assert.deepEqual(
      loadPublicKeys(readFileSync(bundle)).map((k) => formatKeyId(k.keyid)),
      ['4d0e4f4d', '027eaa7d'],
    );
    const p1 = join(dir, 'p1.pem');
    ossl(['rsa', '-pubin', '-in', vectorPath('rsa2048.pub'), '-RSAPublicKey_out', '-out', p1]);
    assert.equal(formatKeyId(loadPublicKey(readFileSync(p1)).keyid), '4d0e4f4d');
    const spkiDer = join(dir, 'spki.der');
    ossl(['pkey', '-pubin', '-in', vectorPath('sm2.pub'), '-outform', 'DER', '-out', spkiDer]);
    const sm2 = loadPublicKey(readFileSync(spkiDer));
    assert.equal(sm2.alg, 'sm2');
    assert.equal(formatKeyId(sm2.keyid), '31a4fbf1');
  } finally {
    cleanup();
  }
  assert.throws(() => loadPublicKey(new Uint8Array([1, 2, 3])), code('E_KEY_PARSE'));
  assert.throws(() => loadPublicKey(vector('rsa2048.key')), code('E_KEY_PARSE'));
});

test('fresh keys in every openssl format, encrypted with right, wrong and missing passphrases', () => {
  const { dir, cleanup } = tempDir();
  try {
    const f = (n: string): string => join(dir, n);
    ossl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384', '-out', f('ec.pem')]);
    ossl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:1024', '-out', f('rsa.pem')]);
    ossl(['genpkey', '-algorithm', 'SM2', '-out', f('sm2.pem')]);
    const ref = {
      ec: loadPrivateKey(readFileSync(f('ec.pem'))),
      rsa: loadPrivateKey(readFileSync(f('rsa.pem'))),
      sm2: loadPrivateKey(readFileSync(f('sm2.pem'))),
    };
    assert.equal(ref.ec.curve, 'P-384');
    assert.equal(ref.ec.d?.length, 48);
    assert.equal(ref.rsa.bits, 1024);
    // traditional (SEC1 / PKCS#1) PEM and DER
    ossl(['ec', '-in', f('ec.pem'), '-out', f('ec-trad.pem')]);
    ossl(['ec', '-in', f('ec.pem'), '-outform', 'DER', '-out', f('ec-trad.der')]);
    ossl(['rsa', '-in', f('rsa.pem'), '-traditional', '-out', f('rsa-trad.pem')]);
    ossl(['pkey', '-in', f('rsa.pem'), '-outform', 'DER', '-out', f('rsa.der')]);
    ossl(['pkey', '-in', f('sm2.pem'), '-outform', 'DER', '-out', f('sm2.der')]);
    for (const [file, want] of [
      ['ec-trad.pem', ref.ec],
      ['ec-trad.der', ref.ec],
      ['rsa-trad.pem', ref.rsa],
      ['rsa.der', ref.rsa],
      ['sm2.der', ref.sm2],
    ] as const) {
      const k = loadPrivateKey(readFileSync(f(file)));
      assert.equal(k.keyid, want.keyid, file);
      if (want.d) assert.equal(toHex(k.d!), toHex(want.d), file);
    }
    // encrypted: PKCS#8 PEM, traditional PEM (Proc-Type/DEK-Info), PKCS#8 DER
    ossl([
      'pkcs8',
      '-topk8',
      '-in',
      f('ec.pem'),
      '-v2',
      'aes-256-cbc',
      '-passout',
      'pass:s3cret',
      '-out',
      f('ec-enc.pem'),
    ]);
    ossl([
      'rsa',
      '-in',
      f('rsa.pem'),
      '-traditional',
      '-aes128',
      '-passout',
      'pass:s3cret',
      '-out',
      f('rsa-enc.pem'),
    ]);
    ossl([
      'pkcs8',
      '-topk8',
      '-in',
      f('sm2.pem'),
      '-v2',
      'aes-128-cbc',
      '-passout',
      'pass:s3cret',
      '-outform',
      'DER',
      '-out',
      f('sm2-enc.der'),
    ]);
    assert.match(readFileSync(f('rsa-enc.pem'), 'utf8'), /Proc-Type: 4,ENCRYPTED/);
    for (const [file, want] of [
      ['ec-enc.pem', ref.ec],
      ['rsa-enc.pem', ref.rsa],
      ['sm2-enc.der', ref.sm2],
    ] as const) {
      const data = readFileSync(f(file));
      assert.equal(loadPrivateKey(data, { passphrase: 's3cret' }).keyid, want.keyid, file);
      assert.throws(() => loadPrivateKey(data, { passphrase: 'wrong' }), code('E_KEY_PASSPHRASE'), file);
      assert.throws(() => loadPrivateKey(data), code('E_KEY_PASSPHRASE'), file);
    }
  } finally {
    cleanup();
  }
});

test('bad private key inputs: garbage, public-only, unsupported type, mismatched bundled cert', () => {
  assert.throws(() => loadPrivateKey(new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x00])), code('E_KEY_PARSE'));
  assert.throws(() => loadPrivateKey(new Uint8Array(0)), code('E_KEY_PARSE'));
  assert.throws(() => loadPrivateKey(vector('rsa2048.pub')), code('E_KEY_PARSE'));
  const { dir, cleanup } = tempDir();
  try {
    ossl(['genpkey', '-algorithm', 'ED25519', '-out', join(dir, 'ed.pem')]);
    assert.throws(() => loadPrivateKey(readFileSync(join(dir, 'ed.pem'))), code('E_KEY_TYPE'));
    ossl(['x509', '-inform', 'der', '-in', vectorPath('p256.cer'), '-out', join(dir, 'p256.pem')]);
    const mixed =
      readFileSync(vectorPath('rsa2048.key'), 'utf8') + readFileSync(join(dir, 'p256.pem'), 'utf8');
    assert.throws(() => loadPrivateKey(Buffer.from(mixed)), code('E_KEY_MISMATCH'));
  } finally {
    cleanup();
  }
});

test('a certificate or public key given as the signing key is named as such, not "encrypted"', () => {
  const { dir, cleanup } = tempDir();
  try {
    ossl([
      'pkey',
      '-in',
      vectorPath('rsa2048.key'),
      '-pubout',
      '-outform',
      'DER',
      '-out',
      join(dir, 'pub.der'),
    ]);
    ossl(['x509', '-inform', 'der', '-in', vectorPath('p256.cer'), '-out', join(dir, 'p256.pem')]);
    const cases: [Uint8Array, RegExp][] = [
      [vector('rsa2048.cer'), /DER X\.509 certificate, not a private key/],
      [vector('p256.cer'), /DER X\.509 certificate, not a private key/],
      [readFileSync(join(dir, 'pub.der')), /DER public key .*not a private key/],
      [readFileSync(join(dir, 'p256.pem')), /holds: CERTIFICATE; a certificate or public key cannot sign/],
      [vector('rsa2048.pub'), /holds: PUBLIC KEY/],
    ];
    for (const [data, re] of cases)
      assert.throws(
        () => loadPrivateKey(data),
        (e: unknown) => isImakitError(e, 'E_KEY_PARSE') && re.test(e.message),
      );
    // An encrypted DER PKCS#8 is still recognised as encrypted (needs its passphrase).
    ossl([
      'pkcs8',
      '-topk8',
      '-in',
      vectorPath('rsa2048.key'),
      '-outform',
      'DER',
      '-passout',
      'pass:pw',
      '-out',
      join(dir, 'enc.der'),
    ]);
    assert.throws(() => loadPrivateKey(readFileSync(join(dir, 'enc.der'))), code('E_KEY_PASSPHRASE'));
    assert.equal(loadPrivateKey(readFileSync(join(dir, 'enc.der')), { passphrase: 'pw' }).alg, 'rsa');
  } finally {
    cleanup();
  }
});

test('containsPrivateKey: DER private keys (PKCS#8, PKCS#1, SEC1, encrypted) yes; DER public keys and certificates no', () => {
  const { dir, cleanup } = tempDir();
  try {
    const der = (name: string, args: string[]): Uint8Array => {
      ossl([...args, '-outform', 'DER', '-out', join(dir, name)]);
      return readFileSync(join(dir, name));
    };
    const rsa = vectorPath('rsa2048.key');
    const yes = {
      pkcs8: der('p8.der', ['pkey', '-in', rsa]),
      pkcs1: der('p1.der', ['rsa', '-in', rsa, '-traditional']),
      sec1: der('ec.der', ['ec', '-in', vectorPath('p256.key')]),
      encrypted: der('enc.der', ['pkcs8', '-topk8', '-in', rsa, '-passout', 'pass:pw']),
    };
    const no = {
      spki: der('spki.der', ['pkey', '-in', rsa, '-pubout']),
      pkcs1pub: der('p1pub.der', ['rsa', '-in', rsa, '-RSAPublicKey_out']),
      cert: vector('rsa2048.cer'),
      garbage: new Uint8Array([1, 2, 3]),
    };
    for (const [k, v] of Object.entries(yes)) assert.equal(containsPrivateKey(v), true, k);
    for (const [k, v] of Object.entries(no)) assert.equal(containsPrivateKey(v), false, k);
    assert.equal(containsPrivateKey(vector('rsa2048.key')), true);
  } finally {
    cleanup();
  }
});
