/**
 * Batched template hashing and PCR extends in replay (ChunkScanner.push's onBatch,
 * ListReplayer.prepare, a hasher's hashSpansInto and extendChainInto): a replay whose hashers batch
 * gives the same verdict as one that hashes and extends entry by entry, for lists mixing ima-ng, legacy `ima` entries, violations and two PCRs, read in chunks
 * that split entries anywhere; every entry reaches onEntry with the same cursor; a malformed entry
 * is thrown after the entries before it were seen, as without a batch. The batching hasher here is
 * the TypeScript one with loops, so this runs whether or not the native addon is built (its own
 * hashSpansInto and extendChainInto are checked against node:crypto in
 * test/unit/host/workers/native-hash.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { isImakitError } from '../../../../src/errors.ts';
import {
  encodeBinaryList,
  type EntryCursor,
  type UntrustedEntry,
} from '../../../../src/core/ima-list/binary.ts';
import {
  fastHashFor,
  type FastHash,
  type FastHashProvider,
} from '../../../../src/core/ima-list/fast-hash.ts';
import {
  verifyMeasurementList,
  type ListSource,
  type ListVerdict,
  type VerifyListOptions,
} from '../../../../src/core/ima-list/verify.ts';
import { imaNgData, nodeHash } from './build-list.ts';

/** The TypeScript hashers plus a span loop: replay takes its batch path with them. */
const batching: FastHashProvider = (bank) => {
  const h = fastHashFor(bank);
  if (!h) return undefined;
  let calls = 0;
  const withSpans: FastHash & { calls(): number } = {
    size: h.size,
    hashInto: (...a) => h.hashInto(...a),
    hash2Into: (...a) => h.hash2Into(...a),
    hashSpansInto(src, spans, count, out, outOff) {
      calls++;
      for (let i = 0; i < count; i++)
        if (spans[2 * i + 1]! >= 0)
          h.hashInto(src, spans[2 * i]!, spans[2 * i + 1]!, out, outOff + i * h.size);
    },
    extendChainInto(pcrs, pcrOff, values, valuesOff, count, trace, traceOff) {
      calls++;
      for (let i = 0; i < count; i++) {
        h.hash2Into(pcrs, pcrOff, h.size, values, valuesOff + i * h.size, h.size, pcrs, pcrOff);
        trace.set(pcrs.subarray(pcrOff, pcrOff + h.size), traceOff + i * h.size);
      }
    },
    calls: () => calls,
  };
  return withSpans;
};

/** A list of every kind of entry the batch treats differently. */
function mixedList(n: number): Uint8Array {
  const entries: UntrustedEntry[] = [];
  for (let i = 0; i < n; i++) {
    let templateName = 'ima-ng';
    let data: Uint8Array;
    if (i % 7 === 3) {
      // legacy `ima`: d(20) ‖ u32 strlen ‖ name, no length word; hashed through a padded buffer
      templateName = 'ima';
      const name = Buffer.from(`/legacy/${i}`);
      const len = Buffer.alloc(4);
      len.writeUInt32LE(name.length);
      data = new Uint8Array(Buffer.concat([randomBytes(20), len, name]));
    } else data = imaNgData('sha256', new Uint8Array(randomBytes(32)), `/usr/lib/f${i}${'x'.repeat(i % 90)}`);
    const legacyPad = new Uint8Array(20 + 256);
    if (templateName === 'ima') {
      legacyPad.set(data.subarray(0, 20), 0);
      legacyPad.set(data.subarray(24), 20);
    }
    const violation = i % 11 === 5;
    entries.push({
      index: i,
      offset: 0,
      pcr: i % 5 === 4 ? 11 : 10,
      digest: violation ? new Uint8Array(20) : nodeHash('sha1', templateName === 'ima' ? legacyPad : data),
      templateName,
      templateData: data,
    });
  }
  return encodeBinaryList(entries, { endian: 'le', digestSize: 20, bank: 'sha1' });
}

/** The bytes in chunks of `size` (entries split at arbitrary points). */
const chunked =
  (bytes: Uint8Array, size: number): ListSource =>
  () => {
    const out: Uint8Array[] = [];
    for (let p = 0; p < bytes.length; p += size) out.push(bytes.slice(p, p + size));
    return out;
  };

function essence(v: ListVerdict) {
  const { format: _f, ...rest } = v;
  return rest;
}

const cursorFields = (c: EntryCursor): string =>
  [c.index, c.offset, c.length, c.pcr, c.legacy, c.nameLen, c.dataLen].join(',') +
  `:${createHash('sha1')
    .update(c.buf.subarray(c.offset - (c.offset - c.digestOff + 4), c.digestOff + 20))
    .update(c.buf.subarray(c.nameOff, c.nameOff + c.nameLen))
    .update(c.buf.subarray(c.dataOff, c.dataOff + c.dataLen))
    .digest('hex')}`;

async function both(src: ListSource, opts: VerifyListOptions) {
  const seen: [string[], string[]] = [[], []];
  const one = await verifyMeasurementList(src, { ...opts, onEntry: (c) => seen[0].push(cursorFields(c)) });
  const hashes = batching;
  const two = await verifyMeasurementList(src, {
    ...opts,
    hashes,
    onEntry: (c) => seen[1].push(cursorFields(c)),
  });
  assert.deepEqual(seen[1], seen[0], 'onEntry saw the same entries');
  return { one, two };
}

test('batched and entry-by-entry replay give the same verdict, every chunk size and option', async () => {
  const bytes = mixedList(400);
  // the PCRs the list replays to (entry-by-entry replay), then a prefix and a wrong value
  const ref = await verifyMeasurementList(() => [bytes], { banks: ['sha1', 'sha256'] });
  const full = ref.state.pcrs;
  assert.equal(ref.entries, 400);
  const only256 = new Map([['sha256', full.get('sha256')!]]);
  const wrong = new Map([
    ['sha256', new Map([...full.get('sha256')!].map(([k]) => [k, new Uint8Array(randomBytes(32))]))],
  ]);
  // the PCRs after entry 249: the whole list runs ahead of them (a prefix match)
  const offsets: number[] = [];
  await verifyMeasurementList(() => [bytes], { onEntry: (c) => offsets.push(c.offset) });
  const head = await verifyMeasurementList(() => [bytes.subarray(0, offsets[250])], { banks: ['sha256'] });
  const cases: [string, VerifyListOptions][] = [
    ['a prefix of the list matches', { expected: head.state.pcrs }],
    ['sha256 PCRs only (listed sha1 digests recomputed)', { expected: only256 }],
    ['both banks (listed digests bound by the PCRs)', { expected: full }],
    ['both banks, recompute all', { expected: full, recomputeAll: true }],
    ['wrong PCRs (diagnosis)', { expected: wrong }],
    ['no PCRs', {}],
  ];
  for (const size of [97, 1000, 1 << 20])
    for (const [name, opts] of cases) {
      const { one, two } = await both(chunked(bytes, size), opts);
      assert.deepEqual(essence(two), essence(one), `${name}, chunks of ${size}`);
    }
  const prefix = await both(chunked(bytes, 1000), { expected: head.state.pcrs });
  assert.deepEqual(
    prefix.two.banks[0]!.pcrs.map((p) => [p.status, p.matchedThrough]),
    // entry 249 went to PCR 11: PCR 10's last entry of the prefix is 248
    [
      ['prefix', 248],
      ['prefix', 249],
    ],
  );
  const pass = await both(chunked(bytes, 1000), { expected: only256 });
  assert.equal(pass.two.status, 'pass');
  assert.equal(pass.two.templateDigests, 'recomputed');
  assert.ok(pass.two.violations > 0);
});

test('a tampered entry is found the same way batched (mismatch named, digest column vs data)', async () => {
  const bytes = mixedList(120);
  const ref = await verifyMeasurementList(() => [bytes], { banks: ['sha1', 'sha256'] });
  const bad = bytes.slice();
  // flip a byte in the file path of entry 40's template data (an ima-ng entry)
  const at = Buffer.from(bad).indexOf('/usr/lib/f40');
  bad[at + 9]! ^= 1;
  for (const size of [113, 4096]) {
    const { one, two } = await both(chunked(bad, size), {
      expected: new Map([['sha256', ref.state.pcrs.get('sha256')!]]),
    });
    assert.equal(two.status, 'fail');
    assert.equal(two.mismatches[0]?.index, 40);
    assert.deepEqual(essence(two), essence(one), `chunks of ${size}`);
  }
});

test('a malformed entry mid-chunk: the entries before it are seen, then the same error', async () => {
  const bytes = mixedList(50);
  const bad = bytes.slice();
  // entry 30's pcr field out of range: find it by walking the entries once
  const offsets: number[] = [];
  await verifyMeasurementList(() => [bytes], { onEntry: (c) => offsets.push(c.offset) });
  bad.set([0xff, 0xff, 0, 0], offsets[30]!);
  for (const hashes of [undefined, batching]) {
    let seen = 0;
    await assert.rejects(
      verifyMeasurementList(() => [bad], { ...(hashes && { hashes }), onEntry: () => void seen++ }),
      (e) => isImakitError(e, 'E_LIST_ENTRY') && e.context.entry === 30,
    );
    assert.equal(seen, 30, hashes ? 'batched' : 'entry by entry');
  }
});

test('the batch path is taken: one span call per chunk and bank, not one per entry', async () => {
  const bytes = mixedList(300);
  const ref = await verifyMeasurementList(() => [bytes], { banks: ['sha256'] });
  const made: (FastHash & { calls(): number })[] = [];
  const counting: FastHashProvider = (bank) => {
    const h = batching(bank) as (FastHash & { calls(): number }) | undefined;
    if (h) made.push(h);
    return h;
  };
  const v = await verifyMeasurementList(chunked(bytes, 4096), { expected: ref.state.pcrs, hashes: counting });
  assert.equal(v.status, 'pass');
  const chunks = Math.ceil(bytes.length / 4096);
  const calls = made.reduce((n, h) => n + h.calls(), 0);
  // sha1 (listed digests) and sha256 (the replayed bank, hashed and extended: two PCRs, so up to
  // one extend run per entry into PCR 11 and the run after it): far fewer than 3 calls per entry
  assert.ok(calls > 0 && calls < 300, `${calls} batch calls for ${chunks} chunks of 300 entries`);
});
