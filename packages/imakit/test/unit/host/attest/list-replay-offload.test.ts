/**
 * Worker-offloaded list replay (host/list-replay-offload.ts) gives the same verdict as the
 * one-thread replay: passing lists, a list running ahead of the PCRs (prefix), a tampered list
 * (diagnosis from the local passes), a quirk bank, a truncated list (typed error, worker stopped),
 * and chunks smaller than one entry. PCR values come from node:crypto (build-list.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  bytesSource,
  verifyMeasurementList,
  type ListVerdict,
} from '../../../../src/core/ima-list/verify.ts';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { workerOffload } from '../../../../src/host/attest/list-replay-offload.ts';
import { verifyListFile } from '../../../../src/host/attest/list-verify.ts';
import { renderEvmctlPcrs } from '../../../../src/core/tcg/pcr-values.ts';
import { buildList, nodeHash, oraclePcrs, encode } from '../../core/ima-list/build-list.ts';

function chunked(bytes: Uint8Array, size: number) {
  return () => {
    const out: Uint8Array[] = [];
    for (let i = 0; i < bytes.length; i += size) out.push(bytes.slice(i, i + size));
    return out;
  };
}

/** The comparable part of a verdict. */
function essence(v: ListVerdict) {
  return {
    status: v.status,
    detail: v.detail,
    entries: v.entries,
    banks: v.banks,
    quirks: v.quirks,
    mismatches: v.mismatches,
    diagnosis: v.diagnosis,
    state: v.state,
    bytes: v.bytes,
    firstEntry: v.firstEntry,
    lastEntry: v.lastEntry,
  };
}

test('offloaded replay equals one-thread replay (pass, prefix, chunk sizes)', async () => {
  const l = buildList(300, { banks: ['sha1', 'sha256', 'sha384'] });
  for (const size of [37, 4096, 1 << 20]) {
    const a = await verifyMeasurementList(chunked(l.bytes, size), { expected: l.pcrs });
    const b = await verifyMeasurementList(chunked(l.bytes, size), {
      expected: l.pcrs,
      offload: workerOffload(),
    });
    assert.equal(a.status, 'pass');
    assert.deepEqual(essence(b), essence(a));
  }
  // the list ran ahead of the PCR read: PCRs of the first 200 entries
  const early = oraclePcrs(l.entries.slice(0, 201), ['sha1', 'sha256']);
  const a = await verifyMeasurementList(bytesSource(l.bytes), { expected: early });
  const b = await verifyMeasurementList(bytesSource(l.bytes), { expected: early, offload: workerOffload() });
  assert.equal(b.banks.find((x) => x.bank === 'sha256')!.pcrs[0]!.status, 'prefix');
  assert.equal(b.banks.find((x) => x.bank === 'sha256')!.pcrs[0]!.matchedThrough, 200);
  assert.deepEqual(essence(b), essence(a));
});

test('offloaded replay: tampered data, padded-SHA-1 quirk bank, truncation', async () => {
  const l = buildList(100);
  // flip one byte of entry 40's template data (its listed digest no longer matches)
  const bad = l.entries.map((e) => ({ ...e }));
  const td = bad[40]!.templateData.slice();
  td[td.length - 3]! ^= 1;
  bad[40] = { ...bad[40]!, templateData: td };
  const bytes = encode(bad, l.format);
  const a = await verifyMeasurementList(bytesSource(bytes), { expected: l.pcrs });
  const b = await verifyMeasurementList(bytesSource(bytes), { expected: l.pcrs, offload: workerOffload() });
  assert.equal(b.status, 'fail');
  assert.equal(b.mismatches[0]!.index, 40);
  assert.deepEqual(essence(b), essence(a));

  // sha256 bank extended with the zero-padded SHA-1 digest (pitfall 4): the quirk pass is local
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
  const q = await verifyMeasurementList(bytesSource(l.bytes), { expected: exp, offload: workerOffload() });
  assert.equal(q.status, 'pass');
  assert.deepEqual(q.quirks, ['sha1-padded-bank']);

  const cut = l.bytes.subarray(0, l.bytes.length - 5);
  await assert.rejects(
    verifyMeasurementList(chunked(cut, 512), { expected: l.pcrs, offload: workerOffload() }),
    (e: { code?: string }) => e.code === 'E_CODEC_TRUNCATED',
  );
});

test('verifyListFile: a list file with sha1 + sha256 PCR files takes the listed-digest shortcut', async () => {
  const l = buildList(200);
  const dir = mkdtempSync(join(tmpdir(), 'imakit-bound-'));
  try {
    writeFileSync(join(dir, 'list'), l.bytes);
    writeFileSync(join(dir, 'p1'), renderEvmctlPcrs(l.pcrs.get('sha1')!, 20));
    writeFileSync(join(dir, 'p256'), renderEvmctlPcrs(l.pcrs.get('sha256')!, 32));
    const pcrs = [`sha1,${join(dir, 'p1')}`, `sha256,${join(dir, 'p256')}`];
    const r = await verifyListFile(join(dir, 'list'), { pcrs });
    assert.equal(r.status, 'pass');
    assert.equal(r.verdict!.templateDigests, 'bound-by-pcrs');
    // sha1 PCRs alone: nothing binds the template data, every digest is recomputed
    const one = await verifyListFile(join(dir, 'list'), { pcrs: pcrs.slice(0, 1) });
    assert.equal(one.status, 'pass');
    assert.equal(one.verdict!.templateDigests, 'recomputed');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
