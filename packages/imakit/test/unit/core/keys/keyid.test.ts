/**
 * Certificate parsing and key ids: the four vector certificates (formats.md §3.5 table), fields
 * cross-checked with `openssl x509`, PEM codec, and key id text forms.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { isImakitError } from '../../../../src/errors.ts';
import { toHex } from '../../../../src/core/bytes/bytes.ts';
import { parseCertificate, pemDecode, pemEncode } from '../../../../src/core/keys/x509.ts';
import {
  formatKeyId,
  formatKeyIdEvmctl,
  formatKeyIdV1,
  keyIdFromSubjectPublicKey,
  keyIdOfCertificate,
  keyIdV1,
  parseKeyId,
  rsaKeyBlobV1,
} from '../../../../src/core/keys/keyid.ts';
import { run, vector, vectorPath } from '../../../helpers.ts';

const CERTS = [
  {
    file: 'rsa2048.cer',
    spkiSha1: '29c324a71cc96f88d9be2f4a9b54f0534d0e4f4d',
    keyid: '4d0e4f4d',
    alg: 'rsa',
  },
  { file: 'p256.cer', spkiSha1: '226bc955e58752149ee70f8f2a028859027eaa7d', keyid: '027eaa7d', alg: 'ec' },
  { file: 'sm2.cer', spkiSha1: '86da4f56226e4bbbdf0f3c691ea3b12a31a4fbf1', keyid: '31a4fbf1', alg: 'sm2' },
  {
    file: 'rsa2048_skid.cer',
    spkiSha1: '57cf56c10d31582d41603d765bba044176732299',
    keyid: '11121314',
    alg: 'rsa',
  },
] as const;

test('key ids of the four vector certificates (SKID tail; SPKI-hash fallback)', () => {
  for (const c of CERTS) {
    const cert = parseCertificate(vector(c.file));
    assert.equal(cert.keyAlg, c.alg, c.file);
    assert.equal(toHex(createHash('sha1').update(cert.subjectPublicKey).digest()), c.spkiSha1, c.file);
    assert.equal(formatKeyId(keyIdOfCertificate(cert)), c.keyid, c.file);
    assert.equal(formatKeyId(keyIdFromSubjectPublicKey(cert.subjectPublicKey)), c.spkiSha1.slice(32), c.file);
  }
  // pitfall 13: the custom SKID differs from the SPKI hash; without the SKID the id is the hash
  const skidCert = parseCertificate(vector('rsa2048_skid.cer'));
  assert.equal(toHex(skidCert.skid!), '0102030405060708090a0b0c0d0e0f1011121314');
  assert.equal(formatKeyId(keyIdOfCertificate({ subjectPublicKey: skidCert.subjectPublicKey })), '76732299');
});

test('certificate fields agree with openssl x509', () => {
  for (const c of CERTS) {
    const cert = parseCertificate(vector(c.file));
    const o = run('openssl', [
      'x509',
      '-inform',
      'der',
      '-in',
      vectorPath(c.file),
      '-noout',
      '-serial',
      '-enddate',
      '-pubkey',
      '-ext',
      'subjectKeyIdentifier,basicConstraints,keyUsage',
    ]);
    assert.equal(o.status, 0, o.stderr);
    assert.match(o.stdout, new RegExp(`serial=${cert.serialHex.toUpperCase()}`));
    const skidText = o.stdout.match(/Subject Key Identifier:\s*\n\s*([0-9A-F:]+)/)![1]!;
    assert.equal(skidText.replace(/:/g, '').toLowerCase(), toHex(cert.skid!));
    const end = new Date(o.stdout.match(/notAfter=(.*)/)![1]!);
    assert.equal(end.getTime(), cert.notAfter.getTime());
    const pem = pemDecode(o.stdout).find((b) => b.label === 'PUBLIC KEY')!;
    assert.equal(toHex(pem.der), toHex(cert.spkiDer), c.file);
    assert.equal(cert.basicConstraints?.ca, false);
    assert.equal(cert.keyUsage?.digitalSignature, true);
    assert.equal(cert.keyUsage?.keyCertSign, false);
  }
  const p = parseCertificate(vector('p256.cer'));
  assert.equal(p.curve, 'P-256');
  assert.equal(parseCertificate(vector('rsa2048.cer')).rsaBits, 2048);
  const sm2 = parseCertificate(vector('sm2.cer'));
  assert.equal(sm2.sigAlgOid, '1.2.156.10197.1.501');
  assert.equal(sm2.curve, 'SM2');
  assert.deepEqual(parseCertificate(vector('rsa2048.cer')).extKeyUsage, ['1.3.6.1.5.5.7.3.3']);
  assert.match(sm2.subject, /CN=Test signing key/);
});

test('tbsDer is the exact signed region: the RSA cert self-verifies with node over tbsDer', async () => {
  const { createVerify } = await import('node:crypto');
  const cert = parseCertificate(vector('rsa2048.cer'));
  const ok = createVerify('sha256')
    .update(cert.tbsDer)
    .verify(readFileSync(vectorPath('rsa2048.pub')), cert.signature);
  assert.equal(ok, true);
});

test('PEM decode/encode round trip, and bad inputs raise E_KEY_PARSE', () => {
  const blocks = pemDecode(readFileSync(vectorPath('rsa2048_skid_keycert.pem')));
  assert.deepEqual(
    blocks.map((b) => b.label),
    ['PRIVATE KEY', 'CERTIFICATE'],
  );
  const der = vector('rsa2048.cer');
  const again = pemDecode(pemEncode('CERTIFICATE', der));
  assert.equal(toHex(again[0]!.der), toHex(der));
  assert.throws(
    () => pemDecode('-----BEGIN X-----\n@@@@\n-----END X-----\n'),
    (e) => isImakitError(e, 'E_KEY_PARSE'),
  );
  for (const bad of [
    new Uint8Array(0),
    new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x00]),
    der.subarray(0, 100),
    new Uint8Array([...der, 0]),
  ])
    assert.throws(
      () => parseCertificate(bad),
      (e) => isImakitError(e, 'E_KEY_PARSE'),
    );
});

test('key id text forms: kernel %08x, evmctl %x, --keyid parsing', () => {
  assert.equal(formatKeyId(0x027eaa7d), '027eaa7d');
  assert.equal(formatKeyIdEvmctl(0x027eaa7d), '27eaa7d');
  assert.equal(parseKeyId('aabbccdd'), 0xaabbccdd);
  assert.equal(parseKeyId('0x27eaa7d'), 0x027eaa7d);
  assert.equal(parseKeyId('id:027eaa7d'), 0x027eaa7d);
  for (const bad of ['', '0', '123456789', 'xyz', '00000000'])
    assert.throws(
      () => parseKeyId(bad),
      (e) => isImakitError(e, 'E_KEYID_BAD'),
      bad,
    );
});

test('v1 key id: SHA-1 over the key2bin blob, bytes 12..19', () => {
  // the blob layout of formats.md §3.4, built by hand for n = 0x00c5 (leading zero stripped), e = 65537
  const blob = rsaKeyBlobV1(new Uint8Array([0x00, 0xc5]), new Uint8Array([1, 0, 1]));
  assert.equal(toHex(blob), '01' + '00000000' + '00' + '02' + '0008c5' + '0011010001');
  const id = keyIdV1(new Uint8Array([0xc5]), new Uint8Array([1, 0, 1]));
  assert.equal(toHex(id), toHex(createHash('sha1').update(blob).digest().subarray(12, 20)));
  assert.equal(formatKeyIdV1(new Uint8Array([0, 0, 0, 0, 0, 0, 0x0a, 0xbc])), 'ABC');
});

test('property: mutated certificates and random bytes only raise E_KEY_PARSE', () => {
  const certs = ['rsa2048.cer', 'p256.cer', 'sm2.cer'].map((c) => vector(c));
  fc.assert(
    fc.property(
      fc.oneof(
        fc.uint8Array({ maxLength: 200 }),
        fc
          .tuple(fc.constantFrom(...certs), fc.nat({ max: 950 }), fc.nat({ max: 255 }), fc.nat({ max: 950 }))
          .map(([c, i, v, cut]) => {
            const m = c.slice(0, Math.max(cut, c.length - (cut % 3)));
            if (i < m.length) m[i] = v;
            return m;
          }),
      ),
      (b) => {
        try {
          const cert = parseCertificate(b);
          keyIdOfCertificate(cert);
        } catch (e) {
          if (!isImakitError(e)) throw e;
        }
      },
    ),
    { numRuns: 1500 },
  );
});
