/**
 * The start-up cuts of issue 10 item 11 change how keys are read and curves built, not what comes
 * out: SubjectPublicKeyInfo read by the DER walker gives what @peculiar's schema parse gave, and
 * ECDSA signatures over curves built on first use equal those of @noble/curves/nist.js (RFC 6979
 * nonces, so byte for byte).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { SubjectPublicKeyInfo } from '@peculiar/asn1-x509';
import { ECParameters } from '@peculiar/asn1-ecc';
import { RSAPublicKey } from '@peculiar/asn1-rsa';
import { p256, p384, p521 } from '@noble/curves/nist.js';
import { parseSpki, describeSpki, parseCertificate } from '../../../../src/core/keys/x509.ts';
import { loadPrivateKey } from '../../../../src/core/keys/keys.ts';
import { signDigest, verifyDigest } from '../../../../src/core/keys/sign-digest.ts';
import { sm2Point } from '../../../../src/core/keys/sm2.ts';
import { hashAlgoByName } from '../../../../src/core/hash/hash-algo.ts';
import { vector } from '../../../helpers.ts';

const der = (k: { export(o: { format: 'der'; type: 'spki' }): Buffer }): Uint8Array =>
  new Uint8Array(k.export({ format: 'der', type: 'spki' }));

/** What the @peculiar schema parse said about an SPKI (the code this replaced). */
function peculiar(spkiDer: Uint8Array): { oid: string; spk: Uint8Array; rsaBits?: number; named?: string } {
  const spki = AsnConvert.parse(spkiDer, SubjectPublicKeyInfo);
  const oid = spki.algorithm.algorithm;
  const spk = new Uint8Array(spki.subjectPublicKey);
  if (oid === '1.2.840.113549.1.1.1') {
    const m = new Uint8Array(AsnConvert.parse(spki.subjectPublicKey, RSAPublicKey).modulus);
    const i = m.findIndex((b) => b !== 0);
    return { oid, spk, rsaBits: (m.length - i - 1) * 8 + (32 - Math.clz32(m[i]!)) };
  }
  const p = spki.algorithm.parameters;
  const named = p ? AsnConvert.parse(p, ECParameters).namedCurve : undefined;
  return named === undefined ? { oid, spk } : { oid, spk, named };
}

test('SPKI fields read by the DER walker equal the @peculiar parse (RSA sizes, NIST curves, SM2)', () => {
  const spkis: Uint8Array[] = [
    ...[1024, 2047, 2048, 3072, 4096].map((modulusLength) =>
      der(generateKeyPairSync('rsa', { modulusLength, publicExponent: 3 }).publicKey),
    ),
    ...['prime192v1', 'prime256v1', 'secp384r1', 'secp521r1'].map((namedCurve) =>
      der(generateKeyPairSync('ec', { namedCurve }).publicKey),
    ),
    ...['rsa2048.cer', 'p256.cer', 'sm2.cer'].map((f) => parseCertificate(vector(f)).spkiDer),
  ];
  for (const spkiDer of spkis) {
    const got = parseSpki(spkiDer);
    const want = peculiar(spkiDer);
    assert.deepEqual(got.subjectPublicKey, want.spk);
    assert.equal(got.rsaBits, want.rsaBits);
    assert.deepEqual(describeSpki(AsnConvert.parse(spkiDer, SubjectPublicKeyInfo)), {
      keyAlg: got.keyAlg,
      ...(got.curve ? { curve: got.curve } : {}),
      ...(got.rsaBits ? { rsaBits: got.rsaBits } : {}),
    });
    if (want.named !== undefined) assert.ok(got.curve, `curve ${want.named} is known`);
  }
});

test('ECDSA over curves built on first use signs byte for byte as @noble/curves/nist.js', () => {
  const nist = { 'P-256': p256, 'P-384': p384, 'P-521': p521 } as const;
  const named = { 'P-256': 'prime256v1', 'P-384': 'secp384r1', 'P-521': 'secp521r1' } as const;
  for (const curve of ['P-256', 'P-384', 'P-521'] as const) {
    const pem = generateKeyPairSync('ec', { namedCurve: named[curve] }).privateKey.export({
      format: 'pem',
      type: 'pkcs8',
    });
    const key = loadPrivateKey(new TextEncoder().encode(String(pem)));
    for (const algo of ['sha256', 'sha512'].map((n) => hashAlgoByName(n))) {
      const digest = new Uint8Array(algo.size).map((_, i) => i * 7 + 1);
      const sig = signDigest(key, algo, digest);
      assert.deepEqual(
        sig,
        nist[curve].sign(digest, key.d!, { prehash: false, format: 'der', lowS: false }),
        `${curve} ${algo.name}`,
      );
      assert.equal(verifyDigest(key.publicKey, algo, digest, sig), true);
    }
  }
  // the SM2 point class is built once and reused
  assert.equal(sm2Point(), sm2Point());
});
