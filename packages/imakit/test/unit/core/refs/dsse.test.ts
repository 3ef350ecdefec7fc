/**
 * DSSE envelopes and detached reference-set signatures (issue 12): PAE bytes as the DSSE spec
 * writes them; sign/verify round trips (ECDSA, RSA, SM2); a flipped byte anywhere fails; envelopes
 * made by Keylime 7.14's own signer (test/vectors/keylime/dsse, ORIGIN.md) verify, and imakit's
 * ecdsa key id is the one Keylime computes; base64 is read strictly (Keylime's reads hex first).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { vectorPath } from '../../../helpers.ts';
import { isImakitError } from '../../../../src/errors.ts';
import { loadPrivateKey, loadPublicKey } from '../../../../src/core/keys/keys.ts';
import {
  decodeBase64Strict,
  dssePae,
  encodeDsseEnvelope,
  KEYLIME_PAYLOAD_TYPE,
  keylimeEcdsaKeyId,
  parseDsseEnvelope,
  signDsse,
  verifyDsseEnvelope,
} from '../../../../src/core/refs/dsse.ts';
import { signRefsBytes, verifyRefsSignature } from '../../../../src/core/refs/refs-signature.ts';

const key = (n: string) => loadPrivateKey(readFileSync(vectorPath(n)));
const pub = (n: string) => loadPublicKey(readFileSync(vectorPath(n)));
const p256 = key('p256.key');
const rsa = key('rsa2048.key');
const sm2 = key('sm2.key');
const payload = new TextEncoder().encode('{"meta": {"version": 1}}');

test('PAE is "DSSEv1 <len> <type> <len> <payload>" with byte lengths', () => {
  assert.equal(
    Buffer.from(dssePae('http://example.com/HelloWorld', new TextEncoder().encode('hello world'))).toString(),
    'DSSEv1 29 http://example.com/HelloWorld 11 hello world',
  );
  // lengths count UTF-8 bytes, not characters
  assert.equal(
    Buffer.from(dssePae('é', new Uint8Array([0xff])))
      .subarray(0, 11)
      .toString('latin1'),
    'DSSEv1 2 \xc3\xa9',
  );
});

test('envelope round trip: sign, encode, parse, verify (ECDSA, RSA, SM2)', () => {
  for (const k of [p256, rsa, sm2]) {
    const env = signDsse(KEYLIME_PAYLOAD_TYPE, payload, k);
    const back = parseDsseEnvelope(encodeDsseEnvelope(env));
    assert.deepEqual(Buffer.from(back.payload), Buffer.from(payload));
    assert.equal(back.payloadType, KEYLIME_PAYLOAD_TYPE);
    assert.equal(encodeDsseEnvelope(back), encodeDsseEnvelope(env));
    assert.equal(verifyDsseEnvelope(back, [k.publicKey]).status, 'pass', k.alg);
    // another key does not verify it
    const other = k === p256 ? rsa : p256;
    assert.equal(verifyDsseEnvelope(back, [other.publicKey]).status, 'fail', k.alg);
  }
});

test('a flipped byte in payload, payloadType or signature fails the envelope', () => {
  const env = signDsse(KEYLIME_PAYLOAD_TYPE, payload, p256);
  const flip = (b: Uint8Array, i: number) => {
    const c = Uint8Array.from(b);
    c[i]! ^= 1;
    return c;
  };
  for (let i = 0; i < payload.length; i++)
    assert.equal(verifyDsseEnvelope({ ...env, payload: flip(payload, i) }, [p256.publicKey]).status, 'fail');
  assert.equal(
    verifyDsseEnvelope({ ...env, payloadType: 'application/vnd.keylime+jsoN' }, [p256.publicKey]).status,
    'fail',
  );
  const s = env.signatures[0]!;
  for (const i of [0, 5, s.sig.length - 1])
    assert.equal(
      verifyDsseEnvelope({ ...env, signatures: [{ ...s, sig: flip(s.sig, i) }] }, [p256.publicKey]).status,
      'fail',
    );
  assert.equal(verifyDsseEnvelope({ ...env, signatures: [] }, [p256.publicKey]).status, 'unsigned');
});

test("envelopes made by Keylime 7.14's signer (ecdsa and x509 backends) verify; the ecdsa key id is Keylime's", () => {
  const signerPub = pub('keylime/dsse/signer.pub');
  const signerCert = pub('keylime/dsse/signer.x509.crt');
  for (const f of ['policy.ecdsa.dsse', 'policy.x509.dsse']) {
    const env = parseDsseEnvelope(readFileSync(vectorPath(`keylime/dsse/${f}`), 'utf8'));
    assert.equal(env.payloadType, KEYLIME_PAYLOAD_TYPE);
    assert.equal(verifyDsseEnvelope(env, [signerPub]).status, 'pass', f);
    assert.equal(verifyDsseEnvelope(env, [signerCert]).status, 'pass', f);
    assert.equal(verifyDsseEnvelope(env, [p256.publicKey]).status, 'fail', f);
    assert.ok(JSON.parse(Buffer.from(env.payload).toString()).digests['/base_policy_data']);
  }
  const ecdsa = parseDsseEnvelope(readFileSync(vectorPath('keylime/dsse/policy.ecdsa.dsse'), 'utf8'));
  assert.equal(ecdsa.signatures[0]!.keyid, keylimeEcdsaKeyId(signerPub));
  // x509 key id: base64 of the certificate's PEM, which is the very certificate Keylime wrote
  const x509 = parseDsseEnvelope(readFileSync(vectorPath('keylime/dsse/policy.x509.dsse'), 'utf8'));
  assert.equal(
    Buffer.from(x509.signatures[0]!.keyid!, 'base64').toString(),
    readFileSync(vectorPath('keylime/dsse/signer.x509.crt'), 'utf8'),
  );
});

test('malformed envelopes: typed errors naming the JSON path', () => {
  const bad = (text: string, field: string) =>
    assert.throws(
      () => parseDsseEnvelope(text),
      (e) => isImakitError(e, 'E_REFS_FORMAT') && e.context.field === field,
    );
  bad('[1]', '$');
  bad('{"payload":"e30=","signatures":[]}', '$.payloadType');
  bad('{"payload":"e30=","payloadType":"t"}', '$.signatures');
  bad('{"payload":"e3 0=","payloadType":"t","signatures":[]}', '$.payload');
  bad('{"payload":"e30=","payloadType":"t","signatures":[{"sig":"!!"}]}', '$.signatures[0].sig');
  bad(
    '{"payload":"e30=","payloadType":"t","signatures":[{"sig":"AA==","keyid":5}]}',
    '$.signatures[0].keyid',
  );
  // non-canonical base64 (stray bits) is refused; URL-safe and unpadded are DSSE-legal
  assert.throws(
    () => decodeBase64Strict('e31=', 'x'),
    (e) => isImakitError(e, 'E_REFS_FORMAT'),
  );
  assert.deepEqual(Buffer.from(decodeBase64Strict('-_8', 'x')), Buffer.from([0xfb, 0xff]));
  // Keylime's b64dec reads an all-hex payload as hex; imakit reads base64: '7b7d' is not '{}'
  assert.deepEqual(Buffer.from(decodeBase64Strict('7b7d', 'x')), Buffer.from('7b7d', 'base64'));
});

test('detached signature: round trip per key type, flipped byte in set or signature fails, wrong key is unknown-key', () => {
  const set = new TextEncoder().encode('IMAREFS\0 pretend set bytes');
  for (const k of [p256, rsa, sm2]) {
    const sig = signRefsBytes(set, k);
    assert.equal(sig[0], 0x03);
    assert.equal(sig[1], 2);
    assert.equal(verifyRefsSignature(set, sig, [k.publicKey]).status, 'pass', k.alg);
    const s2 = Uint8Array.from(set);
    s2[3]! ^= 0x20;
    assert.equal(verifyRefsSignature(s2, sig, [k.publicKey]).status, 'fail', k.alg);
    const g2 = Uint8Array.from(sig);
    g2[g2.length - 2]! ^= 1;
    assert.equal(verifyRefsSignature(set, g2, [k.publicKey]).status, 'fail', k.alg);
    assert.equal(verifyRefsSignature(set, sig, [(k === rsa ? p256 : rsa).publicKey]).status, 'unknown-key');
  }
  const v = verifyRefsSignature(set, new Uint8Array([1, 2, 3]), [rsa.publicKey]);
  assert.equal(v.status, 'fail');
  assert.equal(v.form, 'malformed');
});
