/**
 * Measured-boot references (core/tcg/boot-reference.ts) against a real firmware log: the OVMF
 * boot of test/fixtures/kernel/ovmf-uefi (24 events, sha1 + sha256). A golden log, PCR values and
 * a Keylime refstate made from that log pass; one changed event, value or digest fails naming the
 * PCR, the event index, its type and digest.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  bootReferenceForm,
  compareBootReference,
  decodeBootReference,
  parseEventLog,
  replayEventLog,
  toHex,
  type BootReference,
} from '../../../../src/core/index.ts';
import { ImakitError } from '../../../../src/errors.ts';
import { FIXTURES_DIR, VECTORS_DIR } from '../../../helpers.ts';
import { grubBoot } from './grub-boot-log.ts';

const LOG = new Uint8Array(readFileSync(join(FIXTURES_DIR, 'kernel/ovmf-uefi/binary_bios_measurements')));
const parsed = parseEventLog(LOG);
const replayed = replayEventLog(parsed).pcrs;
/** every PCR 0-9 quoted, as a verified quote of this boot would give them */
const ALL_QUOTED = new Map([...replayed].map(([b, m]) => [b, new Map([...m].filter(([i]) => i <= 9))]));
const enc = (s: string) => new TextEncoder().encode(s);

/** The log with one byte of event `index`'s sha256 digest changed (a different EFI application). */
function withChangedDigest(index: number): Uint8Array {
  const e = parsed.events.find((x) => x.index === index)!;
  const d = e.digests.get('sha256')!;
  const out = LOG.slice();
  const at = Buffer.from(out).indexOf(Buffer.from(d), e.offset);
  assert.ok(at > 0);
  out[at] = out[at]! ^ 0xff;
  return out;
}

test('form detection: binary log, PCR lines, Keylime refstate JSON', () => {
  assert.equal(bootReferenceForm(LOG), 'eventlog');
  assert.equal(bootReferenceForm(enc('# golden\nsha256:0=00')), 'pcrs');
  assert.equal(bootReferenceForm(enc('  {"scrtm_and_bios": []}')), 'keylime-mb-refstate');
});

test('golden log: the same log passes; a changed application digest fails naming event, type, digest, PCR', () => {
  const ref = decodeBootReference(LOG);
  assert.equal(ref.form, 'eventlog');
  const ok = compareBootReference(ref, { log: parsed, quoted: ALL_QUOTED });
  assert.equal(ok.status, 'pass', JSON.stringify(ok.mismatches));
  assert.ok(ok.checked.some((c) => c.startsWith('PCR 4')));

  const changed = parseEventLog(withChangedDigest(10));
  const r = compareBootReference(ref, { log: changed, quoted: ALL_QUOTED });
  assert.equal(r.status, 'fail');
  assert.equal(r.mismatches.length, 1, 'only PCR 4 differs');
  const m = r.mismatches[0]!;
  assert.equal(m.code, 'boot-event-differs');
  assert.equal(m.pcr, 4);
  assert.equal(m.bank, 'sha256');
  assert.equal(m.event?.index, 10);
  assert.equal(m.event?.type, 'EV_EFI_BOOT_SERVICES_APPLICATION');
  assert.equal(m.event?.digest, toHex(changed.events.find((e) => e.index === 10)!.digests.get('sha256')!));
  assert.deepEqual(m.expected, {
    goldenIndex: 10,
    type: 'EV_EFI_BOOT_SERVICES_APPLICATION',
    digest: '12ceb966d9668e1eb23093d43cabc53034d307d3f1a82485902c69794caf40f0',
  });
  assert.match(m.fix, /golden log/);
});

test('golden log: an extra and a missing event are named; a PCR the quote omits is not compared', () => {
  const ref = decodeBootReference(LOG);
  // the agent's log without PCR 9's two events: the golden log has them
  const short: typeof parsed = { ...parsed, events: parsed.events.filter((e) => e.pcr !== 9) };
  let r = compareBootReference(ref, { log: short, quoted: ALL_QUOTED });
  assert.equal(r.mismatches[0]!.code, 'boot-event-missing');
  assert.equal(r.mismatches[0]!.pcr, 9);
  assert.match(r.mismatches[0]!.message, /#21 \(EV_EVENT_TAG\) is missing/);
  // the golden log is the short one: the agent's PCR 9 events are extra
  r = compareBootReference({ form: 'eventlog', log: short }, { log: parsed, quoted: ALL_QUOTED });
  assert.equal(r.mismatches[0]!.code, 'boot-event-extra');
  assert.equal(r.mismatches[0]!.event?.index, 21);
  // requirePcrs without 8-9: the reference's PCR 9 events cannot be proven
  const q07 = new Map([...ALL_QUOTED].map(([b, m]) => [b, new Map([...m].filter(([i]) => i <= 7))]));
  r = compareBootReference(ref, { log: parsed, quoted: q07 });
  assert.equal(r.status, 'fail');
  assert.deepEqual(
    r.mismatches.map((x) => [x.code, x.pcr]),
    [['boot-pcr-not-quoted', 9]],
  );
  assert.match(r.mismatches[0]!.fix, /requirePcrs/);
});

test('PCR values: equal passes; a different value names the PCR and its last event; unquoted refused', () => {
  const text = [
    '# OVMF reference',
    `sha256:0=${toHex(replayed.get('sha256')!.get(0)!)}`,
    `sha256:4=${toHex(replayed.get('sha256')!.get(4)!)}`,
  ].join('\n');
  const ref = decodeBootReference(enc(text));
  assert.equal(compareBootReference(ref, { quoted: ALL_QUOTED }).status, 'pass');
  const other = new Map([...ALL_QUOTED].map(([b, m]) => [b, new Map(m)]));
  other.get('sha256')!.set(4, new Uint8Array(32).fill(7));
  const r = compareBootReference(ref, { log: parsed, quoted: other });
  assert.equal(r.status, 'fail');
  assert.equal(r.mismatches[0]!.code, 'boot-pcr-differs');
  assert.equal(r.mismatches[0]!.pcr, 4);
  assert.equal(r.mismatches[0]!.actual, '07'.repeat(32));
  assert.equal(r.mismatches[0]!.event?.index, 18, 'the last PCR 4 event is the separator, #18');
  const r2 = compareBootReference(ref, {
    quoted: new Map([['sha256', new Map([[0, replayed.get('sha256')!.get(0)!]])]]),
  });
  assert.equal(r2.mismatches[0]!.code, 'boot-pcr-not-quoted');
});

/** PCRs 0-9 as a verified quote of `log`'s boot gives them. */
function quotedOf(log: Uint8Array) {
  const r = replayEventLog(parseEventLog(log)).pcrs;
  return new Map([...r].map(([b, m]) => [b, new Map([...m].filter(([i]) => i <= 9))]));
}

test("Keylime refstate: the same verdicts as Keylime 7.14's example policy, naming the event it names", () => {
  const recorded = JSON.parse(
    readFileSync(join(VECTORS_DIR, 'keylime/mb-refstate-verdicts.json'), 'utf8'),
  ) as {
    cases: {
      name: string;
      log: 'ovmf-uefi' | 'grub-synthetic';
      refstate: unknown;
      keylime: { verdict: 'pass' | 'fail'; eventNum?: number; reason?: string };
    }[];
  };
  const grub = grubBoot();
  // the generator still makes the log the recorded refstates describe
  assert.deepEqual(JSON.parse(grub.refstate), recorded.cases.find((c) => c.name === 'grub')!.refstate);
  assert.equal(recorded.cases.length, 6);
  for (const c of recorded.cases) {
    const log = c.log === 'ovmf-uefi' ? LOG : grub.log;
    const r = compareBootReference(decodeBootReference(enc(JSON.stringify(c.refstate))), {
      log: parseEventLog(log),
      quoted: quotedOf(log),
    });
    assert.equal(r.status, c.keylime.verdict, `${c.name}: ${JSON.stringify(r.mismatches[0])}`);
    if (c.keylime.eventNum !== undefined)
      assert.equal(r.mismatches[0]!.event?.index, c.keylime.eventNum, c.name);
  }
});

/** The parts of a refstate the cases below change. */
interface RefstateJson {
  scrtm_and_bios: { platform_firmware: { sha256: string }[] }[];
  kernels: Record<string, string>[];
  pk: { SignatureOwner: string; SignatureData: string }[];
}

test('Keylime refstate: what each failure names', () => {
  const { log, refstate } = grubBoot();
  const parsed = parseEventLog(log);
  const run = (change: (rs: RefstateJson) => void) => {
    const rs = JSON.parse(refstate) as RefstateJson;
    change(rs);
    return compareBootReference(decodeBootReference(enc(JSON.stringify(rs))), {
      log: parsed,
      quoted: quotedOf(log),
    });
  };
  let r = run(() => undefined);
  assert.equal(r.status, 'pass', JSON.stringify(r.mismatches));
  for (const rule of ['has_secureboot', 'scrtm_and_bios', 'kernels'])
    assert.ok(r.checked.includes(rule), rule);

  r = run((rs) => (rs.scrtm_and_bios[0]!.platform_firmware[1]!.sha256 = `0x${'11'.repeat(32)}`));
  assert.equal(r.mismatches[0]!.code, 'boot-refstate-mismatch');
  assert.equal(r.mismatches[0]!.pcr, 0);
  assert.equal(r.mismatches[0]!.event?.index, 3);
  assert.equal(r.mismatches[0]!.event?.type, 'EV_EFI_PLATFORM_FIRMWARE_BLOB');

  r = run((rs) => (rs.kernels[0]!.grub_authcode_sha256 = `0x${'22'.repeat(32)}`));
  assert.equal(r.mismatches[0]!.pcr, 4);
  assert.equal(r.mismatches[0]!.event?.index, 11, 'the second application (grub)');
  assert.match(r.mismatches[0]!.message, /boot application #1/);

  r = run((rs) => (rs.kernels[0]!.initrd_plain_sha256 = `0x${'33'.repeat(32)}`));
  assert.equal(r.mismatches[0]!.pcr, 9);
  assert.match(r.mismatches[0]!.message, /initrd/);

  r = run(
    (rs) => (rs.pk = [{ SignatureOwner: '61dfe48b-ca93-d211-aa0d-00e098032b8c', SignatureData: '0x3082' }]),
  );
  assert.equal(r.mismatches[0]!.event?.index, 5, 'the (empty) PK variable event');
  assert.match(r.mismatches[0]!.message, /PK does not contain/);

  // the PCRs the quote omits are not judged: refused
  const q07 = new Map([...quotedOf(log)].map(([b, m]) => [b, new Map([...m].filter(([i]) => i <= 7))]));
  r = compareBootReference(decodeBootReference(enc(refstate)), { log: parsed, quoted: q07 });
  assert.deepEqual(
    r.mismatches.filter((m) => m.code === 'boot-pcr-not-quoted').map((m) => m.pcr),
    [8, 9],
  );
});

test('an event-log or refstate reference with no log sent fails saying so', () => {
  const r = compareBootReference(decodeBootReference(LOG), { quoted: ALL_QUOTED });
  assert.equal(r.status, 'fail');
  assert.match(r.mismatches[0]!.fix, /send the TCG event log/);
});

test('bad references: E_BOOTREF_FORMAT naming the line or field; a broken log is a codec error', () => {
  const code = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      assert.ok(e instanceof ImakitError);
      return [e.code, e.context.field];
    }
    assert.fail('no error');
  };
  assert.deepEqual(
    code(() => decodeBootReference(enc('sha256:0=00\nsha256:1=zz'))),
    ['E_BOOTREF_FORMAT', 'line 1'],
  );
  assert.deepEqual(
    code(() => decodeBootReference(enc(`sha256:0=${'00'.repeat(32)}\nsha256:24=${'00'.repeat(32)}`))),
    ['E_BOOTREF_FORMAT', 'line 2'],
  );
  assert.deepEqual(
    code(() => decodeBootReference(enc(`sha1:3=${'00'.repeat(20)}\nsha1:3=${'00'.repeat(20)}`))),
    ['E_BOOTREF_FORMAT', 'line 2'],
  );
  // Keylime's required kernel fields: with Secure Boot the kernel's Authenticode digest
  assert.deepEqual(
    code(() =>
      decodeBootReference(
        enc(
          JSON.stringify({
            scrtm_and_bios: [],
            kernels: [
              {
                shim_authcode_sha256: '0x00',
                grub_authcode_sha256: '0x00',
                initrd_plain_sha256: '0x00',
                kernel_cmdline: '',
              },
            ],
          }),
        ),
      ),
    ),
    ['E_BOOTREF_FORMAT', 'kernels[0].kernel_authcode_sha256'],
  );
  assert.deepEqual(
    code(() => decodeBootReference(enc('{"kernels": []}'))),
    ['E_BOOTREF_FORMAT', 'scrtm_and_bios'],
  );
  assert.deepEqual(
    code(() => decodeBootReference(enc('{"scrtm_and_bios": [{"scrtm": {"sha256": "xyz"}}]}'))),
    ['E_BOOTREF_FORMAT', 'scrtm_and_bios[0].scrtm.sha256'],
  );
  assert.deepEqual(
    code(() =>
      decodeBootReference(
        enc(
          '{"scrtm_and_bios": [], "kernels": [{"shim_authcode_sha256": "0x00", "grub_authcode_sha256": "0x00"}]}',
        ),
      ),
    ),
    ['E_BOOTREF_FORMAT', 'kernels[0].kernel_cmdline'],
  );
  const [c] = code(() => decodeBootReference(LOG.subarray(0, 100)))!;
  assert.match(String(c), /^E_CODEC_/);
  assert.throws(() => decodeBootReference('x' as unknown as Uint8Array), TypeError);
  assert.throws(() => compareBootReference(decodeBootReference(LOG), {} as never), TypeError);
  const ref: BootReference = decodeBootReference(LOG);
  assert.ok(Object.isFrozen(ref));
});
