/**
 * Keylime runtime policies (issue 12 part 2): what imakit writes validates against Keylime's own
 * JSON schema (vendored in test/vectors/keylime, checked here with a small validator for the
 * keywords that schema uses); Keylime's example policies and flat allowlist load; round trips are
 * exact (imakit JSON, the compact binary form, Keylime JSON written by imakit); corrupt input is a
 * typed error naming the JSON path; absurd sizes are refused before allocation.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { vectorPath } from '../../../helpers.ts';
import { isImakitError } from '../../../../src/errors.ts';
import { loadPublicKey } from '../../../../src/core/keys/keys.ts';
import {
  readFlatAllowlist,
  readKeylimePolicy,
  writeKeylimePolicy,
} from '../../../../src/core/refs/keylime-policy.ts';
import { ReferenceSetBuilder, type ReferenceSet } from '../../../../src/core/refs/reference-set.ts';
import { decodeRefsJson, encodeRefsJson } from '../../../../src/core/refs/refs-json.ts';
import { decodeRefsBinary, encodeRefsBinary } from '../../../../src/core/refs/refs-binary.ts';
import { keylimeValid } from './keylime-schema.ts';

const KL = (name: string): string => readFileSync(join(vectorPath('keylime'), name), 'utf8');

function richSet(): ReferenceSet {
  const b = new ReferenceSetBuilder({ hashAlgo: 'sha256', logHashAlgo: 'sha1', meta: { release: 2 } });
  const deb = { kind: 'deb' as const, name: 'coreutils', version: '9.1-1', arch: 'amd64' };
  b.addDigest('/usr/bin/true', { algo: 'sha256', digest: 'ab'.repeat(32), provenance: deb });
  b.addDigest('/usr/bin/true', {
    algo: 'sha256',
    digest: 'cd'.repeat(32),
    provenance: { kind: 'rpm', name: 'coreutils', version: '9.3' },
    imaSignature: Uint8Array.from([3, 2, 4, 0xd3, 0x32, 0x04, 0x49, 0, 0]),
  });
  b.addDigest('/usr/lib/ünïcode 𝄞', {
    algo: 'sha256',
    digest: 'ef'.repeat(32),
    provenance: { kind: 'rootfs' },
  });
  b.addExclude('/tmp/.*', { provenance: { kind: 'manual' } });
  b.addExclude('/var/log', { anchor: 'prefix', provenance: { kind: 'keylime' } });
  const pub = loadPublicKey(readFileSync(vectorPath('p256.pub')));
  b.addSignatureKey({
    keyring: 'tenant_keyring',
    keyId: pub.keyid,
    spki: pub.spkiDer,
    provenance: { kind: 'manual' },
  });
  b.addBuf('kernel_version', { algo: 'sha256', digest: '12'.repeat(32), provenance: { kind: 'manual' } });
  b.addKeyringDigest('.ima', { algo: 'sha256', digest: '34'.repeat(32), provenance: { kind: 'manual' } });
  b.addIgnoredKeyring('.evm');
  b.addBootAggregate({ algo: 'sha256', digest: '56'.repeat(32), provenance: { kind: 'list' } });
  return b.build();
}

test('a Keylime policy written by imakit validates against Keylime’s schema (and verification-keys against its keyring schema)', () => {
  const { text, dropped } = writeKeylimePolicy(richSet());
  assert.equal(keylimeValid(text), null);
  // what Keylime cannot carry is said, not silently lost
  assert.ok(dropped.some((d) => d.includes('security.ima')));
  assert.ok(dropped.some((d) => d.includes('provenance')));
  const doc = JSON.parse(text) as { digests: Record<string, string[]>; excludes: string[] };
  assert.deepEqual(doc.digests['boot_aggregate'], ['56'.repeat(32)]);
  assert.deepEqual(doc.digests['/usr/bin/true'], ['ab'.repeat(32), 'cd'.repeat(32)]);
  // full-match exclude written so Keylime's re.match matches the whole path; prefix kept as is
  assert.deepEqual(doc.excludes, ['(?:/tmp/.*)\\Z', '/var/log']);
});

test('the validator itself rejects what Keylime rejects (so the check above can fail)', () => {
  const ok = JSON.parse(writeKeylimePolicy(richSet()).text) as Record<string, unknown>;
  const bad = { ...ok, digests: { '/x': ['ABCDEF'.repeat(8)] } };
  assert.match(keylimeValid(JSON.stringify(bad)) ?? '', /pattern/);
  assert.match(keylimeValid(JSON.stringify({ ...ok, release: -1 })) ?? '', /minimum/);
});

test('Keylime read → write → read is exact; imakit JSON and the compact form round-trip byte for byte', () => {
  const set = richSet();
  const k1 = writeKeylimePolicy(set).text;
  assert.equal(writeKeylimePolicy(readKeylimePolicy(k1)).text, k1);
  const j = encodeRefsJson(set);
  assert.equal(encodeRefsJson(decodeRefsJson(j)), j);
  const bin = encodeRefsBinary(set);
  const back = decodeRefsBinary(bin);
  assert.deepEqual(Buffer.from(encodeRefsBinary(back)), Buffer.from(bin));
  assert.equal(encodeRefsJson(back), j);
  // the lookup works for a non-BMP path (UTF-8 order, not UTF-16)
  assert.equal(
    back.digests.get('/usr/lib/ünïcode 𝄞')![0]!.provenance,
    set.digests.get('/usr/lib/ünïcode 𝄞')![0]!.provenance,
  );
  assert.equal(back.digests.get('/usr/bin/tru'), undefined);
  assert.deepEqual([...back.digests.paths()], [...set.digests.paths()]);
  // the imported Keylime excludes keep their anchors
  const r = readKeylimePolicy(k1);
  assert.deepEqual(
    r.excludes.map((e) => [e.pattern, e.anchor]),
    [
      ['/tmp/.*', 'full'],
      ['/var/log', 'prefix'],
    ],
  );
  assert.equal(r.keys[0]!.keyId, set.keys[0]!.keyId);
});

test('Keylime’s example policies and flat allowlist load', () => {
  const p = readKeylimePolicy(KL('policy-sha256.json'));
  assert.equal(p.digests.size, 1);
  assert.equal(p.digests.get('/base_policy_data')![0]!.algo, 'sha256');
  assert.equal(p.meta.timestamp, '2024-09-12 13:44:44.797331');
  // Keylime → imakit → Keylime: the same policy (Python's separators differ, the JSON value is equal)
  assert.deepEqual(JSON.parse(writeKeylimePolicy(p).text), JSON.parse(KL('policy-sha256.json')));
  const t = readKeylimePolicy(KL('runtime-policy-test.json'));
  assert.equal(t.bootAggregates.length, 1);
  assert.equal(t.bootAggregates[0]!.algo, 'sha256');
  assert.ok(t.digests.size > 5);
  const flat = readFlatAllowlist(KL('ima-allowlist-short.txt'));
  assert.equal(flat.bootAggregates[0]!.algo, 'sha256');
  assert.equal(flat.digests.get('/boot/grub2/i386-pc/terminfo.mod')![0]!.algo, 'sha1');
});

test('a DSSE envelope around a policy loads its payload', () => {
  const text = writeKeylimePolicy(richSet()).text;
  const env = JSON.stringify({
    payload: Buffer.from(text).toString('base64'),
    payloadType: 'application/vnd.keylime+json',
    signatures: [{ keyid: 'x', sig: 'AAAA' }],
  });
  assert.equal(writeKeylimePolicy(readKeylimePolicy(env)).text, text);
});

test('corrupt policies: typed errors naming the JSON path', () => {
  const base = JSON.parse(writeKeylimePolicy(richSet()).text) as Record<string, unknown>;
  const cases: [unknown, string, string][] = [
    [{ ...base, digests: { '/bin/x': ['zz'] } }, 'E_REFS_FORMAT', '$.digests["/bin/x"][0]'],
    [{ ...base, digests: { '/bin/x': ['a'.repeat(50)] } }, 'E_REFS_FORMAT', '$.digests["/bin/x"][0]'],
    [{ ...base, digests: { '/bin/x': [] } }, 'E_REFS_FORMAT', '$.digests["/bin/x"]'],
    [{ ...base, meta: { version: 2, generator: 0 } }, 'E_REFS_FORMAT', '$.meta.version'],
    [
      { ...base, ima: { ignored_keyrings: [], log_hash_alg: 'sm3', dm_policy: null } },
      'E_REFS_FORMAT',
      '$.ima.log_hash_alg',
    ],
    [{ ...base, excludes: ['/ok', '(unclosed'] }, 'E_REFS_PATTERN', '$.excludes[1]'],
    [{ ...base, excludes: ['(?P<x>a)'] }, 'E_REFS_FORMAT', '$.excludes[0]'],
    [
      { ...base, 'verification-keys': '{"keyids":[1],"pubkeys":["AAAA"]}' },
      'E_REFS_FORMAT',
      '$["verification-keys"].pubkeys[0]',
    ],
    [{ ...base, release: undefined }, 'E_REFS_FORMAT', '$.release'],
  ];
  for (const [doc, code, field] of cases)
    assert.throws(
      () => readKeylimePolicy(JSON.stringify(doc)),
      (e: unknown) => isImakitError(e, code as 'E_REFS_FORMAT') && e.context.field === field,
      `${code} ${field}`,
    );
  assert.throws(
    () => readKeylimePolicy('{"meta":'),
    (e: unknown) => isImakitError(e, 'E_REFS_FORMAT'),
  );
  assert.throws(
    () => readFlatAllowlist('abc\n'),
    (e: unknown) => isImakitError(e, 'E_REFS_FORMAT') && e.context.line === 1,
  );
});

test('compact form: corrupt bytes are CodecErrors with offsets; absurd counts refused before allocation', () => {
  const bin = encodeRefsBinary(richSet());
  const dv = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
  const huge = bin.slice();
  dv(huge).setUint32(12, 0xffffffff, true);
  assert.throws(
    () => decodeRefsBinary(huge),
    (e: unknown) => isImakitError(e, 'E_CODEC_TOO_LARGE') && e.context.field === 'pathCount',
  );
  const manyRefs = bin.slice();
  dv(manyRefs).setUint32(16, 0x7fffffff, true);
  assert.throws(
    () => decodeRefsBinary(manyRefs),
    (e: unknown) => isImakitError(e, 'E_CODEC_TOO_LARGE'),
  );
  assert.throws(
    () => decodeRefsBinary(bin.subarray(0, bin.length - 1)),
    (e: unknown) => isImakitError(e, 'E_CODEC_TRUNCATED'),
  );
  const trailing = new Uint8Array(bin.length + 1);
  trailing.set(bin);
  assert.throws(
    () => decodeRefsBinary(trailing),
    (e: unknown) => isImakitError(e, 'E_CODEC_TRAILING'),
  );
  const v2 = bin.slice();
  dv(v2).setUint32(8, 2, true);
  assert.throws(
    () => decodeRefsBinary(v2),
    (e: unknown) => isImakitError(e, 'E_CODEC_BAD_VERSION'),
  );
  // every single-byte flip in the index region either decodes or raises a typed error, never a crash
  const metaLen = dv(bin).getUint32(20, true);
  const start = 36 + ((metaLen + 3) & ~3);
  for (let i = start; i < bin.length; i++) {
    const x = bin.slice();
    x[i] = x[i]! ^ 0xff;
    try {
      const s = decodeRefsBinary(x);
      for (const p of s.digests.paths()) s.digests.get(p);
    } catch (e) {
      assert.ok(isImakitError(e), `byte ${i}: ${String(e)}`);
    }
  }
});
