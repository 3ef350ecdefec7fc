/**
 * Real-kernel measurement scenarios (real-kernel.md §6 a, b, c, g, h; workload §8.1): the built-in
 * tcb policy with ima-ng (four PCR banks), ima-sig, the legacy ima template (sha1) and a custom
 * ima_template_fmt. Each boot's list is verified with imakit's library (verifyMeasurementList,
 * boot_aggregate, TCG event log replay) against the captured PCRs, cross-checked with evmctl and
 * tpm2_eventlog, and the kernel behaviours of §7 are asserted, including an mmap-exec measured
 * under MMAP_CHECK and a write-then-read re-measured after the change.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runVm, type Access, type PcrBank, type VmResult, type VmSpec } from '../../src/host/vm/index.ts';
import { hashAlgoByName, hash } from '../../src/core/hash/hash-algo.ts';
import {
  BOOT_TIMEOUT_MS,
  BOOT_TIMES,
  KERNEL_DIR,
  bootAggregate,
  bootAggregateWithLibrary,
  digestField,
  eventLogWithLibrary,
  evmctlBootAggregate,
  evmctlReplay,
  fieldString,
  parseList,
  replayPcr,
  saveFixture,
  templateDigestMismatches,
  tpm2EventlogPcrs,
  verdictDetail,
  verifyListWithLibrary,
  type ListEntry,
  printBootTimes,
} from './helpers.ts';
import { Tree, makeKey, type TestKey } from './labels.ts';
import { tempDir } from '../helpers.ts';

// 309-byte guest path: /data/ + nested directories + a long file name
const LONG_DIR = `${'d'.repeat(100)}/${'e'.repeat(100)}`;
const LONG_NAME = 'f'.repeat(96);
const LONG_REL = `${LONG_DIR}/${LONG_NAME}`;
// a dynamic ELF whose libraries are in the initramfs (keyctl is copied there with its libraries)
const MMAP_ELF = readFileSync('/usr/bin/keyctl');

interface Fixture {
  tree: Tree;
  key: TestKey;
  workload: Access[];
  sigValue: Uint8Array;
}

function buildTree(): Fixture {
  const tree = new Tree();
  const key = makeKey('rsa', 'imakit kernel test');
  tree.file('bin/true', readFileSync('/bin/busybox'), { mode: 0o755 });
  tree.file('script.sh', '#!/bin/sh\necho script\n', { mode: 0o755 });
  tree.file('signed.sh', '#!/bin/sh\necho signed\n', { mode: 0o755 });
  tree.signLabel('signed.sh', key);
  tree.file('plain.txt', 'plain\n');
  tree.file('owned-by-user.txt', 'owned by 1000\n', { uid: 1000 });
  tree.file('signed.txt', 'signed\n');
  const sigValue = tree.signLabel('signed.txt', key);
  tree.file('hash-sha256.txt', 'sha256 xattr\n');
  tree.hashLabel('hash-sha256.txt', 'sha256');
  tree.file('hash-sha1.txt', 'sha1 xattr\n');
  tree.hashLabel('hash-sha1.txt', 'sha1');
  tree.file('sig-sha512.txt', 'sha512 signature\n');
  tree.signLabel('sig-sha512.txt', key, 'sha512');
  tree.file('name with spaces.txt', 'spaces\n');
  tree.file('empty.txt', '');
  tree.file('big.bin', Buffer.alloc(1 << 20, 0x5a));
  tree.file(LONG_REL, 'long path\n');
  tree.file('reread.txt', 'read twice\n');
  tree.file('modified.txt', 'before\n');
  tree.file('tomtou.txt', 'tomtou\n');
  tree.file('open-writers.txt', 'open writers\n');
  tree.file('read-by-user.txt', 'only uid 1000 reads this\n', { mode: 0o644 });
  tree.file('bin/mmap-me', MMAP_ELF, { mode: 0o755 });
  tree.file('wtr.txt', 'first\n');
  const r = (path: string, label = path, uid = 0): Access => ({ op: 'read', path, uid, label });
  const workload: Access[] = [
    { op: 'exec', path: 'bin/true', label: 'exec-binary' },
    { op: 'exec', path: 'script.sh', label: 'exec-script' },
    { op: 'exec', path: 'signed.sh', label: 'exec-signed-script' },
    r('plain.txt'),
    r('owned-by-user.txt'),
    r('signed.txt'),
    r('hash-sha256.txt'),
    r('hash-sha1.txt'),
    r('sig-sha512.txt'),
    r('name with spaces.txt'),
    r('empty.txt'),
    r('big.bin'),
    r(LONG_REL, 'long-path'),
    r('reread.txt', 'reread-1'),
    r('reread.txt', 'reread-2'),
    r('modified.txt', 'modified-1'),
    { op: 'write', path: 'modified.txt', content: 'after\n', label: 'modify' },
    r('modified.txt', 'modified-2'),
    { op: 'tomtou', path: 'tomtou.txt', label: 'tomtou' },
    { op: 'open-writers', path: 'open-writers.txt', label: 'open-writers' },
    r('read-by-user.txt', 'read-by-user', 1000),
    // uid 1000: FILE_CHECK (tcb: euid=0/uid=0 only) does not measure the loader's open, so an entry
    // can only come from MMAP_CHECK (tcb: `measure func=MMAP_CHECK mask=MAY_EXEC`)
    { op: 'mmap-exec', path: 'bin/mmap-me', uid: 1000, label: 'mmap-exec-by-user' },
    r('wtr.txt', 'wtr-1'),
    { op: 'write-then-read', path: 'wtr.txt', content: 'second\n', label: 'write-then-read' },
  ];
  return { tree, key, workload, sigValue };
}

const sha = (algo: string, data: Uint8Array | string): string =>
  Buffer.from(hash(hashAlgoByName(algo), typeof data === 'string' ? Buffer.from(data) : data)).toString(
    'hex',
  );

/** Entries whose name is `/data/<rel>` (ima-ng style name fields). */
function entriesFor(entries: readonly ListEntry[], rel: string): ListEntry[] {
  const want = `/data/${rel}`.replace(/ /g, '_');
  return entries.filter((e) => fieldString(e.fields[1]) === want);
}

/**
 * The checks every measurement boot shares: imakit's verifyMeasurementList on every bank (quirks
 * only where the kernel needs them), imakit's boot_aggregate and event-log replay, evmctl and
 * tpm2_eventlog as tools we did not write, counters.
 */
async function assertListReplays(
  r: VmResult,
  banks: readonly PcrBank[],
  paddedBanks: readonly string[] = [],
): Promise<ListEntry[]> {
  const entries = parseList(r.binaryList);
  assert.equal(entries.length, r.measurementCount, 'runtime_measurements_count = entries in the binary list');
  assert.equal(
    r.asciiList.trim().split('\n').length,
    entries.length,
    'ascii and binary lists agree in length',
  );
  assert.deepEqual(
    templateDigestMismatches(entries),
    [],
    'listed SHA-1 template digests = SHA-1(template data)',
  );
  assert.equal(
    entries.filter((e) => e.digest.every((x) => x === 0)).length,
    r.violations,
    'violation entries',
  );
  const v = await verifyListWithLibrary(r, banks);
  assert.equal(v.status, 'pass', `imakit verifyMeasurementList: ${verdictDetail(v)}`);
  assert.equal(v.entries, r.measurementCount, 'library: entries');
  assert.equal(v.violations, r.violations, 'library: violations');
  assert.deepEqual(v.mismatches, [], 'library: template digests');
  assert.deepEqual(v.banks.map((b) => b.bank).sort(), [...banks].sort(), 'library replayed every bank');
  for (const b of v.banks) {
    assert.equal(b.pcrs.find((p) => p.pcr === 10)?.status, 'match', `library: PCR10 ${b.bank}`);
    assert.equal(b.mode === 'strict', !paddedBanks.includes(b.bank), `library: ${b.bank} mode ${b.mode}`);
  }
  if (paddedBanks.length > 0) assert.deepEqual(v.quirks, ['bank-hash-unavailable'], 'named quirk');
  else assert.deepEqual(v.quirks, []);
  for (const b of banks) {
    const pcrs = r.pcrs[b];
    assert.ok(pcrs !== undefined, `PCRs of bank ${b} captured`);
    // second path: the helper's own extend loop over imakit's template digests
    assert.equal(replayPcr(entries, b, 10, paddedBanks.includes(b)), pcrs[10], `PCR10 ${b} replays`);
  }
  const ba = bootAggregateWithLibrary(r, banks);
  assert.equal(ba.status, 'pass', `imakit boot_aggregate: ${ba.detail}`);
  assert.equal(ba.matched?.kernelDefault, true, ba.detail);
  const ev = evmctlReplay(
    r.outDir,
    banks.filter((b) => b === 'sha1' || b === 'sha256'),
  );
  assert.equal(ev.status, 0, `evmctl ima_measurement --ignore-violations: ${ev.out}`);
  // the TCG event log replays to the sysfs PCR0-7 (tpm2_eventlog)
  const tl = tpm2EventlogPcrs(join(r.outDir, 'binary_bios_measurements'));
  assert.equal(tl.status, 0, tl.text.slice(-500));
  for (const b of banks) {
    const logged = tl.pcrs[b];
    assert.ok(logged !== undefined, `event log has bank ${b}`);
    for (let i = 0; i < 8; i++) assert.equal(logged[i], r.pcrs[b]?.[i], `event log PCR${i} ${b}`);
  }
  const el = eventLogWithLibrary(r, banks, [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.equal(
    el.status,
    'pass',
    `imakit event log replay: ${JSON.stringify(el.results.filter((x) => x.status !== 'match'))}`,
  );
  assert.equal(el.results.length, banks.length * 8, 'every bank and PCR0-7 compared');
  return entries;
}

function record(scenario: string, r: VmResult, asserts: string): void {
  BOOT_TIMES.push({ scenario, bootMs: r.info.bootMs, totalMs: r.info.totalMs, asserts });
}

describe('real kernel: measurement (tcb policy)', { concurrency: 1 }, () => {
  let fx: Fixture;
  const outs: { cleanup: () => void }[] = [];
  before(() => {
    fx = buildTree();
  });
  after(() => {
    fx.tree.cleanup();
    for (const o of outs) o.cleanup();
    printBootTimes();
  });
  const boot = async (spec: VmSpec): Promise<VmResult> => {
    const o = tempDir('imakit-kernel-out-');
    outs.push(o);
    return runVm(spec, { kernelDir: KERNEL_DIR, outDir: o.dir, timeoutMs: BOOT_TIMEOUT_MS });
  };

  test('a+h: ima-ng, sha256, four PCR banks', async () => {
    const banks: PcrBank[] = ['sha1', 'sha256', 'sha384', 'sha512'];
    const spec: VmSpec = {
      append: ['ima_policy=tcb', 'ima_hash=sha256', 'ima_template=ima-ng'],
      files: fx.tree.dir,
      banks,
      workload: fx.workload,
    };
    const r = await boot(spec);
    // sha384/sha512 have no hash at IMA init: those banks get the zero-padded SHA-1 digest (§7)
    const entries = await assertListReplays(r, banks, ['sha384', 'sha512']);
    assert.match(r.dmesg, /ima: Can not allocate sha384/);
    assert.match(r.dmesg, /ima: Can not allocate sha512/);
    // boot_aggregate: sha256 over PCR0-9 of the sha256 bank (formats.md §2.1), = evmctl's
    const first = entries[0];
    assert.equal(fieldString(first?.fields[1]), 'boot_aggregate');
    const agg = digestField(first?.fields[0]);
    assert.equal(agg.algo, 'sha256');
    assert.equal(agg.hex, bootAggregate(r.pcrs.sha256 ?? [], 'sha256'));
    assert.equal(agg.hex, evmctlBootAggregate(r.outDir, ['sha256']).sha256);
    // measured digests = host hashes of the files imakit placed
    const d = (rel: string): { algo: string; hex: string }[] =>
      entriesFor(entries, rel).map((e) => digestField(e.fields[0]));
    assert.deepEqual(d('plain.txt'), [{ algo: 'sha256', hex: sha('sha256', 'plain\n') }]);
    assert.deepEqual(d('big.bin'), [{ algo: 'sha256', hex: sha('sha256', Buffer.alloc(1 << 20, 0x5a)) }]);
    assert.deepEqual(d('empty.txt'), [{ algo: 'sha256', hex: sha('sha256', '') }]);
    // the xattr's algorithm drives the measured hash; an unallocatable one gives no entry (§7)
    assert.deepEqual(d('hash-sha1.txt'), [{ algo: 'sha1', hex: sha('sha1', 'sha1 xattr\n') }]);
    assert.equal(d('sig-sha512.txt').length, 0, 'sha512-labelled file is not measured without the module');
    // spaces become underscores in the name field, ascii list too
    assert.equal(entriesFor(entries, 'name with spaces.txt').length, 1);
    assert.match(r.asciiList, /\/data\/name_with_spaces\.txt\n/);
    // a long path is recorded in full by ima-ng
    assert.equal(entriesFor(entries, LONG_REL).length, 1, 'long path measured under its full name');
    assert.ok(`/data/${LONG_REL}`.length > 255);
    // re-read unchanged: one entry; modified then re-read: two
    assert.equal(entriesFor(entries, 'reread.txt').length, 1);
    assert.deepEqual(d('modified.txt'), [
      { algo: 'sha256', hex: sha('sha256', 'before\n') },
      { algo: 'sha256', hex: sha('sha256', 'before\nafter\n') },
    ]);
    // root read of a uid-1000 file is measured; a read BY uid 1000 is not
    assert.equal(entriesFor(entries, 'owned-by-user.txt').length, 1);
    assert.equal(entriesFor(entries, 'read-by-user.txt').length, 0);
    assert.equal(r.accesses.find((a) => a.label === 'read-by-user')?.outcome, 'allowed');
    // exec of a binary and scripts is measured (BPRM_CHECK)
    for (const f of ['bin/true', 'script.sh', 'signed.sh']) assert.equal(entriesFor(entries, f).length, 1, f);
    // violations: ToMToU = measurement then violation; open-writers = violation then measurement
    assert.equal(r.violations, 2);
    const isViol = (e: ListEntry | undefined): boolean => e?.digest.every((x) => x === 0) === true;
    const tom = entriesFor(entries, 'tomtou.txt');
    assert.deepEqual(tom.map(isViol), [false, true], 'ToMToU: measurement, then violation');
    const ow = entriesFor(entries, 'open-writers.txt');
    assert.deepEqual(ow.map(isViol), [true, false], 'open-writers: violation, then measurement');
    assert.equal(digestField(tom[1]?.fields[0]).hex, '00'.repeat(32), 'violation d-ng digest is all zero');
    // mmap-exec by uid 1000: measured once, under MMAP_CHECK (FILE_CHECK does not cover uid 1000)
    const mm = r.accesses.find((a) => a.label === 'mmap-exec-by-user');
    assert.equal(mm?.outcome, 'allowed', mm?.stderr);
    assert.deepEqual(d('bin/mmap-me'), [{ algo: 'sha256', hex: sha('sha256', MMAP_ELF) }]);
    // write-then-read: the read after the append is measured again with the new content
    assert.equal(r.accesses.find((a) => a.label === 'write-then-read')?.outcome, 'allowed');
    assert.deepEqual(d('wtr.txt'), [
      { algo: 'sha256', hex: sha('sha256', 'first\n') },
      { algo: 'sha256', hex: sha('sha256', 'first\nsecond\n') },
    ]);
    record(
      'a+h ima-ng/sha256/4 banks',
      r,
      'imakit verify sha1/256/384/512 (quirk bank-hash-unavailable), boot_aggregate, event log; evmctl, tpm2_eventlog; names, violations, xattr-driven algo, mmap-exec (MMAP_CHECK), write-then-read',
    );
    saveFixture('measure-ima-ng-4banks', r, spec, {
      description:
        'tcb policy, ima-ng, ima_hash=sha256, swtpm banks sha1,sha256,sha384,sha512 (scenarios a+h)',
      asserts: [
        'PCR10 replays on all four banks (sha384/sha512 with the zero-padded SHA-1 digest)',
        'boot_aggregate = sha256(PCR0-9) = evmctl ima_boot_aggregate',
        'file digests, spaces->underscores, long path, re-read, modification, uid rules',
        'ToMToU and open-writers violation ordering',
      ],
    });
  });

  test('b: ima-sig carries the signature imakit wrote', async () => {
    const spec: VmSpec = {
      append: ['ima_policy=tcb', 'ima_hash=sha256', 'ima_template=ima-sig'],
      files: fx.tree.dir,
      banks: ['sha1', 'sha256'],
      workload: fx.workload,
    };
    const r = await boot(spec);
    const entries = await assertListReplays(r, ['sha1', 'sha256']);
    const signed = entriesFor(entries, 'signed.txt');
    assert.equal(signed.length, 1);
    assert.equal(
      signed[0]?.fields[2]?.toString('hex'),
      Buffer.from(fx.sigValue).toString('hex'),
      'sig field = security.ima',
    );
    assert.equal(entriesFor(entries, 'plain.txt')[0]?.fields[2]?.length, 0, 'no signature: empty sig field');
    assert.equal(
      entriesFor(entries, 'hash-sha256.txt')[0]?.fields[2]?.length,
      0,
      'a hash xattr is not a signature',
    );
    assert.equal(entriesFor(entries, 'signed.sh').length, 1);
    assert.match(r.asciiList, / \/data\/plain\.txt \n/, 'empty sig renders as a trailing space');
    record('b ima-sig', r, 'replay, evmctl, sig field = imakit signature, empty sig fields');
    saveFixture('measure-ima-sig', r, spec, {
      description: 'tcb policy, ima-sig, sha256 (scenario b)',
      asserts: ['replay', 'sig field equals the security.ima signature imakit wrote'],
    });
  });

  test('c: legacy ima template, sha1', async () => {
    const spec: VmSpec = {
      append: ['ima_policy=tcb', 'ima_hash=sha1', 'ima_template=ima'],
      files: fx.tree.dir,
      banks: ['sha1', 'sha256'],
      workload: fx.workload,
    };
    const r = await boot(spec);
    const entries = await assertListReplays(r, ['sha1', 'sha256']);
    assert.ok(entries.every((e) => e.template === 'ima'));
    const first = entries[0];
    assert.equal(first?.fields[1]?.toString('latin1'), 'boot_aggregate');
    assert.equal(
      first?.fields[0]?.toString('hex'),
      bootAggregate(r.pcrs.sha1 ?? [], 'sha1'),
      'sha1 over PCR0-7',
    );
    assert.equal(first?.fields[0]?.toString('hex'), evmctlBootAggregate(r.outDir, ['sha1']).sha1);
    const named = (n: string): ListEntry[] => entries.filter((e) => e.fields[1]?.toString('latin1') === n);
    assert.equal(named('/data/plain.txt')[0]?.fields[0]?.toString('hex'), sha('sha1', 'plain\n'));
    // the template does not read the xattr: the sha512-labelled file is measured with sha1
    assert.equal(
      named('/data/sig-sha512.txt')[0]?.fields[0]?.toString('hex'),
      sha('sha1', 'sha512 signature\n'),
    );
    // a path over 255 bytes is replaced by its last component (§7)
    assert.equal(named(LONG_NAME).length, 1, 'long path recorded as the last component');
    assert.equal(named('/data/name_with_spaces.txt').length, 1);
    record(
      'c ima/sha1',
      r,
      'replay, evmctl, sha1 boot_aggregate PCR0-7, long path -> last component, xattr ignored',
    );
    saveFixture('measure-ima-legacy-sha1', r, spec, {
      description: 'tcb policy, legacy ima template, ima_hash=sha1 (scenario c)',
      asserts: ['replay', 'boot_aggregate sha1(PCR0-7)', 'long path replaced by its last component'],
    });
  });

  test('g: custom ima_template_fmt', async () => {
    const fmt = 'd-ng|n-ng|sig|iuid|igid|imode|xattrnames|xattrlengths|xattrvalues';
    const spec: VmSpec = {
      append: ['ima_policy=tcb', 'ima_hash=sha256', `ima_template_fmt=${fmt}`],
      files: fx.tree.dir,
      banks: ['sha1', 'sha256'],
      workload: fx.workload,
    };
    const r = await boot(spec);
    const entries = await assertListReplays(r, ['sha1', 'sha256']);
    const e = entriesFor(entries, 'owned-by-user.txt')[0];
    assert.ok(e !== undefined);
    assert.equal(e.template, fmt, 'the binary list names the format string');
    assert.equal(e.fields.length, 9);
    assert.equal(e.fields[3]?.readUInt32LE(0), 1000, 'iuid');
    assert.equal(e.fields[4]?.readUInt32LE(0), 1000, 'igid');
    assert.equal(e.fields[5]?.readUInt16LE(0), 0o100644, 'imode');
    const s = entriesFor(entries, 'signed.txt')[0];
    assert.equal(fieldString(s?.fields[6]), 'security.ima', 'xattrnames');
    assert.equal(s?.fields[7]?.readUInt32LE(0), Buffer.from(fx.sigValue).length, 'xattrlengths');
    assert.equal(s?.fields[8]?.toString('hex'), Buffer.from(fx.sigValue).toString('hex'), 'xattrvalues');
    assert.ok(r.asciiList.includes(` ${fmt} `), 'ascii list shows the format string as template name');
    record('g custom fmt', r, 'replay, evmctl, iuid/igid/imode/xattr fields');
    saveFixture('measure-custom-template', r, spec, {
      description: `tcb policy, ima_template_fmt=${fmt} (scenario g)`,
      asserts: ['replay', 'template name = format string', 'iuid/igid/imode/xattrnames/lengths/values'],
    });
  });
});
