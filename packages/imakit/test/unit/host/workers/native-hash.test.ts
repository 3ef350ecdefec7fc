/**
 * The native hashers (host/native-hash.ts, native/imakit_hash.c): built by `npm ci`, equal to
 * node:crypto for every algorithm, length, offset and split; every range checked before memory is
 * touched; and a replay with them gives the same verdict as one with the TypeScript hashers
 * (pass, tampered entry, padded-SHA-1 quirk, prefix, sha384/sha512 banks).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { hasNativeHash, nativeHashes } from '../../../../src/host/workers/native-hash.ts';
import {
  bytesSource,
  verifyMeasurementList,
  type ListVerdict,
} from '../../../../src/core/ima-list/verify.ts';
import { buildList, encode, oraclePcrs } from '../../core/ima-list/build-list.ts';

const ADDON = fileURLToPath(new URL('../../../../build/Release/imakit_hash.node', import.meta.url));
const ALGS = ['sha1', 'sha256', 'sha384', 'sha512'] as const;

test('the addon is built and passes its load-time check', () => {
  // npm ci builds binding.gyp; a missing addon would silently cost the replay its speed
  assert.ok(existsSync(ADDON), `${ADDON} not built`);
  assert.equal(hasNativeHash(), true);
  const p = nativeHashes()!;
  for (const a of ALGS) assert.ok(p(a), a);
  assert.equal(p('sm3'), undefined, 'sm3 stays on node:crypto');
  assert.equal(p('md5'), undefined);
});

test('equal to node:crypto for lengths 0-600, offsets and two-part splits', () => {
  const p = nativeHashes()!;
  const src = randomBytes(700);
  for (const a of ALGS) {
    const h = p(a)!;
    const out = new Uint8Array(h.size + 5);
    for (let len = 0; len <= 600; len += len < 140 ? 1 : 37) {
      const off = len % 11;
      const want = createHash(a)
        .update(src.subarray(off, off + len))
        .digest();
      h.hashInto(src, off, len, out, 5);
      assert.deepEqual(Buffer.from(out.subarray(5)), want, `${a} len ${len}`);
      for (const cut of [0, len >> 2, len]) {
        out.fill(0);
        h.hash2Into(src, off, cut, src, off + cut, len - cut, out, 1);
        assert.deepEqual(Buffer.from(out.subarray(1, 1 + h.size)), want, `${a} len ${len} cut ${cut}`);
      }
    }
  }
});

test('an in-place PCR extend reads all input before writing the digest', () => {
  const p = nativeHashes()!;
  for (const a of ALGS) {
    const h = p(a)!;
    const pcrs = randomBytes(3 * h.size);
    const value = randomBytes(h.size);
    const want = createHash(a)
      .update(pcrs.subarray(h.size, 2 * h.size))
      .update(value)
      .digest();
    h.hash2Into(pcrs, h.size, h.size, value, 0, h.size, pcrs, h.size);
    assert.deepEqual(pcrs.subarray(h.size, 2 * h.size), want, a);
  }
});

test('ranges outside their buffers and wrong argument types throw before anything is written', () => {
  const h = nativeHashes()!('sha256')!;
  const src = new Uint8Array(100);
  const out = new Uint8Array(32).fill(7);
  const untouched = (): void =>
    assert.ok(
      out.every((x) => x === 7),
      'output written',
    );
  assert.throws(() => h.hashInto(src, 90, 11, out, 0), RangeError);
  assert.throws(() => h.hashInto(src, 0, 10, out, 1), RangeError);
  assert.throws(() => h.hashInto(src, -1, 10, out, 0), RangeError);
  assert.throws(() => h.hash2Into(src, 0, 10, src, 95, 6, out, 0), RangeError);
  assert.throws(() => h.hash2Into(src, 0, 10, src, 0, 10, new Uint8Array(31), 0), RangeError);
  assert.throws(() => h.hashInto(new Int32Array(25) as unknown as Uint8Array, 0, 4, out, 0), TypeError);
  untouched();
  h.hashInto(src, 100, 0, out, 0); // an empty range at the very end is in bounds
  assert.deepEqual(Buffer.from(out), createHash('sha256').digest());
});

test('hashSpansInto: many hashes in one call, equal to node:crypto for lengths 0-300 and multi-block', () => {
  const p = nativeHashes()!;
  const src = randomBytes(20000);
  for (const a of ALGS) {
    const h = p(a)!;
    assert.ok(h.hashSpansInto, `${a}: the addon batches`);
    // lengths 0..300 at varying offsets, then multi-block spans, with skipped (negative) spans between
    const spans: number[] = [];
    for (let len = 0; len <= 300; len++) spans.push((len * 37) % 19000, len);
    for (const len of [1000, 4096, 9999]) spans.push(17, len, 0, -1);
    const count = spans.length / 2;
    const out = new Uint8Array(3 + count * h.size).fill(0xa5);
    h.hashSpansInto!(src, Int32Array.from(spans), count, out, 3);
    assert.equal(out[0], 0xa5);
    for (let i = 0; i < count; i++) {
      const [off, len] = [spans[2 * i]!, spans[2 * i + 1]!];
      const got = out.subarray(3 + i * h.size, 3 + (i + 1) * h.size);
      if (len < 0)
        assert.ok(
          got.every((x) => x === 0xa5),
          `${a} span ${i} skipped`,
        );
      else
        assert.deepEqual(
          Buffer.from(got),
          createHash(a)
            .update(src.subarray(off, off + len))
            .digest(),
          `${a} len ${len}`,
        );
    }
  }
  const h = p('sha256')!;
  const out = new Uint8Array(64).fill(7);
  // one bad span among good ones: refused before any output is written
  assert.throws(() => h.hashSpansInto!(src, Int32Array.from([0, 10, 19990, 11]), 2, out, 0), RangeError);
  assert.throws(() => h.hashSpansInto!(src, Int32Array.from([0, 10, 0, 10]), 2, out, 1), RangeError);
  assert.throws(() => h.hashSpansInto!(src, Int32Array.from([0, 10]), 2, out, 0), RangeError);
  assert.throws(
    () => h.hashSpansInto!(src, new Uint32Array(4) as unknown as Int32Array, 2, out, 0),
    TypeError,
  );
  assert.ok(out.every((x) => x === 7));
});

test('extendChainInto: a run of extends in one call, every PCR value traced, equal to node:crypto', () => {
  const p = nativeHashes()!;
  for (const a of ALGS) {
    const h = p(a)!;
    assert.ok(h.extendChainInto, `${a}: the addon chains`);
    const values = randomBytes(40 * h.size);
    const pcrs = new Uint8Array(3 * h.size);
    pcrs.set(randomBytes(h.size), h.size);
    let want = Buffer.from(pcrs.subarray(h.size, 2 * h.size));
    const trace = new Uint8Array(1 + 37 * h.size);
    h.extendChainInto!(pcrs, h.size, values, h.size, 37, trace, 1);
    for (let i = 0; i < 37; i++) {
      want = createHash(a)
        .update(want)
        .update(values.subarray((i + 1) * h.size, (i + 2) * h.size))
        .digest();
      assert.deepEqual(Buffer.from(trace.subarray(1 + i * h.size, 1 + (i + 1) * h.size)), want, `${a} ${i}`);
    }
    assert.deepEqual(Buffer.from(pcrs.subarray(h.size, 2 * h.size)), want);
    assert.ok(
      pcrs.subarray(0, h.size).every((x) => x === 0) && pcrs.subarray(2 * h.size).every((x) => x === 0),
    );
  }
  const h = p('sha256')!;
  const pcrs = new Uint8Array(32);
  assert.throws(
    () => h.extendChainInto!(pcrs, 1, new Uint8Array(64), 0, 2, new Uint8Array(64), 0),
    RangeError,
  );
  assert.throws(
    () => h.extendChainInto!(pcrs, 0, new Uint8Array(63), 0, 2, new Uint8Array(64), 0),
    RangeError,
  );
  assert.throws(
    () => h.extendChainInto!(pcrs, 0, new Uint8Array(64), 0, 2, new Uint8Array(63), 0),
    RangeError,
  );
  assert.ok(
    pcrs.every((x) => x === 0),
    'nothing extended before the ranges were checked',
  );
});

/** The comparable part of a verdict. */
function essence(v: ListVerdict) {
  const { format: _f, ...rest } = v;
  return rest;
}

test('replay verdicts are identical with native and TypeScript hashers', async () => {
  const hashes = nativeHashes()!;
  const l = buildList(200, { banks: ['sha1', 'sha256', 'sha384', 'sha512'] });
  const cases: [string, Uint8Array, Parameters<typeof verifyMeasurementList>[1]][] = [
    ['pass', l.bytes, { expected: l.pcrs }],
    ['recompute all', l.bytes, { expected: l.pcrs, recomputeAll: true }],
    ['prefix', l.bytes, { expected: oraclePcrs(l.entries.slice(0, 121), ['sha1', 'sha256']) }],
  ];
  const bad = l.entries.map((e) => ({ ...e }));
  const td = bad[77]!.templateData.slice();
  td[td.length - 2]! ^= 0x10;
  bad[77] = { ...bad[77]!, templateData: td };
  cases.push(['tampered', encode(bad, l.format), { expected: l.pcrs }]);
  // sha256 bank extended with the zero-padded SHA-1 digests (pitfall 4)
  let pcr = new Uint8Array(32);
  for (const e of l.entries) {
    const v = new Uint8Array(32);
    v.set(e.digest);
    pcr = createHash('sha256').update(pcr).update(v).digest();
  }
  cases.push([
    'padded quirk',
    l.bytes,
    {
      expected: new Map([
        ['sha1', l.pcrs.get('sha1')!],
        ['sha256', new Map([[10, pcr]])],
      ]),
    },
  ]);
  for (const [name, bytes, opts] of cases) {
    const js = await verifyMeasurementList(bytesSource(bytes), opts);
    const nat = await verifyMeasurementList(bytesSource(bytes), { ...opts, hashes });
    assert.deepEqual(essence(nat), essence(js), name);
  }
  const statuses = await Promise.all(
    cases.map(async ([, b, o]) => (await verifyMeasurementList(bytesSource(b), { ...o, hashes })).status),
  );
  // a list running ahead of its PCRs passes as a prefix
  assert.deepEqual(statuses, ['pass', 'pass', 'pass', 'fail', 'pass']);
  const prefix = await verifyMeasurementList(bytesSource(l.bytes), { ...cases[2]![2], hashes });
  assert.equal(prefix.banks[0]!.pcrs[0]!.status, 'prefix');
  assert.equal(prefix.banks[0]!.pcrs[0]!.matchedThrough, 120);
});
