import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash as ch } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../../../helpers.ts';
import { buildList, encode, oraclePcrs } from './build-list.ts';
import { bytesSource, verifyMeasurementList } from '../../../../src/core/ima-list/verify.ts';
import {
  checkpointFromVerdict,
  checkpointToJson,
  emptyCheckpoint,
  ListResumer,
  parseCheckpoint,
  resumeMeasurementList,
  type ListCheckpoint,
} from '../../../../src/core/ima-list/checkpoint.ts';
import { readFileChunks } from '../../../../src/host/attest/list-file.ts';
import { toHex } from '../../../../src/core/bytes/bytes.ts';
import { isImakitError } from '../../../../src/errors.ts';

const BANKS = ['sha1', 'sha256'];

const pcrHex = (cp: ListCheckpoint): string =>
  BANKS.map((b) => toHex(cp.state.pcrs.get(b)!.get(10)!)).join('/');

async function checkpointAt(bytes: Uint8Array, expected: Map<string, Map<number, Uint8Array>>) {
  const v = await verifyMeasurementList(bytesSource(bytes), { expected, banks: BANKS });
  assert.equal(v.status, 'pass', v.detail);
  return checkpointFromVerdict(v);
}

test('resume from a checkpoint on a longer list replays only the new entries and equals a full replay', async () => {
  const l = buildList(40);
  const short = encode(l.entries.slice(0, 21));
  const cp = await checkpointAt(short, oraclePcrs(l.entries.slice(0, 21), BANKS));
  assert.equal(cp.entries, 21);
  assert.equal(cp.offset, short.length);
  assert.equal(cp.lastEntry?.index, 20);
  const r = await resumeMeasurementList(bytesSource(l.bytes), cp, { expected: l.pcrs });
  assert.equal(r.status, 'pass', r.detail);
  assert.equal(r.newEntries, 20);
  assert.equal(r.restart, undefined);
  const full = await checkpointAt(l.bytes, l.pcrs);
  assert.equal(pcrHex(r.checkpoint), pcrHex(full));
  assert.deepEqual(checkpointToJson(r.checkpoint), checkpointToJson(full));
  // the oracle (node:crypto) agrees
  assert.equal(toHex(r.checkpoint.state.pcrs.get('sha256')!.get(10)!), toHex(l.pcrs.get('sha256')!.get(10)!));
});

test('resuming with seek reads from the last entry only (file positions), same result', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const l = buildList(30);
    const cp = await checkpointAt(encode(l.entries.slice(0, 11)), oraclePcrs(l.entries.slice(0, 11), BANKS));
    const f = join(dir, 'list');
    writeFileSync(f, l.bytes);
    const r = await resumeMeasurementList(() => readFileChunks(f, 64), cp, {
      expected: l.pcrs,
      seek: (off) => readFileChunks(f, 64, off),
    });
    assert.equal(r.status, 'pass', r.detail);
    assert.equal(r.newEntries, 20);
    // only the first entry (reboot check) and the last covered entry are read again
    assert.equal(r.skippedEntries, 2);
  } finally {
    cleanup();
  }
});

test('idempotent: repeated and overlapping ranges change nothing; a gap is E_CHECKPOINT', async () => {
  const l = buildList(25);
  const once = new ListResumer(emptyCheckpoint(l.format, BANKS));
  once.feedRange(l.bytes, 0);
  const ref = once.checkpoint();
  const again = new ListResumer(emptyCheckpoint(l.format, BANKS));
  const half = encode(l.entries.slice(0, 13)).length;
  again.feedRange(l.bytes.subarray(0, half + 7), 0); // ends inside an entry: 7 bytes left unconsumed
  const mid = again.checkpoint();
  assert.equal(mid.entries, 13);
  again.feedRange(l.bytes, 0); // everything again from the start
  again.feedRange(l.bytes.subarray(mid.lastEntry!.offset), mid.lastEntry!.offset); // overlap
  again.feedRange(l.bytes.subarray(half), half); // exactly repeated tail
  const cp = again.checkpoint();
  assert.deepEqual(checkpointToJson(cp), checkpointToJson(ref));
  assert.equal(again.restart, undefined);
  // a range starting beyond the checkpoint leaves entries out
  const gap = new ListResumer(mid);
  assert.throws(
    () => gap.feedRange(l.bytes.subarray(half + 200), half + 200),
    (e: unknown) => isImakitError(e, 'E_CHECKPOINT'),
  );
  // a range starting off an entry boundary before the checkpoint is refused, not misparsed
  assert.throws(
    () => gap.feedRange(l.bytes.subarray(5), 5),
    (e: unknown) => isImakitError(e) && (e.code === 'E_CHECKPOINT' || e.code === 'E_LIST_ENTRY'),
  );
});

test('a restarted list is detected: new boot_aggregate, shorter list, different last entry', async () => {
  const l = buildList(20);
  const cp = await checkpointAt(l.bytes, l.pcrs);
  // reboot: a new boot_aggregate and new entries
  const rebooted = buildList(30);
  const r1 = await resumeMeasurementList(bytesSource(rebooted.bytes), cp, { expected: rebooted.pcrs });
  assert.equal(r1.restart?.reason, 'first-entry');
  assert.equal(r1.status, 'pass'); // the new list verified from its start
  assert.equal(r1.full?.entries, 31);
  assert.equal(r1.checkpoint.entries, 31);
  // shorter list (same boot_aggregate)
  const shorter = encode(l.entries.slice(0, 10));
  const r2 = await resumeMeasurementList(bytesSource(shorter), cp, {
    expected: oraclePcrs(l.entries.slice(0, 10), BANKS),
  });
  assert.equal(r2.restart?.reason, 'shorter');
  assert.equal(r2.status, 'pass');
  // same first entries, different entry at the checkpoint's last position (same length)
  const changed = [...l.entries];
  const last = changed[20]!;
  const other = buildList(1, { prefix: '/usr/bin/fileX' }).entries[1]!; // same name length
  changed[20] = { ...other, index: 20 };
  assert.equal(other.templateData.length, last.templateData.length);
  const r3 = await resumeMeasurementList(bytesSource(encode(changed)), cp, {
    expected: oraclePcrs(changed, BANKS),
  });
  assert.equal(r3.restart?.reason, 'last-entry');
  assert.equal(r3.restart?.entry, 20);
  // different lengths before the checkpoint's end: boundary
  const longer = [...l.entries];
  longer[5] = { ...buildList(1, { prefix: '/usr/bin/a-much-longer-name' }).entries[1]!, index: 5 };
  const r4 = await resumeMeasurementList(bytesSource(encode(longer)), cp, {
    expected: oraclePcrs(longer, BANKS),
  });
  assert.ok(r4.restart?.reason === 'boundary' || r4.restart?.reason === 'last-entry', r4.restart?.reason);
});

test('an appended entry whose data was altered fails the resumed verification at its index', async () => {
  const l = buildList(15);
  const cp = await checkpointAt(encode(l.entries.slice(0, 10)), oraclePcrs(l.entries.slice(0, 10), BANKS));
  const bad = new Uint8Array(l.bytes);
  bad[bad.length - 3]! ^= 0x20; // inside the last entry's file name
  const r = await resumeMeasurementList(bytesSource(bad), cp, { expected: l.pcrs });
  assert.equal(r.status, 'fail');
  assert.equal(r.mismatches[0]?.index, 15);
  // the list ran ahead: an older PCR value still matches at a prefix
  const r2 = await resumeMeasurementList(bytesSource(l.bytes), cp, {
    expected: oraclePcrs(l.entries.slice(0, 13), BANKS),
  });
  assert.equal(r2.status, 'pass');
  assert.ok(r2.banks.every((b) => b.pcrs[0]!.status === 'prefix' && b.pcrs[0]!.matchedThrough === 12));
});

test('a bank that passed through the padded-SHA-1 quirk keeps its mode in the checkpoint', async () => {
  const l = buildList(12);
  // a sha256 PCR extended the pre-5.1 way: SHA-1 template digests zero-padded to 32 bytes
  const expected = oraclePcrsPadded(l.entries);
  const v = await verifyMeasurementList(bytesSource(encode(l.entries.slice(0, 8))), {
    expected: oraclePcrsPadded(l.entries.slice(0, 8)),
    banks: BANKS,
  });
  assert.equal(v.status, 'pass', v.detail);
  assert.deepEqual(v.quirks, ['sha1-padded-bank']);
  const cp = checkpointFromVerdict(v);
  assert.equal(cp.banks.find((b) => b.bank === 'sha256')?.mode, 'sha1-padded');
  const r = await resumeMeasurementList(
    bytesSource(l.bytes),
    parseCheckpoint(JSON.stringify(checkpointToJson(cp))),
    {
      expected,
    },
  );
  assert.equal(r.status, 'pass', r.detail);
});

function oraclePcrsPadded(
  entries: ReturnType<typeof buildList>['entries'],
): Map<string, Map<number, Uint8Array>> {
  const sha1 = oraclePcrs(entries, ['sha1']).get('sha1')!;
  let p: Uint8Array = new Uint8Array(32);
  for (const e of entries) {
    const v = new Uint8Array(32);
    v.set(require_sha1(e.templateData));
    p = require_sha256(p, v);
  }
  return new Map([
    ['sha1', sha1],
    ['sha256', new Map([[10, p]])],
  ]);
}
const require_sha1 = (d: Uint8Array): Uint8Array => new Uint8Array(ch('sha1').update(d).digest());
const require_sha256 = (a: Uint8Array, b: Uint8Array): Uint8Array =>
  new Uint8Array(ch('sha256').update(a).update(b).digest());

test('checkpoint JSON: round trip, and malformed checkpoints are E_CHECKPOINT naming the field', async () => {
  const l = buildList(5);
  const cp = await checkpointAt(l.bytes, l.pcrs);
  const j = checkpointToJson(cp);
  assert.deepEqual(checkpointToJson(parseCheckpoint(JSON.stringify(j))), j);
  const bad: [string, (o: Record<string, unknown>) => void][] = [
    ['version', (o) => (o.version = 2)],
    ['counts', (o) => (o.counts = { '10': 99 })],
    ['format', (o) => (o.format = { endian: 'le', digestSize: 32, bank: 'sha1' })],
    ['pcrs', (o) => ((o.pcrs as Record<string, unknown>).sha256 = { '10': 'abcd' })],
    ['lastEntry', (o) => ((o.lastEntry as Record<string, unknown>).offset = 3)],
    ['banks', (o) => (o.banks = [])],
  ];
  for (const [field, mutate] of bad) {
    const o = JSON.parse(JSON.stringify(j)) as Record<string, unknown>;
    mutate(o);
    assert.throws(
      () => parseCheckpoint(JSON.stringify(o)),
      (e: unknown) => isImakitError(e, 'E_CHECKPOINT') && e.context.field === field,
      field,
    );
  }
  assert.throws(
    () => parseCheckpoint('{nope'),
    (e: unknown) => isImakitError(e, 'E_CHECKPOINT'),
  );
});

test('the checkpoint of an empty list round-trips through JSON (every bank written, none with values)', async () => {
  const empty = encode([]);
  const v = await verifyMeasurementList(bytesSource(empty), { expected: new Map(), banks: BANKS });
  const cp = checkpointFromVerdict(v);
  const json = checkpointToJson(cp);
  assert.deepEqual(Object.keys(json.pcrs as object).sort(), [...BANKS].sort());
  const back = parseCheckpoint(JSON.stringify(json));
  assert.deepEqual(checkpointToJson(back), json);
  // and a list that then grows resumes from it
  const l = buildList(5);
  const r = await resumeMeasurementList(bytesSource(l.bytes), back, { expected: l.pcrs });
  assert.equal(r.status, 'pass', r.detail);
  assert.equal(r.newEntries, l.entries.length);
});
