import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import {
  generateKeyPair,
  exportPrivateKeyPem,
  normalizeCurve,
  type KeySpec,
} from '../../../../src/core/keys/key-gen.ts';
import { buildCertificate, parseDn, skidMethod1 } from '../../../../src/core/keys/x509-build.ts';
import { parseCertificate } from '../../../../src/core/keys/x509.ts';
import { keyIdOfCertificate, formatKeyId } from '../../../../src/core/keys/keyid.ts';
import { loadPrivateKey } from '../../../../src/core/keys/keys.ts';
import { signImaDigest } from '../../../../src/core/labels/ima-signature.ts';
import { hashAlgoByName } from '../../../../src/core/hash/hash-algo.ts';
import { isImakitError } from '../../../../src/errors.ts';
import { run, tempDir } from '../../../helpers.ts';

const SPECS: readonly (KeySpec & { name: string; hash: string })[] = [
  { name: 'rsa2048', alg: 'rsa', bits: 2048, hash: 'sha256' },
  { name: 'p256', alg: 'ec', curve: 'P-256', hash: 'sha256' },
  { name: 'p384', alg: 'ec', curve: 'P-384', hash: 'sha384' },
  { name: 'sm2', alg: 'sm2', hash: 'sm3' },
];
const DISTID = ['-vfyopt', 'distid:1234567812345678'];

/** Make a CA and a leaf for `spec` in `dir`; returns paths. */
function makeChain(dir: string, spec: KeySpec, pass?: string) {
  const ca = generateKeyPair(spec);
  const caCert = buildCertificate({
    publicKey: ca.publicKey,
    issuerKey: ca.privateKey,
    subject: '/O=IMA-test/CN=imakit CA',
    ca: true,
    days: 30,
  });
  const leaf = generateKeyPair(spec);
  const leafCert = buildCertificate({
    publicKey: leaf.publicKey,
    issuerKey: ca.privateKey,
    issuerCert: caCert.cert,
    subject: 'CN=imakit signing key, O=IMA-test, emailAddress=ima@test.com',
    ca: false,
    codeSigning: true,
  });
  const p = (n: string) => join(dir, n);
  writeFileSync(p('ca.pem'), caCert.pem);
  writeFileSync(p('cert.pem'), leafCert.pem);
  writeFileSync(p('cert.der'), leafCert.der);
  writeFileSync(p('key.pem'), exportPrivateKeyPem(leaf.privateKey, pass));
  return { ca, caCert, leaf, leafCert, p };
}

for (const spec of SPECS) {
  test(`${spec.name}: CA -> leaf chain passes openssl verify; extensions as the kernel needs`, () => {
    const { dir, cleanup } = tempDir();
    try {
      const { caCert, leafCert, p } = makeChain(dir, spec);
      const extra = spec.alg === 'sm2' ? DISTID : [];
      const v = run('openssl', ['verify', ...extra, '-CAfile', p('ca.pem'), p('cert.pem')]);
      assert.equal(v.status, 0, v.stdout + v.stderr);
      // self-signed CA verifies against itself too
      assert.equal(run('openssl', ['verify', ...extra, '-CAfile', p('ca.pem'), p('ca.pem')]).status, 0);
      if (spec.alg === 'sm2') {
        // the distinguishing ID is really used: a wrong one, or none (OpenSSL 3 then uses ""), fails
        assert.notEqual(
          run('openssl', [
            'verify',
            '-vfyopt',
            'distid:0000000000000000',
            '-CAfile',
            p('ca.pem'),
            p('cert.pem'),
          ]).status,
          0,
        );
        assert.notEqual(run('openssl', ['verify', '-CAfile', p('ca.pem'), p('cert.pem')]).status, 0);
      }
      const text = run('openssl', ['x509', '-in', p('cert.pem'), '-noout', '-text']).stdout;
      assert.match(text, /Basic Constraints: critical\s+CA:FALSE/);
      assert.match(text, /Key Usage: critical\s+Digital Signature\n/);
      assert.match(text, /Extended Key Usage:\s+Code Signing/);
      assert.match(text, /Subject Key Identifier/);
      assert.match(text, /Authority Key Identifier/);
      if (spec.alg === 'sm2') assert.match(text, /Signature Algorithm: SM2-with-SM3/);
      const caText = run('openssl', ['x509', '-in', p('ca.pem'), '-noout', '-text']).stdout;
      assert.match(caText, /Basic Constraints: critical\s+CA:TRUE/);
      assert.match(caText, /Key Usage: critical\s+Digital Signature, Certificate Sign, CRL Sign/);
      // SKID is RFC 5280 method 1, AKID is the CA's SKID, as openssl prints them
      const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
      assert.equal(
        hex(leafCert.cert.skid!),
        createHash('sha1').update(leafCert.cert.subjectPublicKey).digest('hex'),
      );
      assert.equal(hex(leafCert.cert.akid!), hex(caCert.cert.skid!));
      const opensslSkid = run('openssl', [
        'x509',
        '-in',
        p('cert.pem'),
        '-noout',
        '-ext',
        'subjectKeyIdentifier',
      ]).stdout;
      assert.ok(opensslSkid.replace(/[\s:]/g, '').toLowerCase().includes(hex(leafCert.cert.skid!)));
      // openssl reads the private key (SM2 as SM2, not plain EC)
      const pk = run('openssl', ['pkey', '-in', p('key.pem'), '-noout', '-text']);
      assert.equal(pk.status, 0, pk.stderr);
      if (spec.alg === 'sm2') assert.match(pk.stdout, /ASN1 OID: SM2/);
    } finally {
      cleanup();
    }
  });

  test(`${spec.name}: signatures by the generated key verify with evmctl; keyid = SKID tail = evmctl's`, () => {
    const { dir, cleanup } = tempDir();
    try {
      const { leafCert, p } = makeChain(dir, spec);
      const file = p('data.bin');
      writeFileSync(file, `imakit ${spec.name} ${Date.now()}\n`);
      const key = loadPrivateKey(readFileSync(p('key.pem')));
      const algo = hashAlgoByName(spec.hash);
      const digest = createHash(spec.hash).update(readFileSync(file)).digest();
      const sig = signImaDigest({ key, algo, digest: new Uint8Array(digest) });
      const keyid = keyIdOfCertificate(leafCert.cert);
      assert.equal(Buffer.from(sig.subarray(3, 7)).toString('hex'), formatKeyId(keyid));
      assert.equal(formatKeyId(keyid), Buffer.from(leafCert.cert.skid!.subarray(-4)).toString('hex'));
      // evmctl computes the same keyid from the key alone (1.4 hashes the SPKI bit string)
      const n = run('evmctl', ['ima_sign', '-n', '-a', spec.hash, '-k', p('key.pem'), file]);
      assert.equal(n.status, 0, n.stderr);
      const evmSig = n.stdout.trim().split(/\s+/).pop()!;
      assert.equal(evmSig.slice(6, 14), formatKeyId(keyid), n.stdout);
      // our signature verifies with evmctl against the DER certificate
      writeFileSync(file + '.sig', sig);
      const v = run('evmctl', ['ima_verify', '--sigfile', '--key', p('cert.der'), file]);
      assert.equal(v.status, 0, v.stdout + v.stderr);
      // and a signature over other data does not
      writeFileSync(file, 'tampered\n');
      assert.notEqual(run('evmctl', ['ima_verify', '--sigfile', '--key', p('cert.der'), file]).status, 0);
    } finally {
      cleanup();
    }
  });
}

test('encrypted private keys: openssl and loadPrivateKey need the passphrase', () => {
  const { dir, cleanup } = tempDir();
  try {
    for (const spec of [SPECS[1]!, SPECS[3]!]) {
      const { p } = makeChain(dir, spec, 'correct horse');
      const pem = readFileSync(p('key.pem'), 'utf8');
      assert.match(pem, /BEGIN ENCRYPTED PRIVATE KEY/);
      assert.equal(
        run('openssl', ['pkey', '-in', p('key.pem'), '-passin', 'pass:correct horse', '-noout']).status,
        0,
      );
      assert.notEqual(
        run('openssl', ['pkey', '-in', p('key.pem'), '-passin', 'pass:wrong', '-noout']).status,
        0,
      );
      assert.equal(loadPrivateKey(Buffer.from(pem), { passphrase: 'correct horse' }).alg, spec.alg);
      assert.throws(
        () => loadPrivateKey(Buffer.from(pem), { passphrase: 'wrong' }),
        (e) => isImakitError(e, 'E_KEY_PASSPHRASE'),
      );
      assert.throws(
        () => loadPrivateKey(Buffer.from(pem)),
        (e) => isImakitError(e, 'E_KEY_PASSPHRASE'),
      );
    }
  } finally {
    cleanup();
  }
});

test('builder rejects bad options with typed errors', () => {
  const a = generateKeyPair({ alg: 'ec' });
  const b = generateKeyPair({ alg: 'ec' });
  const ca = buildCertificate({ publicKey: a.publicKey, issuerKey: a.privateKey, subject: 'CN=a', ca: true });
  const leaf = buildCertificate({
    publicKey: b.publicKey,
    issuerKey: a.privateKey,
    issuerCert: ca.cert,
    subject: 'CN=b',
    ca: false,
  });
  const code = (c: string) => (e: unknown) => isImakitError(e, c as never);
  // issuer key does not belong to the issuer certificate
  assert.throws(
    () =>
      buildCertificate({
        publicKey: a.publicKey,
        issuerKey: b.privateKey,
        issuerCert: ca.cert,
        subject: 'CN=x',
        ca: false,
      }),
    code('E_KEY_MISMATCH'),
  );
  // a leaf cannot issue
  assert.throws(
    () =>
      buildCertificate({
        publicKey: a.publicKey,
        issuerKey: b.privateKey,
        issuerCert: leaf.cert,
        subject: 'CN=x',
        ca: false,
      }),
    code('E_CERT_BUILD'),
  );
  // self-signed with someone else's key
  assert.throws(
    () => buildCertificate({ publicKey: a.publicKey, issuerKey: b.privateKey, subject: 'CN=x', ca: true }),
    code('E_CERT_BUILD'),
  );
  assert.throws(
    () => buildCertificate({ publicKey: a.publicKey, issuerKey: a.privateKey, subject: 'XX=1', ca: true }),
    code('E_CERT_BUILD'),
  );
  assert.throws(
    () =>
      buildCertificate({
        publicKey: a.publicKey,
        issuerKey: a.privateKey,
        subject: 'CN=x',
        ca: true,
        days: 0,
      }),
    code('E_CERT_BUILD'),
  );
  assert.throws(() => generateKeyPair({ alg: 'rsa', bits: 1024 }), code('E_KEY_TYPE'));
  assert.throws(() => normalizeCurve('P-192'), code('E_KEY_TYPE'));
  assert.equal(normalizeCurve('prime256v1'), 'P-256');
  assert.equal(normalizeCurve('secp384r1'), 'P-384');
  assert.deepEqual(parseDn('/O=IMA-test/CN=IMA test key'), [
    ['O', 'IMA-test'],
    ['CN', 'IMA test key'],
  ]);
  assert.deepEqual(parseDn('CN=a\\, b, O=c'), [
    ['CN', 'a, b'],
    ['O', 'c'],
  ]);
  // validity beyond 2049 uses GeneralizedTime and still parses
  const far = buildCertificate({
    publicKey: a.publicKey,
    issuerKey: a.privateKey,
    subject: 'CN=far',
    ca: true,
    days: 40000,
  });
  assert.ok(far.cert.notAfter.getUTCFullYear() > 2100);
  assert.deepEqual(skidMethod1(ca.cert.subjectPublicKey), ca.cert.skid);
});

test('property: the certificate parser only raises typed errors on mutated certificates', () => {
  const a = generateKeyPair({ alg: 'ec' });
  const der = buildCertificate({
    publicKey: a.publicKey,
    issuerKey: a.privateKey,
    subject: 'CN=p',
    ca: true,
  }).der;
  fc.assert(
    fc.property(
      fc.nat({ max: der.length - 1 }),
      fc.integer({ min: 0, max: 255 }),
      fc.boolean(),
      (pos, val, cut) => {
        const m = cut ? der.slice(0, pos) : Uint8Array.from(der);
        if (!cut) m[pos] = val;
        try {
          parseCertificate(m);
        } catch (e) {
          assert.ok(isImakitError(e), `untyped error: ${String(e)}`);
        }
      },
    ),
    { numRuns: 400 },
  );
});
