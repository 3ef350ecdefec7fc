/**
 * Evaluation rules real kernel lists need (found on test/fixtures/kernel/appraise-enforce):
 * a list mixes file hash algorithms (a file with a sha1 `security.ima` is measured with sha1 in a
 * sha256 list), so a path may hold digests of several algorithms and an entry is compared with
 * those of its own; E_REFS_ALGO_MISMATCH is for a set built for an algorithm the list measures no
 * file with. A signature decides only when the set names its key: an allowed digest is allowed
 * with an unknown-key or evmctl v1 signature (the detail says why the signature was not checked),
 * a known key's failing signature is refused even when the digest is allowed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { vectorPath } from '../../../helpers.ts';
import { imaNgData, nodeHash } from '../ima-list/build-list.ts';
import { isImakitError } from '../../../../src/errors.ts';
import type { UntrustedEntry } from '../../../../src/core/ima-list/binary.ts';
import { hashAlgoByName } from '../../../../src/core/hash/hash-algo.ts';
import { loadPrivateKey, loadPublicKey } from '../../../../src/core/keys/keys.ts';
import { signImaDigest } from '../../../../src/core/labels/ima-signature.ts';
import { evaluateEntries } from '../../../../src/core/refs/evaluate.ts';
import { referencesFromEntries } from '../../../../src/core/refs/from-list.ts';
import { ReferenceSetBuilder } from '../../../../src/core/refs/reference-set.ts';

const sha256 = hashAlgoByName('sha256');
const d256 = (c: string): Uint8Array => new Uint8Array(32).fill(c.charCodeAt(0));
const d1 = (c: string): Uint8Array => new Uint8Array(20).fill(c.charCodeAt(0));
const rsa = loadPrivateKey(readFileSync(vectorPath('rsa2048.key')));
const rsaPub = loadPublicKey(readFileSync(vectorPath('rsa2048.cer')));
const p256 = loadPrivateKey(readFileSync(vectorPath('p256.key')));
const m = { kind: 'manual' as const };

function entry(i: number, algo: string, digest: Uint8Array, path: string, sig?: Uint8Array): UntrustedEntry {
  const data = imaNgData(algo, digest, path, sig ? [sig] : []);
  const templateName = sig ? 'ima-sig' : 'ima-ng';
  return { index: i, offset: 0, pcr: 10, digest: nodeHash('sha1', data), templateName, templateData: data };
}
/** an evmctl v1 value as the kernel measured it (fixture appraise-enforce, /data/sig-v1.txt: 0x03 0x01 ...) */
const V1 = Uint8Array.from([
  0x03, 0x01, 0xc4, 0xfa, 0x02, 0x6b, 0, 0, 0x79, 0xa2, 0x6d, 0xde, 0x6f, 0xfa, 0xc4, 0x99,
]);
const rsaSig = (digest: Uint8Array) => signImaDigest({ key: rsa, algo: sha256, digest });
const otherSig = (digest: Uint8Array) => signImaDigest({ key: p256, algo: sha256, digest });

function set(hashAlgo?: string) {
  const b = new ReferenceSetBuilder(hashAlgo ? { hashAlgo } : {});
  b.addDigest('/a', { algo: 'sha256', digest: d256('a'), provenance: m });
  b.addDigest('/a', { algo: 'sha1', digest: d1('a'), provenance: m });
  b.addDigest('/only256', { algo: 'sha256', digest: d256('o'), provenance: m });
  return b;
}

test('a path with digests of two algorithms: each entry is compared with its own algorithm', () => {
  const ev = evaluateEntries(
    [
      entry(0, 'sha256', d256('a'), '/a'),
      entry(1, 'sha1', d1('a'), '/a'),
      // sha1 bytes equal to the start of the path's sha256 digest: still no sha1 digest allowed
      entry(2, 'sha1', d1('o'), '/only256'),
      entry(3, 'sha1', d1('z'), '/a'),
    ],
    set().build(),
    { keepAll: true },
  );
  assert.deepEqual(
    ev.verdicts.map((v) => v.reason),
    ['allowed-digest', 'allowed-digest', 'digest-not-allowed', 'digest-not-allowed'],
  );
  assert.match(ev.verdicts[2]!.detail!, /^allowed: sha256:/);
});

test('E_REFS_ALGO_MISMATCH: only when no file entry uses the set’s algorithm, whatever comes first', () => {
  // the list's first file is a sha1 exception; the set (built for sha256) then matches sha256 files
  const mixed = [
    entry(0, 'sha256', d256('B'), 'boot_aggregate'),
    entry(1, 'sha1', d1('o'), '/only256'),
    entry(2, 'sha256', d256('a'), '/a'),
  ];
  const ev = evaluateEntries(mixed, set('sha256').build());
  assert.deepEqual(
    ev.verdicts.map((v) => `${v.index}:${v.reason}`),
    ['0:unknown-path', '1:digest-not-allowed'],
  );
  // a sha1 set against a list that measures every file with sha256: one error naming the first
  const b = new ReferenceSetBuilder({ hashAlgo: 'sha1' });
  b.addDigest('/a', { algo: 'sha1', digest: d1('a'), provenance: m });
  const sha256List = [entry(0, 'sha256', d256('B'), 'boot_aggregate'), entry(1, 'sha256', d256('a'), '/a')];
  assert.throws(
    () => evaluateEntries(sha256List, b.build()),
    (e: unknown) =>
      isImakitError(e, 'E_REFS_ALGO_MISMATCH') && e.context.entry === 1 && e.context.path === '/a',
  );
  // no file entry at all: nothing to disagree with
  assert.equal(evaluateEntries(sha256List.slice(0, 1), b.build()).summary.entries, 1);
  // a set that declares no algorithm (learned from a mixed list) never mismatches
  assert.equal(evaluateEntries(sha256List, set().build()).summary.refused, 1);
  // incremental: entries N.. carry whether the set's algorithm was seen
  const s = set('sha256').build();
  const first = evaluateEntries(mixed.slice(0, 3), s);
  assert.equal(first.state.algoSeen, true);
  assert.equal(
    evaluateEntries([entry(3, 'sha1', d1('a'), '/a')], s, { state: first.state }).summary.refused,
    0,
  );
  assert.throws(
    () => evaluateEntries([entry(3, 'sha1', d1('a'), '/a')], s),
    (e: unknown) => isImakitError(e, 'E_REFS_ALGO_MISMATCH'),
  );
});

test('signatures: the digest decides unless the set names the key; strict when it does', () => {
  const b = set('sha256');
  b.addSignatureKey({ keyring: '.ima', keyId: rsaPub.keyid, spki: rsaPub.spkiDer, provenance: m });
  const s = b.build();
  const rsaId = rsaPub.keyid.toString(16).padStart(8, '0');
  const cases: [UntrustedEntry, string, RegExp | undefined][] = [
    // digest allowed
    [
      entry(0, 'sha256', d256('a'), '/a', otherSig(d256('a'))),
      'allowed-digest',
      /^signature not checked: unknown key [0-9a-f]{8}$/,
    ],
    [
      entry(1, 'sha256', d256('a'), '/a', V1),
      'allowed-digest',
      /^signature not interpreted: evmctl v1 signature$/,
    ],
    [
      entry(2, 'sha256', d256('a'), '/a', Uint8Array.from([3, 2, 4])),
      'allowed-digest',
      /^signature not interpreted: /,
    ],
    [entry(3, 'sha256', d256('a'), '/a', rsaSig(d256('X'))), 'bad-signature', undefined],
    [entry(4, 'sha256', d256('a'), '/a', rsaSig(d256('a'))), 'allowed-signature', undefined],
    // digest not allowed
    [entry(5, 'sha256', d256('z'), '/a', rsaSig(d256('z'))), 'allowed-signature', undefined],
    [
      entry(6, 'sha256', d256('z'), '/a', otherSig(d256('z'))),
      'unknown-key',
      /^no key with id [0-9a-f]{8}; digest allowed: /,
    ],
    [entry(7, 'sha256', d256('z'), '/a', rsaSig(d256('X'))), 'bad-signature', undefined],
    [
      entry(8, 'sha256', d256('z'), '/a', V1),
      'digest-not-allowed',
      /^allowed: .*; signature not interpreted: evmctl v1 signature$/,
    ],
    // path unknown
    [entry(9, 'sha256', d256('z'), '/new', otherSig(d256('z'))), 'unknown-key', /^no key with id/],
    [entry(10, 'sha256', d256('z'), '/new', V1), 'unknown-path', /^signature not interpreted/],
    [entry(11, 'sha256', d256('z'), '/new', rsaSig(d256('z'))), 'allowed-signature', undefined],
  ];
  const ev = evaluateEntries(
    cases.map(([e]) => e),
    s,
    { keepAll: true },
  );
  for (const [[e, reason, detail], v] of cases.map((c, i) => [c, ev.verdicts[i]!] as const)) {
    assert.equal(v.index, e.index);
    assert.equal(v.reason, reason, `entry ${e.index}`);
    if (detail) assert.match(v.detail ?? '', detail, `entry ${e.index}`);
  }
  assert.equal(ev.verdicts[3]!.keyId, rsaId);
  assert.equal(ev.verdicts[3]!.keyring, '.ima');
  assert.equal(ev.verdicts[0]!.keyId, ev.verdicts[6]!.keyId);
  // the counts do not depend on keepAll
  assert.deepEqual(
    evaluateEntries(
      cases.map(([e]) => e),
      s,
    ).summary,
    ev.summary,
  );
  // a key given with --key is named too: the p256 signature then decides
  const withKey = evaluateEntries([cases[6]![0]], s, {
    keys: [loadPublicKey(readFileSync(vectorPath('p256.cer')))],
  });
  assert.equal(withKey.summary.byReason['allowed-signature'], 1);
});

test('from-list learns every entry with its own algorithm; -a keeps one', () => {
  const list = [
    entry(0, 'sha256', d256('B'), 'boot_aggregate'),
    entry(1, 'sha256', d256('a'), '/a'),
    entry(2, 'sha1', d1('b'), '/b', V1),
  ];
  const all = referencesFromEntries(list);
  assert.equal(all.set.hashAlgo, undefined);
  assert.deepEqual(
    [...all.set.digests.paths()].map(
      (p) =>
        `${p}:${all.set.digests
          .get(p)!
          .map((r) => r.algo)
          .join()}`,
    ),
    ['/a:sha256', '/b:sha1'],
  );
  assert.equal(evaluateEntries(list, all.set).summary.refused, 0);
  const one = referencesFromEntries(list, { algo: 'sha256' });
  assert.equal(one.set.hashAlgo, 'sha256');
  assert.equal(one.otherAlgo, 1);
  assert.equal(evaluateEntries(list, one.set).verdicts[0]!.reason, 'unknown-path');
});
