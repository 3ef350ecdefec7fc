/**
 * `imakit log verify LIST --quote DIR --ak AK --nonce N` against swtpm: a real kernel's measurement
 * list (test/fixtures/kernel/measure-ima-ng-4banks) is replayed into swtpm's PCR 10 with PCR_Extend
 * (sha1: the listed template hash; sha256: node:crypto's SHA-256 of the template data; violations
 * 0xff..), the swtpm PCR checked against the value the real kernel's TPM had, quoted with
 * `imakit tpm quote`, and verified together with the list: the whole list (exit 0), the list with
 * entries appended after the quote (exit 0, covered prefix named), a tampered entry (exit 1,
 * entry named), a quote without PCR 10 (exit 1, reason), a wrong nonce (exit 1, the list is not
 * replayed).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../../src/cli/main.ts';
import { memoryIo } from '../../../src/cli/io.ts';
import { TpmClient } from '../../../src/host/tpm/client.ts';
import { TPM_ALG } from '../../../src/core/tpm/constants.ts';
import { detectListFormat, parseBinaryList } from '../../../src/core/ima-list/binary.ts';
import { manufactureTpm, startTestTpm, type TestTpm, type TestTpmState } from '../tpm-helpers.ts';

const FIXTURE = join(import.meta.dirname, '../../fixtures/kernel/measure-ima-ng-4banks');

let shared: { dir: string; state: TestTpmState };
before(() => {
  const dir = mkdtempSync(join(tmpdir(), 'imakit-tpm-state-'));
  shared = { dir, state: manufactureTpm(dir) };
});
after(() => rmSync(shared.dir, { recursive: true, force: true }));

async function cli(...argv: string[]): Promise<{ status: number; out: string; err: string }> {
  const io = memoryIo();
  const status = await main(argv, io);
  return { status, out: io.out(), err: io.err() };
}

/** Extend every entry of `list` into PCR 10 (sha1 and sha256 banks) as the kernel does. */
async function replayIntoTpm(t: TestTpm, list: Uint8Array): Promise<void> {
  const entries = parseBinaryList(list, detectListFormat(list.subarray(0, 65536)).format);
  const c = await TpmClient.open(t.selector);
  try {
    for (const e of entries) {
      const violation = e.digest.every((b) => b === 0);
      const sha1 = violation ? new Uint8Array(20).fill(0xff) : e.digest;
      const sha256 = violation
        ? new Uint8Array(32).fill(0xff)
        : new Uint8Array(createHash('sha256').update(e.templateData).digest());
      await c.pcrExtend(10, [
        { hashAlg: TPM_ALG.SHA1, digest: sha1 },
        { hashAlg: TPM_ALG.SHA256, digest: sha256 },
      ]);
    }
  } finally {
    await c.close();
  }
}

interface Setup {
  t: TestTpm;
  list: Uint8Array;
  listFile: string;
  ak: string;
  nonce: string;
}

async function withQuotedList(fn: (s: Setup) => Promise<void>): Promise<void> {
  const t = await startTestTpm({ fromState: shared.state });
  try {
    const list = new Uint8Array(readFileSync(join(FIXTURE, 'binary_runtime_measurements')));
    await replayIntoTpm(t, list);
    // the replayed PCR is the one the real kernel's TPM had (fixture pcrs-sha256.txt, from the VM)
    const kernelPcr10 = /PCR-10: ([0-9A-F]+)/.exec(
      readFileSync(join(FIXTURE, 'pcrs-sha256.txt'), 'utf8'),
    )![1]!;
    const read = await cli('tpm', 'pcrread', 'sha256:10', '--tpm', t.selector);
    assert.equal(read.status, 0, read.err);
    assert.match(read.out, new RegExp(`sha256:10 ${kernelPcr10.toLowerCase()}`));
    const ak = join(t.dir, 'ak');
    const mk = await cli('tpm', 'ak', 'create', '--out', ak, '--tpm', t.selector);
    assert.equal(mk.status, 0, mk.err);
    const listFile = join(t.dir, 'list.bin');
    writeFileSync(listFile, list);
    await fn({ t, list, listFile, ak, nonce: '0123456789abcdef0123456789abcdef' });
  } finally {
    t.stop();
  }
}

async function quote(s: Setup, pcrs: string, out: string): Promise<string> {
  const dir = join(s.t.dir, out);
  const q = await cli(
    'tpm',
    'quote',
    '--ak',
    s.ak,
    '--nonce',
    s.nonce,
    '--pcrs',
    pcrs,
    '--out',
    dir,
    '--tpm',
    s.t.selector,
  );
  assert.equal(q.status, 0, q.err);
  return dir;
}

interface Report {
  status: string;
  failures: { code: string; detail: string }[];
  pcr10: { bank: string; status: string; coveredEntries?: number }[];
  covered?: { entries: number; bytes: number; ofEntries: number; ofBytes: number };
  notEstablished: string[];
  list?: { verdict?: { diagnosis: { kind: string; entry?: number }[]; entries: number } };
}

async function verify(
  file: string,
  q: string,
  s: Setup,
  ...extra: string[]
): Promise<{ status: number; r: Report; err: string }> {
  const v = await cli(
    'log',
    'verify',
    file,
    '--quote',
    q,
    '--ak',
    s.ak,
    '--nonce',
    s.nonce,
    '--json',
    ...extra,
  );
  return { status: v.status, r: JSON.parse(v.out || '{}') as Report, err: v.err };
}

test('a real kernel list replayed into swtpm, quoted (sha1+sha256 PCR 10): list and quote verify together', async () => {
  await withQuotedList(async (s) => {
    const q = await quote(s, 'sha1:10+sha256:10', 'q');
    const { status, r, err } = await verify(s.listFile, q, s);
    assert.equal(status, 0, err + JSON.stringify(r.failures));
    assert.equal(r.status, 'pass');
    assert.deepEqual(
      r.pcr10.map((p) => [p.bank, p.status, p.coveredEntries]),
      [
        ['sha1', 'match', 20],
        ['sha256', 'match', 20],
      ],
    );
    assert.deepEqual(r.covered, { entries: 20, bytes: s.list.length, ofEntries: 20, ofBytes: s.list.length });
    assert.ok(
      !r.notEstablished.some((n) => /PCR values came from a TPM/.test(n)),
      r.notEstablished.join('\n'),
    );
    assert.ok(r.notEstablished.some((n) => /genuine TPM/.test(n))); // the AK itself is not vouched for
    // text output names the quote and the covered list
    const text = await cli(
      'log',
      'verify',
      s.listFile,
      '--quote',
      q,
      '--ak',
      join(s.ak, 'ak.pub'),
      '--nonce',
      s.nonce,
    );
    assert.equal(text.status, 0, text.err);
    assert.match(text.out, /PASS {2}quote/);
    assert.match(text.out, /covers the whole list: 20 entries/);
  });
});

test('entries appended after the quote: passes at the covered prefix, named by entries and bytes', async () => {
  await withQuotedList(async (s) => {
    const q = await quote(s, 'sha256:10', 'q');
    // the kernel goes on measuring: entries 1..3 again (same bytes, new positions)
    const entries = parseBinaryList(s.list, detectListFormat(s.list).format);
    const more = s.list.subarray(entries[1]!.offset, entries[4]!.offset);
    const longer = join(s.t.dir, 'longer.bin');
    writeFileSync(longer, Buffer.concat([s.list, more]));
    const { status, r, err } = await verify(longer, q, s);
    assert.equal(status, 0, err + JSON.stringify(r.failures));
    assert.deepEqual(
      r.pcr10.map((p) => [p.bank, p.status, p.coveredEntries]),
      [['sha256', 'prefix', 20]],
    );
    assert.deepEqual(r.covered, {
      entries: 20,
      bytes: s.list.length,
      ofEntries: 23,
      ofBytes: s.list.length + more.length,
    });
    assert.ok(
      r.notEstablished.some((n) => /entries 20\.\.22/.test(n)),
      r.notEstablished.join('\n'),
    );
  });
});

test('a tampered entry fails (exit 1) and is named', async () => {
  await withQuotedList(async (s) => {
    const q = await quote(s, 'sha1:10+sha256:10', 'q');
    const entries = parseBinaryList(s.list, detectListFormat(s.list).format);
    const bad = s.list.slice();
    // the last byte of entry 5's template data (its file name): the listed digest no longer matches
    const e5 = entries[5]!;
    const pos = entries[6]!.offset - 1;
    bad[pos]! ^= 0x01;
    const file = join(s.t.dir, 'bad.bin');
    writeFileSync(file, bad);
    const { status, r } = await verify(file, q, s);
    assert.equal(status, 1);
    assert.equal(r.status, 'fail');
    assert.ok(
      r.failures.some((f) => f.code === 'list'),
      JSON.stringify(r.failures),
    );
    const named = r.list?.verdict?.diagnosis.filter((d) => d.entry === e5.index) ?? [];
    assert.ok(named.length > 0, JSON.stringify(r.list?.verdict?.diagnosis));
  });
});

test('a quote without PCR 10 fails with the reason; a wrong nonce fails before any replay', async () => {
  await withQuotedList(async (s) => {
    const q = await quote(s, 'sha256:0-7', 'q');
    const { status, r } = await verify(s.listFile, q, s);
    assert.equal(status, 1);
    assert.deepEqual(
      r.failures.map((f) => f.code),
      ['pcr10-not-quoted'],
    );
    assert.match(
      r.failures[0]!.detail,
      /PCR 10 is not in the quote's signed selection \(sha256:0,1,2,3,4,5,6,7\)/,
    );
    assert.ok(r.notEstablished.some((n) => /PCR values came from a TPM/.test(n)));
    const q10 = await quote(s, 'sha256:10', 'q10');
    const wrong = await cli(
      'log',
      'verify',
      s.listFile,
      '--quote',
      q10,
      '--ak',
      s.ak,
      '--nonce',
      '00',
      '--json',
    );
    assert.equal(wrong.status, 1);
    const w = JSON.parse(wrong.out) as Report & { quote: { code: string } };
    assert.equal(w.quote.code, 'nonce-mismatch');
    assert.equal(w.list, undefined);
    // misuse: --pcrs with --quote, --quote without a nonce
    assert.equal((await cli('log', 'verify', s.listFile, '--quote', q10, '--ak', s.ak)).status, 2);
    assert.equal(
      (
        await cli(
          'log',
          'verify',
          s.listFile,
          '--quote',
          q10,
          '--ak',
          s.ak,
          '--nonce',
          s.nonce,
          '--pcrs',
          'x',
        )
      ).status,
      2,
    );
  });
});
