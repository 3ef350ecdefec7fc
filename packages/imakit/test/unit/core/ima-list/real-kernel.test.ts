/**
 * Real-kernel fixtures (captured under QEMU + swtpm by the `imakit vm` harness into
 * test/fixtures/kernel/<scenario>/ with a manifest.json): every measurement list replays to its
 * captured PCRs in every bank (sha384/sha512 through the padded-SHA-1 quirks), the ascii list
 * agrees with the binary one entry by entry, every event log replays to the captured PCRs 0-7
 * (and 9 under OVMF) and agrees with tpm2_eventlog, and every boot_aggregate matches, from the
 * captured PCRs and from the event log.
 *
 * When the fixtures directory exists, every scenario in it must pass (a scenario that does not
 * match FAILS). When there are no fixtures at all, the test is reported as skipped, not passed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES_DIR } from '../../../helpers.ts';
import { tpm2Eventlog } from '../tcg/tpm2-eventlog.ts';
import { parseEvmctlPcrs } from '../../../../src/core/tcg/pcr-values.ts';
import { bytesSource, verifyMeasurementList } from '../../../../src/core/ima-list/verify.ts';
import { parseBinaryList, detectListFormat } from '../../../../src/core/ima-list/binary.ts';
import { crossCheckAsciiBinary, parseAsciiList } from '../../../../src/core/ima-list/ascii.ts';
import { checkBootAggregate, findBootAggregateClaims } from '../../../../src/core/tcg/boot-aggregate.ts';
import { encodeEventLog, parseEventLog } from '../../../../src/core/tcg/event-log.ts';
import { compareEventLogPcrs, replayEventLog } from '../../../../src/core/tcg/replay.ts';
import { toHex } from '../../../../src/core/bytes/bytes.ts';

const KERNEL_FIXTURES = join(FIXTURES_DIR, 'kernel');

interface Manifest {
  scenario: string;
  firmware?: string;
  banks?: string[];
}

function scenarios(): string[] {
  if (!existsSync(KERNEL_FIXTURES)) return [];
  return readdirSync(KERNEL_FIXTURES)
    .filter((d) => existsSync(join(KERNEL_FIXTURES, d, 'manifest.json')))
    .sort();
}

function capturedPcrs(dir: string): Map<string, Map<number, Uint8Array>> {
  const out = new Map<string, Map<number, Uint8Array>>();
  for (const f of readdirSync(dir)) {
    const m = /^pcrs-([a-z0-9]+)\.txt$/.exec(f);
    if (m) out.set(m[1]!, parseEvmctlPcrs(readFileSync(join(dir, f), 'utf8'), m[1]!));
  }
  return out;
}

const list = scenarios();

test('real-kernel fixtures are present', (t) => {
  if (list.length === 0) {
    t.skip('no fixtures: test/fixtures/kernel/<scenario>/manifest.json not captured yet');
    return;
  }
  // each scenario directory holds what the replay tests below read
  for (const name of list) {
    const dir = join(KERNEL_FIXTURES, name);
    assert.ok(existsSync(join(dir, 'binary_runtime_measurements')), `${name}: binary list`);
    assert.ok(capturedPcrs(dir).size > 0, `${name}: captured PCR files`);
  }
});

for (const name of list) {
  const dir = join(KERNEL_FIXTURES, name);
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest;
  const pcrs = capturedPcrs(dir);

  test(`${name}: the measurement list replays to the captured PCRs in every bank`, async () => {
    assert.ok(pcrs.size > 0, 'captured PCR files');
    for (const b of manifest.banks ?? []) assert.ok(pcrs.has(b), `captured PCRs for bank ${b}`);
    const bytes = new Uint8Array(readFileSync(join(dir, 'binary_runtime_measurements')));
    const v = await verifyMeasurementList(bytesSource(bytes), { expected: pcrs });
    assert.equal(v.status, 'pass', `${v.detail}\n${v.diagnosis.map((d) => d.detail).join('\n')}`);
    assert.equal(v.mismatches.length, 0);
    const banks = [...pcrs.keys()];
    assert.deepEqual(v.banks.map((b) => b.bank).sort(), banks.sort());
    for (const b of v.banks) {
      const p10 = b.pcrs.find((p) => p.pcr === 10);
      assert.ok(p10, `${b.bank}: PCR 10 replayed`);
      assert.equal(p10.status, 'match', `${b.bank} PCR 10 (${b.mode})`);
      // sha1/sha256 always replay strictly on these kernels; only banks without a usable hash need a quirk
      if (b.bank === 'sha1' || b.bank === 'sha256') assert.equal(b.mode, 'strict', b.bank);
    }
    const count = Number(readFileSync(join(dir, 'runtime_measurements_count'), 'utf8').trim());
    assert.equal(v.entries, count, 'entries = runtime_measurements_count');
    const violations = Number(readFileSync(join(dir, 'violations'), 'utf8').trim());
    assert.equal(v.violations, violations, 'violations = securityfs violations');
  });

  test(`${name}: the ascii list agrees with the binary list entry by entry`, () => {
    const bytes = new Uint8Array(readFileSync(join(dir, 'binary_runtime_measurements')));
    const fmt = detectListFormat(bytes).format;
    const ascii = parseAsciiList(readFileSync(join(dir, 'ascii_runtime_measurements'), 'latin1'), fmt.endian);
    assert.deepEqual(crossCheckAsciiBinary(ascii, parseBinaryList(bytes, fmt), fmt.endian), []);
  });

  test(`${name}: the event log replays to the captured PCRs and agrees with tpm2_eventlog`, () => {
    const path = join(dir, 'binary_bios_measurements');
    const bytes = new Uint8Array(readFileSync(path));
    const log = parseEventLog(bytes);
    assert.deepEqual(encodeEventLog(log), bytes, 'parse∘encode is the identity');
    const r = replayEventLog(log);
    assert.deepEqual(r.dataMismatches, [], 'covered event data hashes to its digests');
    const indexes = manifest.firmware === 'ovmf' ? [0, 1, 2, 3, 4, 5, 6, 7, 9] : [0, 1, 2, 3, 4, 5, 6, 7];
    const cmp = compareEventLogPcrs(r, pcrs, indexes);
    assert.equal(cmp.status, 'pass', JSON.stringify(cmp.results.filter((x) => x.status !== 'match')));
    const logBanks = log.specAlgorithms.map((a) => a.bank!).filter((b) => pcrs.has(b));
    assert.equal(cmp.results.length, logBanks.length * indexes.length, 'every bank and PCR compared');
    const t2 = tpm2Eventlog(path);
    assert.equal(t2.status, 0, t2.stderr);
    assert.equal(t2.events.length, log.events.length + 1, 'tpm2_eventlog counts the Spec ID header');
    for (const e of log.events) {
      const o = t2.events[e.index]!;
      assert.equal(o.pcr, e.pcr, `event ${e.index} pcr`);
      for (const [bank, d] of e.digests)
        assert.equal(o.digests.get(bank), toHex(d), `event ${e.index} ${bank}`);
    }
    for (const [bank, m] of t2.pcrs)
      for (const [i, hex] of m)
        assert.equal(toHex(r.pcrs.get(bank)!.get(i)!), hex, `tpm2_eventlog ${bank} PCR ${i}`);
  });

  test(`${name}: boot_aggregate matches the captured PCRs and the event log replay`, () => {
    const bytes = new Uint8Array(readFileSync(join(dir, 'binary_runtime_measurements')));
    const fmt = detectListFormat(bytes).format;
    const claim = findBootAggregateClaims(parseBinaryList(bytes, fmt), fmt.endian).at(-1);
    assert.ok(claim, 'the list has a boot_aggregate entry');
    const fromPcrs = checkBootAggregate(claim, pcrs);
    assert.equal(fromPcrs.status, 'pass', fromPcrs.detail);
    const replay = replayEventLog(
      parseEventLog(new Uint8Array(readFileSync(join(dir, 'binary_bios_measurements')))),
    );
    const fromLog = checkBootAggregate(claim, replay.pcrs);
    assert.equal(fromLog.status, 'pass', fromLog.detail);
    assert.equal(fromLog.matched?.bank, fromPcrs.matched?.bank);
    assert.equal(fromLog.matched?.variant, fromPcrs.matched?.variant);
  });
}
