import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { tempDir } from '../../../helpers.ts';
import { tpm2Eventlog } from './tpm2-eventlog.ts';
import {
  encodeAgileEvent,
  encodeEventLog,
  encodeSpecIdHeader,
  parseEventLog,
} from '../../../../src/core/tcg/event-log.ts';
import { compareEventLogPcrs, replayEventLog } from '../../../../src/core/tcg/replay.ts';
import { decodeEventData } from '../../../../src/core/tcg/event-types.ts';
import { checkBootAggregate, computeBootAggregates } from '../../../../src/core/tcg/boot-aggregate.ts';
import { toHex } from '../../../../src/core/bytes/bytes.ts';
import { isImakitError } from '../../../../src/errors.ts';
import { main } from '../../../../src/cli/main.ts';
import { memoryIo } from '../../../../src/cli/io.ts';
import { renderPcrJson } from '../../../../src/core/tcg/pcr-values.ts';
import { buildList, encode } from '../ima-list/build-list.ts';

const H = (alg: string, ...d: Uint8Array[]): Uint8Array => {
  const h = createHash(alg);
  for (const x of d) h.update(x);
  return new Uint8Array(h.digest());
};
const ALGS: [number, number, string][] = [
  [0x0004, 20, 'sha1'],
  [0x000b, 32, 'sha256'],
];
const EFI = 0x80000000;

function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
}
const utf16 = (s: string): Buffer => Buffer.from(s, 'utf16le');
const guid = Buffer.from('61dfe48bca93d211aa0d00e098032b8c', 'hex'); // EFI_GLOBAL_VARIABLE

interface Ev {
  pcr: number;
  type: number;
  data: Uint8Array;
  /** what the digest is over: the data itself, or (code, images) something else */
  measured?: Uint8Array;
}

/** A realistic crypto-agile log: every PC Client event kind the spec decodes. */
function sampleEvents(): Ev[] {
  const varData = (name: string, value: Uint8Array): Buffer =>
    Buffer.concat([guid, u64(name.length), u64(value.length), utf16(name), value]);
  const gptHeader = Buffer.alloc(92);
  gptHeader.write('EFI PART', 0, 'latin1');
  randomBytes(16).copy(gptHeader, 56); // DiskGUID
  const gpt = Buffer.concat([gptHeader, u64(1), Buffer.alloc(128, 7)]);
  const image = Buffer.concat([
    u64(0x7e000000),
    u64(0x20000),
    u64(0),
    u64(4),
    Buffer.from([0x7f, 0xff, 0x04, 0x00]),
  ]);
  const sep = new Uint8Array(4);
  return [
    {
      pcr: 0,
      type: 0x3,
      data: Buffer.concat([Buffer.from('StartupLocality\0', 'latin1'), Buffer.from([3])]),
    },
    { pcr: 0, type: 0x8, data: utf16('1.0\0') }, // S-CRTM version (covers data)
    { pcr: 0, type: 0x7, data: Buffer.concat([u64(0xfff00000), u64(0x100000)]), measured: randomBytes(64) },
    {
      pcr: 0,
      type: EFI + 0x8,
      data: Buffer.concat([u64(0x820000), u64(0xe0000)]),
      measured: randomBytes(100),
    },
    { pcr: 0, type: 0x1, data: Buffer.from('ACPI DATA'), measured: randomBytes(50) }, // odd-sized post code
    { pcr: 7, type: EFI + 0x1, data: varData('SecureBoot', new Uint8Array([1])) },
    { pcr: 7, type: EFI + 0x1, data: varData('PK', randomBytes(40)) },
    ...[0, 1, 2, 3, 4, 5, 6, 7].map((pcr) => ({ pcr, type: 0x4, data: sep })),
    { pcr: 4, type: 0x5, data: Buffer.from('Calling EFI Application from Boot Option') },
    { pcr: 4, type: EFI + 0x3, data: image, measured: randomBytes(300) },
    { pcr: 5, type: EFI + 0x6, data: gpt },
    { pcr: 5, type: EFI + 0x7, data: Buffer.from('Exit Boot Services Invocation') },
    { pcr: 1, type: EFI + 0x2, data: varData('BootOrder', new Uint8Array([0, 0])), measured: undefined },
    { pcr: 9, type: 0xd, data: Buffer.from('(hd0,gpt2)/vmlinuz root=/dev/sda2\0') },
  ];
}

function agileLog(events: Ev[]): Uint8Array {
  const parts = [encodeSpecIdHeader(ALGS.map(([a, s]) => [a, s]))];
  for (const e of events) {
    const over = e.measured ?? e.data;
    const digests: [number, Uint8Array][] =
      e.type === 0x3 ? ALGS.map(([a, s]) => [a, new Uint8Array(s)]) : ALGS.map(([a, , n]) => [a, H(n, over)]);
    parts.push(encodeAgileEvent(e.pcr, e.type, digests, e.data));
  }
  return new Uint8Array(Buffer.concat(parts));
}

function legacyLog(events: Ev[]): Uint8Array {
  return new Uint8Array(
    Buffer.concat(
      events.map((e) => {
        const b = Buffer.alloc(32 + e.data.length);
        b.writeUInt32LE(e.pcr, 0);
        b.writeUInt32LE(e.type, 4);
        b.set(H('sha1', e.measured ?? e.data), 8);
        b.writeUInt32LE(e.data.length, 28);
        b.set(e.data, 32);
        return b;
      }),
    ),
  );
}

/** Independent replay with node:crypto (StartupLocality sets PCR 0's last byte). */
function oracle(events: Ev[], bank: string, size: number): Map<number, string> {
  const pcrs = new Map<number, Uint8Array>();
  for (const e of events) {
    if (e.type === 0x3) {
      const v = new Uint8Array(size);
      v[size - 1] = e.data[16]!;
      pcrs.set(0, v);
      continue;
    }
    pcrs.set(e.pcr, H(bank, pcrs.get(e.pcr) ?? new Uint8Array(size), H(bank, e.measured ?? e.data)));
  }
  return new Map([...pcrs].map(([k, v]) => [k, toHex(v)]));
}

/** PCR 0 as tpm2-tools 5.4 computes it: EV_NO_ACTION extended as a zero digest from a zero PCR. */
function oracleZeroExtendNoAction(events: Ev[], bank: string, size: number): string {
  let p: Uint8Array = new Uint8Array(size);
  for (const e of events)
    if (e.pcr === 0) p = H(bank, p, e.type === 0x3 ? new Uint8Array(size) : H(bank, e.measured ?? e.data));
  return toHex(p);
}

test('a StartupLocality event after PCR 0 was extended is ignored and named', () => {
  const evs = sampleEvents();
  const late = [evs[1]!, evs[0]!, ...evs.slice(2)];
  const r = replayEventLog(parseEventLog(agileLog(late)));
  assert.ok(r.quirks.some((q) => q.id === 'startup-locality-late'));
  const noLoc = replayEventLog(parseEventLog(agileLog(evs.slice(1))));
  assert.equal(toHex(r.pcrs.get('sha256')!.get(0)!), toHex(noLoc.pcrs.get('sha256')!.get(0)!));
});

test('crypto-agile log: parse, decode, replay per bank = node:crypto oracle = tpm2_eventlog', () => {
  const { dir, cleanup } = tempDir();
  try {
    const evs = sampleEvents();
    const bytes = agileLog(evs);
    const log = parseEventLog(bytes);
    assert.equal(log.format, 'crypto-agile');
    assert.deepEqual(
      log.specAlgorithms.map((a) => a.bank),
      ['sha1', 'sha256'],
    );
    assert.deepEqual(encodeEventLog(log), bytes);
    const r = replayEventLog(log);
    for (const [, size, bank] of ALGS)
      assert.deepEqual(
        new Map([...r.pcrs.get(bank)!].map(([k, v]) => [k, toHex(v)])),
        oracle(evs, bank, size),
      );
    // quirks by name
    assert.ok(r.quirks.some((q) => q.id === 'startup-locality' && q.event === 1));
    assert.ok(r.quirks.some((q) => q.id === 'odd-post-code' && q.event === 5));
    // decoded data
    const d = log.events.map((e) => decodeEventData(e.type, e.data));
    assert.deepEqual(d[0], { kind: 'startup-locality', locality: 3 });
    assert.equal(d[1]!.kind, 'string');
    assert.equal(d[3]!.kind, 'firmware-blob');
    assert.deepEqual(
      [d[5]!.kind, (d[5] as { name: string }).name, (d[5] as { guid: string }).guid],
      ['efi-variable', 'SecureBoot', '8be4df61-93ca-11d2-aa0d-00e098032b8c'],
    );
    assert.equal(d[7]!.kind, 'separator');
    assert.equal(d[16]!.kind, 'efi-image');
    assert.deepEqual([d[17]!.kind, (d[17] as { partitions: number }).partitions], ['gpt', 1]);
    // tpm2_eventlog on the same bytes
    writeFileSync(join(dir, 'log'), bytes);
    const t = tpm2Eventlog(join(dir, 'log'));
    assert.equal(t.status, 0, t.stderr);
    assert.equal(t.events.length, evs.length + 1);
    for (const e of log.events)
      for (const [b, dg] of e.digests)
        assert.equal(t.events[e.index]!.digests.get(b), toHex(dg), `event ${e.index}`);
    // tpm2-tools 5.4 extends the StartupLocality EV_NO_ACTION event's zero digest into PCR 0 instead
    // of starting PCR 0 at the locality (PFP §10.4.5.3, which we follow): its PCR 0 equals that
    // variant of the oracle; every other PCR is equal as is
    for (const [bank, m] of t.pcrs)
      for (const [i, hex] of m) {
        const size = bank === 'sha1' ? 20 : 32;
        const ours = i === 0 ? oracleZeroExtendNoAction(evs, bank, size) : toHex(r.pcrs.get(bank)!.get(i)!);
        assert.equal(ours, hex, `${bank} PCR ${i}`);
      }
    assert.equal(t.pcrs.get('sha256')?.size, 9, 'tpm2_eventlog printed PCRs 0-7 and 9');
  } finally {
    cleanup();
  }
});

test('TPM 1.2 SHA-1 log: parsed, quirk named, replayed like node:crypto and tpm2_eventlog', () => {
  const { dir, cleanup } = tempDir();
  try {
    const evs = sampleEvents().filter((e) => e.type !== 0x3);
    const bytes = legacyLog(evs);
    const log = parseEventLog(bytes);
    assert.equal(log.format, 'tpm12');
    assert.ok(log.quirks.some((q) => q.id === 'first-event-not-no-action'));
    assert.deepEqual(encodeEventLog(log), bytes);
    const r = replayEventLog(log);
    assert.deepEqual(
      new Map([...r.pcrs.get('sha1')!].map(([k, v]) => [k, toHex(v)])),
      oracle(evs, 'sha1', 20),
    );
    writeFileSync(join(dir, 'log'), bytes);
    const t = tpm2Eventlog(join(dir, 'log'));
    if (t.status === 0 && t.pcrs.size > 0)
      for (const [i, hex] of t.pcrs.get('sha1')!) assert.equal(toHex(r.pcrs.get('sha1')!.get(i)!), hex);
    else assert.match(t.stderr + t.status, /./); // tpm2-tools 5.4 reads only crypto-agile logs; our oracle above stands
  } finally {
    cleanup();
  }
});

test('event data not covered by its digest is marked untrusted; covered data that lies is caught', () => {
  const evs = sampleEvents();
  const log = parseEventLog(agileLog(evs));
  assert.deepEqual(replayEventLog(log).dataMismatches, []);
  // alter the data of a covered event (EV_EFI_ACTION) but keep its digest: caught, at that event
  const bad = evs.map((e) => ({ ...e }));
  const i = bad.findIndex((e) => e.type === EFI + 0x7);
  const honest = agileLog(bad);
  const text = Buffer.from(honest);
  const at = text.indexOf('Exit Boot Services Invocation');
  text[at] = 'X'.charCodeAt(0);
  const r = replayEventLog(parseEventLog(new Uint8Array(text)));
  assert.deepEqual(
    r.dataMismatches.map((m) => m.index),
    [i + 1, i + 1],
  );
  // alter the data of an UNcovered event (boot services application): replay cannot see it,
  // which is exactly why its data is reported as untrusted (eventlog show says so)
  const j = evs.findIndex((e) => e.type === EFI + 0x3);
  const t2 = Buffer.from(honest);
  const ev = parseEventLog(honest).events[j]!; // events[k] has index k + 1 (the Spec ID header is event 0)
  t2[ev.offset + ev.raw.length - 1]! ^= 1;
  assert.deepEqual(replayEventLog(parseEventLog(new Uint8Array(t2))).dataMismatches, []);
});

test('tamper corpus: digest bit flips, truncation, reordering, dropped events are detected at the right event/PCR', () => {
  const evs = sampleEvents();
  const bytes = agileLog(evs);
  const log = parseEventLog(bytes);
  const good = replayEventLog(log).pcrs;
  const pcrIdx = [0, 1, 2, 3, 4, 5, 6, 7, 9];
  for (const e of log.events) {
    if (e.type === 0x3) continue;
    // flip one bit of the event's sha256 digest: its PCR (and only its PCR) mismatches
    const t = new Uint8Array(bytes);
    const digestOff = e.offset + 12 + 2 + 20 + 2; // pcr, type, count, sha1 alg+digest, sha256 alg
    t[digestOff + (e.index % 32)]! ^= 1 << (e.index % 8);
    const cmp = compareEventLogPcrs(replayEventLog(parseEventLog(t)), good, pcrIdx);
    const bad = cmp.results.filter((x) => x.status === 'mismatch');
    assert.deepEqual(
      bad.map((x) => [x.bank, x.pcr]),
      [['sha256', e.pcr]],
      `event ${e.index}`,
    );
  }
  // truncation inside an event: a typed error naming that event and its offset
  for (const e of log.events.slice(1)) {
    const cut = bytes.subarray(0, e.offset + Math.min(e.raw.length - 1, 20));
    assert.throws(
      () => parseEventLog(cut),
      (err: unknown) =>
        isImakitError(err) &&
        err.context.offset !== undefined &&
        (err.context.entry === undefined || err.context.entry === e.index),
      `cut in event ${e.index}`,
    );
  }
  // reorder two events of different content on PCR 7, drop one: PCR 7 mismatches
  const v1 = log.events.findIndex((e) => e.pcr === 7 && e.type === EFI + 0x1);
  const swapped = [...log.events];
  [swapped[v1], swapped[v1 + 1]] = [swapped[v1 + 1]!, swapped[v1]!];
  const re = replayEventLog({ ...log, events: swapped });
  assert.deepEqual(
    compareEventLogPcrs(re, good, pcrIdx)
      .results.filter((x) => x.status === 'mismatch')
      .map((x) => x.pcr),
    [7, 7],
  );
  const dropped = replayEventLog({ ...log, events: log.events.filter((_, k) => k !== v1) });
  assert.deepEqual(
    compareEventLogPcrs(dropped, good, pcrIdx)
      .results.filter((x) => x.status === 'mismatch')
      .map((x) => x.pcr),
    [7, 7],
  );
});

test('bad input: absurd counts and sizes are typed errors with event index and offset, no allocation', () => {
  const bytes = agileLog(sampleEvents());
  const log = parseEventLog(bytes);
  const e = log.events[2]!;
  const t = Buffer.from(bytes);
  t.writeUInt32LE(0xffffffff, e.offset + 8); // digests.count
  assert.throws(
    () => parseEventLog(new Uint8Array(t)),
    (err: unknown) =>
      isImakitError(err, 'E_EVENTLOG') &&
      err.context.entry === e.index &&
      err.context.offset === e.offset + 8,
  );
  const u = Buffer.from(bytes);
  const sizeOff = e.offset + e.raw.length - e.data.length - 4;
  u.writeUInt32LE(0xfffffff0, sizeOff); // eventSize ~ 4 GiB
  assert.throws(
    () => parseEventLog(new Uint8Array(u)),
    (err: unknown) =>
      isImakitError(err, 'E_CODEC_TOO_LARGE') &&
      err.context.entry === e.index &&
      err.context.offset === sizeOff,
  );
  const v = Buffer.from(bytes);
  v.writeUInt16LE(0x0012, e.offset + 12); // an algorithm not in the Spec ID event
  assert.throws(
    () => parseEventLog(new Uint8Array(v)),
    (err: unknown) => isImakitError(err, 'E_EVENTLOG') && err.context.entry === e.index,
  );
  const h = Buffer.from(bytes);
  h.writeUInt32LE(1000, 32 + 24); // Spec ID numberOfAlgorithms
  assert.throws(
    () => parseEventLog(new Uint8Array(h)),
    (err: unknown) => isImakitError(err),
  );
});

test('property: random and mutated logs only raise typed errors; parse∘encode is the identity', () => {
  const base = agileLog(sampleEvents());
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
      try {
        assert.deepEqual(encodeEventLog(parseEventLog(b)), b);
      } catch (e) {
        assert.ok(isImakitError(e), String(e));
      }
    }),
    { numRuns: 300 },
  );
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 1, max: 255 })), { maxLength: 4 }),
      (muts) => {
        const t = new Uint8Array(base);
        for (const [p, x] of muts) t[p]! ^= x;
        try {
          const log = parseEventLog(t);
          assert.deepEqual(encodeEventLog(log), t);
          replayEventLog(log);
        } catch (e) {
          assert.ok(isImakitError(e), String(e));
        }
      },
    ),
    { numRuns: 300 },
  );
});

test('boot_aggregate from an event log for every bank (0-7 and 0-9) checked against a list entry; CLI', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const evs = sampleEvents();
    const bytes = agileLog(evs);
    const r = replayEventLog(parseEventLog(bytes));
    const values = computeBootAggregates(r.pcrs);
    assert.equal(values.length, 4);
    const zero = (n: number) => new Uint8Array(n);
    for (const v of values) {
      const size = v.bank === 'sha1' ? 20 : 32;
      const p = (i: number) => r.pcrs.get(v.bank)!.get(i) ?? zero(size);
      const n = v.variant === 'pcr0-7' ? 8 : 10;
      assert.equal(toHex(v.digest), toHex(H(v.bank, ...Array.from({ length: n }, (_, i) => p(i)))));
    }
    const sha256_09 = values.find((v) => v.bank === 'sha256' && v.variant === 'pcr0-9')!;
    const l = buildList(3, { bootAggregate: sha256_09.digest });
    const claim = { index: 0, algo: 'sha256', digest: sha256_09.digest };
    const c = checkBootAggregate(claim, r.pcrs);
    assert.equal(c.status, 'pass');
    assert.deepEqual([c.matched?.bank, c.matched?.variant], ['sha256', 'pcr0-9']);
    const sha1_07 = values.find((v) => v.bank === 'sha1' && v.variant === 'pcr0-7')!;
    const c1 = checkBootAggregate({ index: 0, algo: 'sha1', digest: sha1_07.digest }, r.pcrs);
    assert.deepEqual([c1.matched?.bank, c1.matched?.variant], ['sha1', 'pcr0-7']);
    // CLI: eventlog show/replay and boot-aggregate --eventlog --list
    writeFileSync(join(dir, 'log'), bytes);
    writeFileSync(join(dir, 'list'), encode(l.entries));
    writeFileSync(join(dir, 'pcrs.json'), JSON.stringify(renderPcrJson(r.pcrs)));
    const io = memoryIo();
    assert.equal(
      await main(
        ['boot-aggregate', '--eventlog', join(dir, 'log'), '--list', join(dir, 'list'), '--json'],
        io,
      ),
      0,
    );
    assert.deepEqual(JSON.parse(io.out()).check.matched, { bank: 'sha256', variant: 'pcr0-9' });
    const io2 = memoryIo();
    assert.equal(
      await main(['eventlog', 'replay', join(dir, 'log'), '--pcrs-json', join(dir, 'pcrs.json')], io2),
      0,
    );
    assert.match(io2.out(), /^PASS/);
    assert.match(io2.out(), /quirk startup-locality/);
    const wrong = JSON.stringify({ sha256: { '7': '00'.repeat(32) } });
    writeFileSync(join(dir, 'wrong.json'), wrong);
    const io3 = memoryIo();
    assert.equal(
      await main(['eventlog', 'replay', join(dir, 'log'), '--pcrs-json', join(dir, 'wrong.json')], io3),
      1,
    );
    assert.match(io3.out(), /sha256 PCR {2}7: [0-9a-f]+ {2}mismatch/);
    const io4 = memoryIo();
    assert.equal(await main(['eventlog', 'show', join(dir, 'log'), '--json'], io4), 0);
    const shown = JSON.parse(io4.out()) as { events: { trust: string; type: string }[] };
    assert.equal(
      shown.events.find((e) => e.type === 'EV_EFI_BOOT_SERVICES_APPLICATION')?.trust,
      'data-untrusted',
    );
    assert.equal(shown.events.find((e) => e.type === 'EV_SEPARATOR')?.trust, 'digest-covers-data');
    const io5 = memoryIo();
    writeFileSync(join(dir, 'cut'), bytes.subarray(0, bytes.length - 5));
    assert.equal(await main(['eventlog', 'replay', join(dir, 'cut'), '--no-tpm'], io5), 2);
    assert.match(io5.err(), /cut.*entry \d+.*offset \d+/);
  } finally {
    cleanup();
  }
});
