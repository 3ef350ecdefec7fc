/**
 * The listed-digest shortcut of verify.ts (`templateDigests: 'bound-by-pcrs'`): with PCR values
 * for the list's bank AND a recomputed bank, a whole-list match in both binds every listed digest,
 * so the list's bank is extended with the listed digests instead of recomputing them. Every case
 * is compared with `recomputeAll` (the full path) and, where it matters, with the worker offload;
 * anything short of a whole-list match in both banks must fall back to recomputing. PCR values
 * come from node:crypto (build-list.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  bytesSource,
  verifyMeasurementList,
  type ListVerdict,
} from '../../../../src/core/ima-list/verify.ts';
import type { ListSource } from '../../../../src/core/ima-list/verify.ts';
import { ChunkScanner, type EntryCursor } from '../../../../src/core/ima-list/binary.ts';
import { ListReplayer } from '../../../../src/core/ima-list/replay.ts';
import { workerOffload } from '../../../../src/host/attest/list-replay-offload.ts';
import { buildList, encode, nodeHash, oraclePcrs } from './build-list.ts';

type Pcrs = Map<string, Map<number, Uint8Array>>;

function chunked(bytes: Uint8Array, size: number): ListSource {
  return () => {
    const out: Uint8Array[] = [];
    for (let i = 0; i < bytes.length; i += size) out.push(bytes.slice(i, i + size));
    return out;
  };
}

/** Everything but how the template digests were established. */
function essence(v: ListVerdict) {
  const { templateDigests: _t, notEstablished: _n, ...rest } = v;
  return rest;
}

/** Fast path (one thread and offloaded) vs full path: same verdict; returns the fast verdict. */
async function compare(src: ListSource, expected: Pcrs, offload = true): Promise<ListVerdict> {
  const full = await verifyMeasurementList(src, { expected, recomputeAll: true });
  assert.equal(full.templateDigests, 'recomputed');
  const fast = await verifyMeasurementList(src, { expected });
  assert.deepEqual(essence(fast), essence(full));
  if (offload) {
    const off = await verifyMeasurementList(src, { expected, offload: workerOffload() });
    assert.deepEqual(essence(off), essence(full));
    assert.equal(off.templateDigests, fast.templateDigests);
  }
  return fast;
}

test('whole-list match in sha1 and sha256: listed digests bound by the PCRs, same verdict', async () => {
  const l = buildList(300, { banks: ['sha1', 'sha256', 'sha384'] });
  for (const size of [37, 4096, 1 << 20]) {
    const v = await compare(chunked(l.bytes, size), l.pcrs, size !== 4096);
    assert.equal(v.status, 'pass');
    assert.equal(v.templateDigests, 'bound-by-pcrs');
    assert.match(v.notEstablished.at(-1)!, /sha1 template digests were not recomputed.*sha256, sha384/);
  }
  // sha1 + sha256 only (the benchmark's shape)
  const two = new Map([...l.pcrs].filter(([b]) => b !== 'sha384'));
  const v = await compare(bytesSource(l.bytes), two);
  assert.equal(v.templateDigests, 'bound-by-pcrs');
});

test('prefix match and an unchecked PCR: not every entry is bound, digests recomputed', async () => {
  const l = buildList(200);
  const early = oraclePcrs(l.entries.slice(0, 151), ['sha1', 'sha256']);
  const v = await compare(bytesSource(l.bytes), early);
  assert.equal(v.status, 'pass');
  assert.equal(v.banks[0]!.pcrs[0]!.status, 'prefix');
  assert.equal(v.templateDigests, 'recomputed');

  // entries in PCR 11 without a PCR 11 value: their listed digests are bound by nothing
  const moved = l.entries.map((e, i) => (i % 7 === 3 ? { ...e, pcr: 11 } : e));
  const bytes = encode(moved, l.format);
  // with every PCR given the shortcut holds across PCRs 10 and 11 (one thread and offloaded)
  const both = await compare(chunked(bytes, 1000), oraclePcrs(moved, ['sha1', 'sha256']));
  assert.equal(both.templateDigests, 'bound-by-pcrs');
  assert.deepEqual(
    both.banks[1]!.pcrs.map((p) => [p.pcr, p.status]),
    [
      [10, 'match'],
      [11, 'match'],
    ],
  );
  const pcrs = oraclePcrs(moved, ['sha1', 'sha256']);
  for (const m of pcrs.values()) m.delete(11);
  const w = await compare(bytesSource(bytes), pcrs, false);
  assert.equal(w.templateDigests, 'recomputed');
  assert.equal(w.status, 'pass');
});

test('tampered template data with the listed SHA-1 kept: sha256 catches it, full path diagnoses', async () => {
  const l = buildList(120);
  const bad = l.entries.map((e) => ({ ...e }));
  const td = bad[40]!.templateData.slice();
  td[td.length - 3]! ^= 1;
  bad[40] = { ...bad[40]!, templateData: td };
  const v = await compare(bytesSource(encode(bad, l.format)), l.pcrs);
  assert.equal(v.status, 'fail');
  assert.equal(v.templateDigests, 'recomputed');
  assert.equal(v.mismatches[0]!.index, 40);
  assert.equal(v.banks.find((b) => b.bank === 'sha256')!.pcrs[0]!.status, 'mismatch');
  // the full path's sha1 bank replays the recomputed digest of the altered data: no match either
  assert.equal(v.banks.find((b) => b.bank === 'sha1')!.pcrs[0]!.status, 'mismatch');
});

test('tampered listed digest: the sha1 bank fails, full path names the entry', async () => {
  const l = buildList(120);
  const bad = l.entries.map((e) => ({ ...e }));
  const d = bad[77]!.digest.slice();
  d[0]! ^= 0x80;
  bad[77] = { ...bad[77]!, digest: d };
  const v = await compare(bytesSource(encode(bad, l.format)), l.pcrs);
  assert.equal(v.status, 'fail');
  assert.equal(v.templateDigests, 'recomputed');
  assert.equal(v.mismatches[0]!.index, 77);

  // the boundary of the argument: PCRs that were extended with the altered digest (a kernel that
  // did not hash the data it listed) pass the shortcut; the full path still fails. The verdict
  // says so in notEstablished.
  const sha1 = new Map<number, Uint8Array>();
  for (const e of bad) sha1.set(e.pcr, nodeHash('sha1', sha1.get(e.pcr) ?? new Uint8Array(20), e.digest));
  const forged = new Map([
    ['sha1', sha1],
    ['sha256', l.pcrs.get('sha256')!],
  ]);
  const src = bytesSource(encode(bad, l.format));
  const fast = await verifyMeasurementList(src, { expected: forged });
  assert.equal(fast.templateDigests, 'bound-by-pcrs');
  assert.match(fast.notEstablished.join('\n'), /provided the kernel hashed the same data for every bank/);
  const full = await verifyMeasurementList(src, { expected: forged, recomputeAll: true });
  assert.equal(full.status, 'fail');
  assert.equal(full.mismatches[0]!.index, 77);
});

test('sha1-only PCRs (or a sha1-only replay): every digest recomputed, tampering found', async () => {
  const l = buildList(80);
  const sha1Only = new Map([['sha1', l.pcrs.get('sha1')!]]);
  const v = await compare(bytesSource(l.bytes), sha1Only);
  assert.equal(v.status, 'pass');
  assert.equal(v.templateDigests, 'recomputed');
  const banksSha1 = await verifyMeasurementList(bytesSource(l.bytes), { expected: l.pcrs, banks: ['sha1'] });
  assert.equal(banksSha1.templateDigests, 'recomputed');

  const bad = l.entries.map((e) => ({ ...e }));
  const td = bad[10]!.templateData.slice();
  td[5]! ^= 1;
  bad[10] = { ...bad[10]!, templateData: td };
  const w = await compare(bytesSource(encode(bad, l.format)), sha1Only, false);
  assert.equal(w.status, 'fail');
  assert.equal(w.mismatches[0]!.index, 10);
});

test('quirk list (sha256 bank extended with padded SHA-1) and violations: same verdict', async () => {
  const l = buildList(100);
  const padded = new Map<number, Uint8Array>();
  for (const e of l.entries) {
    const v = new Uint8Array(32);
    v.set(nodeHash('sha1', e.templateData));
    padded.set(10, nodeHash('sha256', padded.get(10) ?? new Uint8Array(32), v));
  }
  const exp = new Map([
    ['sha1', l.pcrs.get('sha1')!],
    ['sha256', padded],
  ]);
  const q = await compare(bytesSource(l.bytes), exp);
  assert.equal(q.status, 'pass');
  assert.deepEqual(q.quirks, ['sha1-padded-bank']);
  assert.equal(q.templateDigests, 'recomputed');

  // violations (all-zero listed digests, extended as 0xff) stay bound through the shortcut
  const withViolations = l.entries.map((e, i) => (i % 10 === 5 ? { ...e, digest: new Uint8Array(20) } : e));
  const v = await compare(
    bytesSource(encode(withViolations, l.format)),
    oraclePcrs(withViolations, ['sha1', 'sha256']),
  );
  assert.equal(v.status, 'pass');
  assert.equal(v.violations, 10);
  assert.equal(v.templateDigests, 'bound-by-pcrs');
});

test('ListReplayer deferred/emitted halves with a shared share: same outcome as one replayer', () => {
  const l = buildList(9000);
  const moved = l.entries.map((e, i) => (i % 5 === 2 ? { ...e, pcr: 11 } : e));
  const bytes = encode(moved, l.format);
  const expected = oraclePcrs(moved, ['sha1', 'sha256']);
  const scan = (f: (c: EntryCursor) => void): void => {
    const s = new ChunkScanner(l.format);
    s.push(bytes, f);
    s.end();
  };
  const whole = new ListReplayer({ format: l.format, banks: ['sha1', 'sha256'], expected });
  scan((c) => whole.feed(c));
  for (const mask of [0, 3]) {
    const emitter = new ListReplayer({
      format: l.format,
      banks: ['sha1', 'sha256'],
      emitted: ['sha256'],
      expected,
      verifyListed: false,
      extendListed: true,
      shareMask: mask,
    });
    const local = new ListReplayer({
      format: l.format,
      banks: ['sha256'],
      deferred: ['sha256'],
      expected,
      shareMask: mask,
    });
    const values = new Uint8Array(9001 * emitter.emittedStride);
    let n = 0;
    let applied = 0;
    // feed everything in this thread, applying in uneven lagging runs (queue growth and compaction)
    scan((c) => {
      emitter.valuesInto(c, values, n * 32);
      n++;
      local.feed(c);
      if (n % 5000 === 0 || n % 7001 === 0) {
        const k = n - applied - 100;
        local.applyDeferred(values.subarray(applied * 32), k);
        applied += k;
      }
    });
    assert.throws(() => local.outcome(), /not applied/);
    local.applyDeferred(values.subarray(applied * 32), n - applied);
    assert.deepEqual(
      [...emitter.outcome(), ...local.outcome()],
      whole.outcome().map((b) => b),
    );
    assert.equal(
      local.outcome()[0]!.pcrs.every((p) => p.status === 'match'),
      true,
    );
  }
});
