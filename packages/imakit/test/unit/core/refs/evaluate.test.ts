/**
 * Evaluation of lists against reference sets (issue 12 part 5): every verdict reason, allowed and
 * refused, has a list that triggers it (built with the list test builder, template digests and
 * PCRs from node:crypto; signatures with the shared vector keys); incremental evaluation equals
 * the whole; an algorithm mismatch is one error; and `imakit log verify --refs` exits 0/1 with
 * the verdict of every entry in --json, for binary and ascii lists and Keylime or imakit sets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../../../src/cli/main.ts';
import { memoryIo } from '../../../../src/cli/io.ts';
import { tempDir, vectorPath } from '../../../helpers.ts';
import { encode, imaNgData, nodeHash, oraclePcrs } from '../ima-list/build-list.ts';
import { isImakitError } from '../../../../src/errors.ts';
import type { UntrustedEntry } from '../../../../src/core/ima-list/binary.ts';
import { renderAsciiList } from '../../../../src/core/ima-list/ascii.ts';
import { renderPcrJson } from '../../../../src/core/tcg/pcr-values.ts';
import { hashAlgoByName } from '../../../../src/core/hash/hash-algo.ts';
import { loadPrivateKey, loadPublicKey } from '../../../../src/core/keys/keys.ts';
import { signImaDigest } from '../../../../src/core/labels/ima-signature.ts';
import { pemDecode } from '../../../../src/core/keys/x509.ts';
import { evaluateEntries, type VerdictReason } from '../../../../src/core/refs/evaluate.ts';
import { ReferenceSetBuilder } from '../../../../src/core/refs/reference-set.ts';
import { writeKeylimePolicy } from '../../../../src/core/refs/keylime-policy.ts';
import { encodeRefsBinary } from '../../../../src/core/refs/refs-binary.ts';

const sha256 = hashAlgoByName('sha256');
const d = (c: string): Uint8Array => new Uint8Array(32).fill(c.charCodeAt(0));
const rsa = loadPrivateKey(readFileSync(vectorPath('rsa2048.key')));
const rsaCert = readFileSync(vectorPath('rsa2048.cer'));
const p256 = loadPrivateKey(readFileSync(vectorPath('p256.key')));
const p256Cert = readFileSync(vectorPath('p256.cer'));

function entry(i: number, templateName: string, data: Uint8Array, violation = false): UntrustedEntry {
  return {
    index: i,
    offset: 0,
    pcr: 10,
    digest: violation ? new Uint8Array(20) : nodeHash('sha1', data),
    templateName,
    templateData: data,
  };
}
const ng = (i: number, path: string, digest: Uint8Array) =>
  entry(i, 'ima-ng', imaNgData('sha256', digest, path));
const sig = (i: number, path: string, digest: Uint8Array, s: Uint8Array) =>
  entry(i, 'ima-sig', imaNgData('sha256', digest, path, [s]));
const buf = (i: number, name: string, b: Uint8Array) =>
  entry(i, 'ima-buf', imaNgData('sha256', nodeHash('sha256', b), name, [b]));

/** One list with every verdict reason, and the reason expected for each entry. */
function fixture() {
  const certDer = p256Cert[0] === 0x30 ? new Uint8Array(p256Cert) : pemDecode(p256Cert)[0]!.der;
  const list: [UntrustedEntry, VerdictReason][] = [
    [ng(0, 'boot_aggregate', d('B')), 'allowed-boot-aggregate'],
    [ng(1, '/usr/bin/ok', d('a')), 'allowed-digest'],
    [ng(2, '/usr/bin/nope', d('a')), 'unknown-path'],
    [ng(3, '/usr/bin/ok', d('z')), 'digest-not-allowed'],
    [ng(4, '/tmp/x/y', d('q')), 'allowed-exclude'],
    [ng(5, '/tmp', d('q')), 'unknown-path'], // full match: '/tmp/.*' does not match '/tmp'
    [ng(6, '/var/log/syslog', d('q')), 'allowed-exclude'], // prefix (Keylime-style) exclude '/var/log'
    [
      sig(7, '/usr/bin/signed', d('s'), signImaDigest({ key: rsa, algo: sha256, digest: d('s') })),
      'allowed-signature',
    ],
    [
      sig(8, '/usr/bin/other', d('o'), signImaDigest({ key: p256, algo: sha256, digest: d('o') })),
      'unknown-key',
    ],
    [
      sig(9, '/usr/bin/bad', d('b'), signImaDigest({ key: rsa, algo: sha256, digest: d('X') })),
      'bad-signature',
    ],
    [entry(10, 'not-a-template', new Uint8Array([1, 2, 3])), 'template-not-interpreted'],
    [ng(11, '/usr/bin/ok', d('a')), 'allowed-digest'],
    [entry(12, 'ima-ng', imaNgData('sha256', d('v'), '/usr/bin/raced'), true), 'violation'],
    [buf(13, '.ima', certDer), 'learned-key'],
    // signed by the p256 key learned at entry 13 from the .ima keyring
    [
      sig(14, '/usr/bin/other', d('o'), signImaDigest({ key: p256, algo: sha256, digest: d('o') })),
      'allowed-signature',
    ],
    [buf(15, 'kernel_version', Buffer.from('6.1.0')), 'allowed-buf'],
    [buf(16, 'dm_table_load', Buffer.from('evil')), 'unknown-path'],
    // an unknown-key signature with an allowed digest: the digest decides
    [
      sig(
        17,
        '/usr/bin/ok',
        d('a'),
        signImaDigest({ key: p256, algo: sha256, digest: d('a'), keyid: 0x01020304 }),
      ),
      'allowed-digest',
    ],
  ];
  const b = new ReferenceSetBuilder({ hashAlgo: 'sha256' });
  const m = { kind: 'manual' as const };
  b.addBootAggregate({ algo: 'sha256', digest: d('B'), provenance: m });
  b.addDigest('/usr/bin/ok', {
    algo: 'sha256',
    digest: d('a'),
    provenance: { kind: 'deb', name: 'ok', version: '1' },
  });
  b.addExclude('/tmp/.*', { provenance: m });
  b.addExclude('/var/log', { anchor: 'prefix', provenance: m });
  const rsaPub = loadPublicKey(rsaCert);
  b.addSignatureKey({ keyring: '.ima', keyId: rsaPub.keyid, spki: rsaPub.spkiDer, provenance: m });
  b.addKeyringDigest('.ima', { algo: 'sha256', digest: nodeHash('sha256', certDer), provenance: m });
  b.addBuf('kernel_version', {
    algo: 'sha256',
    digest: nodeHash('sha256', Buffer.from('6.1.0')),
    provenance: m,
  });
  return { list, set: b.build() };
}

test('every verdict reason is triggered by the entry built for it', () => {
  const { list, set } = fixture();
  const ev = evaluateEntries(
    list.map(([e]) => e),
    set,
    { keepAll: true },
  );
  assert.deepEqual(
    ev.verdicts.map((v) => `${v.index}:${v.reason}`),
    list.map(([e, r]) => `${e.index}:${r}`),
  );
  const v = ev.verdicts;
  assert.equal(v[1]!.provenance?.name, 'ok');
  assert.equal(v[4]!.exclude, '/tmp/.*');
  assert.equal(v[6]!.excludeAnchor, 'prefix');
  assert.equal(v[7]!.keyId, loadPublicKey(rsaCert).keyid.toString(16).padStart(8, '0'));
  assert.equal(v[7]!.keyring, '.ima');
  assert.equal(v[14]!.keyring, '.ima');
  assert.equal(v[13]!.keyId, loadPublicKey(p256Cert).keyid.toString(16).padStart(8, '0'));
  assert.equal(
    ev.summary.refused,
    list.filter(([, r]) => !r.startsWith('allowed') && r !== 'learned-key').length,
  );
  assert.equal(ev.summary.byReason['unknown-path'], 3);
  // without keepAll only refusals are kept, the counts are the same
  const lean = evaluateEntries(
    list.map(([e]) => e),
    set,
  );
  assert.deepEqual(lean.summary, ev.summary);
  assert.ok(lean.verdicts.every((x) => x.status === 'refused'));
});

test('incremental: entries N.. with the state of 0..N-1 give the same verdicts as the whole list', () => {
  const { list, set } = fixture();
  const entries = list.map(([e]) => e);
  const whole = evaluateEntries(entries, set, { keepAll: true });
  const first = evaluateEntries(entries.slice(0, 14), set, { keepAll: true });
  const rest = evaluateEntries(entries.slice(14), set, { keepAll: true, state: first.state });
  assert.deepEqual([...first.verdicts, ...rest.verdicts], whole.verdicts);
  assert.equal(rest.summary.firstEntry, 14);
  // without the learned key, entry 14 is refused
  assert.equal(evaluateEntries(entries.slice(14, 15), set).verdicts[0]!.reason, 'unknown-key');
});

test('an ignored keyring allows the key entry but learns nothing', () => {
  const { list, set } = fixture();
  const b = new ReferenceSetBuilder().addSet(set).addIgnoredKeyring('.ima');
  const ev = evaluateEntries(list.map(([e]) => e).slice(13, 15), b.build(), { keepAll: true });
  assert.deepEqual(
    ev.verdicts.map((v) => v.reason),
    ['allowed-buf', 'unknown-key'],
  );
});

test('a set whose algorithm differs from the list’s is one error, not a list of refusals', () => {
  const b = new ReferenceSetBuilder({ hashAlgo: 'sha1' });
  b.addDigest('/usr/bin/ok', {
    algo: 'sha1',
    digest: new Uint8Array(20).fill(1),
    provenance: { kind: 'manual' },
  });
  assert.throws(
    () => evaluateEntries([ng(0, 'boot_aggregate', d('B')), ng(1, '/usr/bin/ok', d('a'))], b.build()),
    (e: unknown) => isImakitError(e, 'E_REFS_ALGO_MISMATCH') && e.context.entry === 1,
  );
});

async function cli(...argv: string[]) {
  const io = memoryIo();
  const status = await main(argv, io);
  return { status, out: io.out(), err: io.err() };
}

test('imakit log verify --refs: exit 0 when all allowed and replayed, 1 otherwise; --json has every entry; binary and ascii lists; Keylime and imakit sets', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const { list, set } = fixture();
    const good = list.filter(([, r]) => r.startsWith('allowed') || r === 'learned-key').map(([e]) => e);
    const renum = good.map((e, i) => ({ ...e, index: i }));
    writeFileSync(join(dir, 'good.bin'), encode(renum));
    writeFileSync(join(dir, 'good.ascii'), renderAsciiList(renum));
    writeFileSync(join(dir, 'good.pcrs.json'), JSON.stringify(renderPcrJson(oraclePcrs(renum, ['sha256']))));
    const all = list.map(([e]) => e);
    writeFileSync(join(dir, 'all.bin'), encode(all));
    writeFileSync(join(dir, 'all.pcrs.json'), JSON.stringify(renderPcrJson(oraclePcrs(all, ['sha256']))));
    writeFileSync(join(dir, 'set.imr'), encodeRefsBinary(set));
    writeFileSync(join(dir, 'policy.json'), writeKeylimePolicy(set).text);
    for (const refs of ['set.imr', 'policy.json'])
      for (const l of ['good.bin', 'good.ascii']) {
        const r = await cli(
          'log',
          'verify',
          join(dir, l),
          '--refs',
          join(dir, refs),
          '--pcrs-json',
          join(dir, 'good.pcrs.json'),
        );
        assert.equal(r.status, 0, `${l} ${refs}: ${r.out}${r.err}`);
        assert.match(r.out, /PASS +\d+ entries against/);
      }
    const bad = await cli(
      'log',
      'verify',
      join(dir, 'all.bin'),
      '--refs',
      join(dir, 'set.imr'),
      '--pcrs-json',
      join(dir, 'all.pcrs.json'),
      '--json',
    );
    assert.equal(bad.status, 1);
    const o = JSON.parse(bad.out) as {
      status: string;
      refs: { verdicts: { index: number; reason: string }[] };
    };
    assert.equal(o.status, 'pass'); // the replay matched; the refusals fail the command
    assert.deepEqual(
      o.refs.verdicts.map((v) => `${v.index}:${v.reason}`),
      list.map(([e, r]) => `${e.index}:${r}`),
    );
    // a replay mismatch fails even when every entry is allowed
    const wrong = await cli(
      'log',
      'verify',
      join(dir, 'good.bin'),
      '--refs',
      join(dir, 'set.imr'),
      '--pcrs-json',
      join(dir, 'all.pcrs.json'),
    );
    assert.equal(wrong.status, 1);
    // a corrupt policy: exit 2 naming the JSON path
    writeFileSync(
      join(dir, 'corrupt.json'),
      JSON.stringify({ ...JSON.parse(writeKeylimePolicy(set).text), excludes: ['(['] }),
    );
    const c = await cli(
      'log',
      'verify',
      join(dir, 'good.bin'),
      '--refs',
      join(dir, 'corrupt.json'),
      '--pcrs-json',
      join(dir, 'good.pcrs.json'),
    );
    assert.equal(c.status, 2);
    assert.match(c.err, /excludes\[0\]/);
  } finally {
    cleanup();
  }
});
