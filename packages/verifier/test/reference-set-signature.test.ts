/**
 * Signed reference-set uploads (PGlite, inject): with reference-set keys configured an upload must
 * be a DSSE envelope one of them signed, or another form with a detached `imakit refs sign`
 * signature in `?signature=`; unsigned, wrongly signed or tampered uploads are 422 and store
 * nothing. Without keys a set is stored unchecked and says so, and a detached signature sent anyway
 * is refused rather than ignored.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import {
  KEYLIME_PAYLOAD_TYPE,
  ReferenceSetBuilder,
  encodeDsseEnvelope,
  encodeRefsBinary,
  loadPrivateKey,
  signDsse,
  signRefsBytes,
  writeKeylimePolicy,
  type PrivateKey,
} from 'imakit/core';
import { buildApp, createToken, openDatabase, type App } from '../src/index.ts';

function key(type: 'rsa' | 'ec'): PrivateKey {
  const { privateKey } =
    type === 'rsa'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return loadPrivateKey(new Uint8Array(Buffer.from(privateKey.export({ format: 'pem', type: 'pkcs8' }))));
}

function refs(path: string) {
  const b = new ReferenceSetBuilder({ hashAlgo: 'sha256' });
  b.addDigest(path, { algo: 'sha256', digest: new Uint8Array(32).fill(7), provenance: { kind: 'rootfs' } });
  return b.build();
}

const trusted = key('rsa');
const trustedEc = key('ec');
const stranger = key('rsa');
const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');

async function appWith(keys: PrivateKey[]): Promise<{ app: App; token: string }> {
  const database = await openDatabase({ kind: 'pglite' });
  const app = await buildApp({ database, refsKeys: keys.map((k) => k.publicKey) });
  return { app, token: await createToken(database.db, 'operate') };
}

describe('with reference-set keys', () => {
  let app: App;
  let token: string;
  before(async () => ({ app, token } = await appWith([trusted, trustedEc])));
  after(async () => app?.close());
  const upload = (body: Uint8Array | string, signature?: string) =>
    app.inject({
      method: 'POST',
      url: `/v1/reference-sets?name=t${signature === undefined ? '' : `&signature=${encodeURIComponent(signature)}`}`,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
      payload: Buffer.from(body),
    });
  const count = async () =>
    (
      await app.inject({
        method: 'GET',
        url: '/v1/reference-sets',
        headers: { authorization: `Bearer ${token}` },
      })
    ).json().referenceSets.length as number;

  test('a compact set with a detached signature by a configured key is stored, with what verified', async () => {
    const body = encodeRefsBinary(refs('/usr/bin/a'));
    const r = await upload(body, b64(signRefsBytes(body, trusted)));
    assert.equal(r.statusCode, 201, r.body);
    assert.equal(r.json().signature.form, 'detached');
    assert.equal(r.json().signature.key, 0);
    assert.match(r.json().notEstablished[0], /every reference-set key is trusted/);
    const shown = await app.inject({
      method: 'GET',
      url: `/v1/reference-sets/${r.json().id}`,
      headers: { authorization: `Bearer ${token}` },
    });
    assert.deepEqual(shown.json().signature, r.json().signature);
  });

  test('unsigned, signed by another key, or signed over other bytes: 422, nothing stored', async () => {
    const before = await count();
    const body = encodeRefsBinary(refs('/usr/bin/b'));
    const unsigned = await upload(body);
    assert.equal(unsigned.statusCode, 422, unsigned.body);
    assert.equal(unsigned.json().error.code, 'V_REFS_UNSIGNED');
    const other = await upload(body, b64(signRefsBytes(body, stranger)));
    assert.equal(other.statusCode, 422);
    assert.equal(other.json().error.code, 'V_REFS_SIGNATURE');
    const tampered = encodeRefsBinary(refs('/usr/bin/evil'));
    const moved = await upload(tampered, b64(signRefsBytes(body, trusted)));
    assert.equal(moved.json().error.code, 'V_REFS_SIGNATURE');
    const garbage = await upload(body, 'AAAA');
    assert.equal(garbage.json().error.code, 'V_REFS_SIGNATURE');
    const notBase64 = await upload(body, 'not base64!');
    assert.equal(notBase64.statusCode, 400);
    assert.equal(await count(), before);
  });

  test('a Keylime policy in a DSSE envelope: signed by a configured ECDSA key passes; another key or no signature fails', async () => {
    const policy = new Uint8Array(Buffer.from(writeKeylimePolicy(refs('/usr/bin/c')).text));
    const good = encodeDsseEnvelope(signDsse(KEYLIME_PAYLOAD_TYPE, policy, trustedEc));
    const r = await upload(good);
    assert.equal(r.statusCode, 201, r.body);
    assert.equal(r.json().signature.form, 'dsse');
    assert.equal(r.json().signature.key, 1);
    const bad = encodeDsseEnvelope(signDsse(KEYLIME_PAYLOAD_TYPE, policy, key('ec')));
    assert.equal((await upload(bad)).json().error.code, 'V_REFS_SIGNATURE');
    const bare = JSON.stringify({ payloadType: KEYLIME_PAYLOAD_TYPE, payload: b64(policy), signatures: [] });
    const u = await upload(bare);
    assert.equal(u.statusCode, 422, u.body);
    assert.equal(u.json().error.code, 'V_REFS_UNSIGNED');
    // an envelope carries its own signatures
    assert.equal((await upload(good, 'AAAA')).statusCode, 400);
  });
});

describe('without reference-set keys', () => {
  let app: App;
  let token: string;
  before(async () => ({ app, token } = await appWith([])));
  after(async () => app?.close());

  test('a set is stored unchecked and says so; a detached signature cannot be checked and is refused', async () => {
    const body = encodeRefsBinary(refs('/usr/bin/d'));
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' };
    const r = await app.inject({
      method: 'POST',
      url: '/v1/reference-sets',
      headers,
      payload: Buffer.from(body),
    });
    assert.equal(r.statusCode, 201, r.body);
    assert.equal(r.json().signature, null);
    assert.match(r.json().notEstablished[0], /no signature was checked/);
    const s = await app.inject({
      method: 'POST',
      url: `/v1/reference-sets?signature=${encodeURIComponent(b64(signRefsBytes(body, trusted)))}`,
      headers,
      payload: Buffer.from(body),
    });
    assert.equal(s.statusCode, 422, s.body);
    assert.equal(s.json().error.code, 'V_REFS_SIGNATURE');
  });
});
