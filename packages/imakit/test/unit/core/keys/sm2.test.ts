/**
 * SM2 against openssl pkeyutl (both directions, raw digest and Z/distid modes), the shared
 * vector signature made by evmctl, and sm-crypto-v2 as an independent oracle.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createPrivateKey } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sm2 as oracle } from 'sm-crypto-v2';
import {
  sm2PublicFromPrivate,
  sm2SignDigest,
  sm2SignMessage,
  sm2VerifyDigest,
  sm2VerifyMessage,
  sm2ZDigest,
} from '../../../../src/core/keys/sm2.ts';
import { toHex } from '../../../../src/core/bytes/bytes.ts';
import { hex, run, tempDir, vector, vectorPath } from '../../../helpers.ts';

const sm3 = (b: Uint8Array): Uint8Array => new Uint8Array(createHash('sm3').update(b).digest());

/** d from a PKCS#8 SM2 key: the 32-byte OCTET STRING after `04 20` inside the ECPrivateKey. */
function dFromPem(pem: Buffer): Uint8Array {
  const der = createPrivateKey(pem).export({ format: 'der', type: 'pkcs8' });
  const i = der.indexOf(Buffer.from('020101' + '0420', 'hex'));
  assert.ok(i > 0);
  return new Uint8Array(der.subarray(i + 5, i + 37));
}

const VEC_D = dFromPem(readFileSync(vectorPath('sm2.key')));
const VEC_PUB = sm2PublicFromPrivate(VEC_D);
const HELLO_SM3 = sm3(vector('hello.txt'));

test('public key from the vector private key matches sm2.pub', () => {
  const spki = readFileSync(vectorPath('sm2.pub'), 'utf8');
  const der = Buffer.from(spki.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  assert.equal(toHex(der.subarray(der.length - 65)), toHex(VEC_PUB));
});

test('the evmctl sm2/sm3 vector signature verifies over the bare SM3 digest, not with Z', () => {
  // 03 02 11 31a4fbf1 0047 <sig>: formats.md §3.2 (vectors.md "ECDSA / SM2")
  const xattr = hex(
    '03021131a4fbf100473045022059df2e7879b75b6f5fcd6bfceef512b685ac6b850a6967a09dd2546e531f9d1c022100a5a553072a64e7393a6827801e9e2d0adc3c7123341b89c2f4aee24f02490f90',
  );
  const sig = xattr.subarray(9);
  assert.equal(sig.length, 0x47);
  assert.equal(sm2VerifyDigest(VEC_PUB, HELLO_SM3, sig), true);
  assert.equal(sm2VerifyMessage(VEC_PUB, vector('hello.txt'), sig), false);
  const bad = HELLO_SM3.slice();
  bad[31] = bad[31]! ^ 1;
  assert.equal(sm2VerifyDigest(VEC_PUB, bad, sig), false);
});

test('raw-digest signatures interoperate with openssl pkeyutl both ways', () => {
  const { dir, cleanup } = tempDir();
  try {
    const dg = join(dir, 'dg.bin');
    writeFileSync(dg, HELLO_SM3);
    const ours = join(dir, 'ours.sig');
    writeFileSync(ours, sm2SignDigest(VEC_D, HELLO_SM3));
    const v = run('openssl', [
      'pkeyutl',
      '-verify',
      '-in',
      dg,
      '-sigfile',
      ours,
      '-pubin',
      '-inkey',
      vectorPath('sm2.pub'),
    ]);
    assert.equal(v.status, 0, v.stdout + v.stderr);
    // and openssl must reject it in Z mode: proves no Z was applied
    const vz = run('openssl', [
      'pkeyutl',
      '-verify',
      '-rawin',
      '-digest',
      'sm3',
      '-pkeyopt',
      'distid:1234567812345678',
      '-in',
      vectorPath('hello.txt'),
      '-sigfile',
      ours,
      '-pubin',
      '-inkey',
      vectorPath('sm2.pub'),
    ]);
    assert.notEqual(vz.status, 0);
    const theirs = join(dir, 'theirs.sig');
    const s = run('openssl', [
      'pkeyutl',
      '-sign',
      '-in',
      dg,
      '-inkey',
      vectorPath('sm2.key'),
      '-out',
      theirs,
    ]);
    assert.equal(s.status, 0, s.stderr);
    assert.equal(sm2VerifyDigest(VEC_PUB, HELLO_SM3, new Uint8Array(readFileSync(theirs))), true);
  } finally {
    cleanup();
  }
});

test('Z/distid message signatures interoperate with openssl with a fresh key', () => {
  const { dir, cleanup } = tempDir();
  try {
    const key = join(dir, 'k.pem');
    const pubf = join(dir, 'p.pem');
    assert.equal(run('openssl', ['genpkey', '-algorithm', 'SM2', '-out', key]).status, 0);
    assert.equal(run('openssl', ['pkey', '-in', key, '-pubout', '-out', pubf]).status, 0);
    const d = dFromPem(readFileSync(key));
    const pub = sm2PublicFromPrivate(d);
    const msg = new Uint8Array(readFileSync(key)); // any bytes
    const msgf = join(dir, 'msg');
    writeFileSync(msgf, msg);
    const ours = join(dir, 'ours.sig');
    writeFileSync(ours, sm2SignMessage(d, pub, msg));
    const zopts = ['-rawin', '-digest', 'sm3', '-pkeyopt', 'distid:1234567812345678'];
    const v = run('openssl', [
      'pkeyutl',
      '-verify',
      ...zopts,
      '-in',
      msgf,
      '-sigfile',
      ours,
      '-pubin',
      '-inkey',
      pubf,
    ]);
    assert.equal(v.status, 0, v.stdout + v.stderr);
    const theirs = join(dir, 'theirs.sig');
    assert.equal(
      run('openssl', ['pkeyutl', '-sign', ...zopts, '-in', msgf, '-inkey', key, '-out', theirs]).status,
      0,
    );
    const tsig = new Uint8Array(readFileSync(theirs));
    assert.equal(sm2VerifyMessage(pub, msg, tsig), true);
    assert.equal(sm2VerifyMessage(pub, msg, tsig, 'another-id'), false);
    assert.equal(sm2VerifyDigest(pub, sm3(msg), tsig), false);
  } finally {
    cleanup();
  }
});

test('sm-crypto-v2 oracle: Z digest, and signatures in both directions', () => {
  const pubHex = toHex(VEC_PUB);
  assert.equal(toHex(sm2ZDigest(VEC_PUB)), toHex(oracle.getZ(pubHex)));
  assert.equal(
    toHex(sm2ZDigest(VEC_PUB, 'ALICE123@YAHOO.COM')),
    toHex(oracle.getZ(pubHex, 'ALICE123@YAHOO.COM')),
  );
  const msg = new Uint8Array([1, 2, 3, 4, 5]);
  // ours -> oracle, raw (hash:false) and Z (hash:true, default id)
  const raw = sm2SignDigest(VEC_D, HELLO_SM3);
  assert.equal(oracle.doVerifySignature(HELLO_SM3, toHex(raw), pubHex, { der: true }), true);
  const zs = sm2SignMessage(VEC_D, VEC_PUB, msg);
  assert.equal(oracle.doVerifySignature(msg, toHex(zs), pubHex, { der: true, hash: true }), true);
  // oracle -> ours
  const o1 = hex(oracle.doSignature(HELLO_SM3, toHex(VEC_D), { der: true }));
  assert.equal(sm2VerifyDigest(VEC_PUB, HELLO_SM3, o1), true);
  const o2 = hex(oracle.doSignature(msg, toHex(VEC_D), { der: true, hash: true, publicKey: pubHex }));
  assert.equal(sm2VerifyMessage(VEC_PUB, msg, o2), true);
  // public key derivation agrees
  assert.equal(oracle.getPublicKeyFromPrivateKey(toHex(VEC_D)), pubHex);
});

test('signatures are randomized and never verify under a different key', () => {
  const a = sm2SignDigest(VEC_D, HELLO_SM3);
  const b = sm2SignDigest(VEC_D, HELLO_SM3);
  assert.notEqual(toHex(a), toHex(b));
  const other = sm2PublicFromPrivate(12345n);
  assert.equal(sm2VerifyDigest(other, HELLO_SM3, a), false);
});

test('malformed signatures and keys return false instead of throwing', () => {
  const good = sm2SignDigest(VEC_D, HELLO_SM3);
  const cases: Uint8Array[] = [
    new Uint8Array(0),
    good.subarray(0, good.length - 1),
    new Uint8Array([...good, 0]),
    hex('3006020100020101'), // r = 0
    new Uint8Array(72).fill(0xff),
  ];
  for (const c of cases) assert.equal(sm2VerifyDigest(VEC_PUB, HELLO_SM3, c), false);
  assert.equal(sm2VerifyDigest(new Uint8Array(65), HELLO_SM3, good), false);
  assert.equal(sm2VerifyDigest(VEC_PUB.subarray(0, 64), HELLO_SM3, good), false);
  assert.equal(sm2VerifyMessage(new Uint8Array(3), HELLO_SM3, good), false);
});

test('private key range is checked (misuse throws RangeError)', () => {
  assert.throws(() => sm2PublicFromPrivate(0n), RangeError);
  assert.throws(() => sm2SignDigest(new Uint8Array(33), HELLO_SM3), RangeError);
  assert.throws(
    () => sm2SignDigest(hex('fffffffeffffffffffffffffffffffff7203df6b21c6052b53bbf40939d54122'), HELLO_SM3),
    RangeError,
  );
});
