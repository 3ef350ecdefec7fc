/**
 * `imakit evmctl` exit statuses where they diverged from evmctl (issue 10 item 8), each run beside
 * Debian's evmctl 1.4 with the same arguments (1.6.2's source agrees on every case here: an
 * unopenable list or no PCRs for ima_boot_aggregate is -1 -> 125, a key import_key cannot parse 1,
 * unreadable --pcrs files for ima_measurement are "Failed to read any TPM PCRs" and the template
 * digests alone decide). And ima_boot_aggregate on a crypto-agile log prints every bank (evmctl
 * reads TPM 1.2 logs only), so the sha256 value in a real kernel's list is there.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { main } from '../../../src/cli/main.ts';
import { memoryIo } from '../../../src/cli/io.ts';
import { FIXTURES_DIR, run, vectorPath } from '../../helpers.ts';

async function imakit(args: string[]) {
  const io = memoryIo();
  const status = await main(['evmctl', ...args], io);
  return { status, out: io.out(), err: io.err() };
}

const LIST = vectorPath('synthetic_binary_runtime_measurements_sha1');

const SAME_AS_EVMCTL: readonly { argv: string[]; status: number; err: RegExp }[] = [
  { argv: ['ima_measurement'], status: 125, err: /Parameters missing/ },
  {
    argv: ['ima_measurement', '/nonexistent-imakit-list'],
    status: 125,
    err: /Failed to open measurement file: \/nonexistent-imakit-list/,
  },
  // unreadable PCRs: the list's template digests are all valid, so evmctl exits 0
  {
    argv: ['ima_measurement', '--pcrs', 'sha256,/nonexistent-imakit', LIST],
    status: 0,
    err: /Could not stat '\/nonexistent-imakit'[^]*Failed to read any TPM PCRs/,
  },
  {
    argv: ['ima_measurement', '--pcrs', 'sha999,' + vectorPath('synthetic_pcrs_sha1.txt'), LIST],
    status: 0,
    err: /Unknown algorithm 'sha999'/,
  },
  {
    argv: ['ima_boot_aggregate', '--pcrs', 'sha256,/nonexistent-imakit'],
    status: 125,
    err: /Could not stat[^]*Failed to read any TPM PCRs/,
  },
  {
    argv: ['ima_boot_aggregate', '--pcrs', 'sha999,' + vectorPath('bootagg_pcrs_sha256.txt')],
    status: 125,
    err: /Unknown algorithm 'sha999'/,
  },
  { argv: ['ima_boot_aggregate', '--pcrs', 'sha1,/dev/zero'], status: 125, err: /not a regular file/ },
  // a PEM public key is not a certificate: evmctl's read_pub_pkey fails, status 1 (not add_key's 125)
  { argv: ['import', vectorPath('rsa2048.pub'), '12345'], status: 1, err: /rsa2048\.pub.*CERTIFICATE/ },
  { argv: ['import', '/nonexistent-imakit.der', '12345'], status: 1, err: /nonexistent-imakit\.der.*ENOENT/ },
  // convert: evmctl's read_pub_key failing is 1 too
  {
    argv: ['convert', '/nonexistent-imakit.pem'],
    status: 1,
    err: /Failed to open: \/nonexistent-imakit\.pem/,
  },
];

for (const c of SAME_AS_EVMCTL)
  test(`evmctl ${c.argv.join(' ')} exits as evmctl (${c.status})`, async () => {
    const ref = run('evmctl', c.argv);
    assert.equal(ref.status, c.status, `evmctl 1.4 itself: ${ref.stderr}`);
    const r = await imakit(c.argv);
    assert.equal(r.status, ref.status, r.err);
    assert.match(r.err, c.err);
  });

test('ima_measurement with --pcrs unreadable still fails on a bad template digest (1), as evmctl', async () => {
  // the ima-template list's first entry digest flipped: evmctl says "Failed to verify template data digest."
  const { readFileSync, writeFileSync } = await import('node:fs');
  const { tempDir } = await import('../../helpers.ts');
  const { dir, cleanup } = tempDir();
  try {
    const bytes = new Uint8Array(readFileSync(LIST));
    bytes[9] = bytes[9]! ^ 0xff; // inside entry 0's template digest (after the u32 PCR)
    const bad = join(dir, 'bad.bin');
    writeFileSync(bad, bytes);
    const argv = ['ima_measurement', '--pcrs', 'sha256,/nonexistent-imakit', bad];
    const ref = run('evmctl', argv);
    const r = await imakit(argv);
    assert.equal(ref.status, 1, ref.stderr);
    assert.equal(r.status, 1, r.err);
    assert.match(r.err, /Failed to read any TPM PCRs\nFailed to verify template data digest\./);
  } finally {
    cleanup();
  }
});

test('ima_boot_aggregate on a crypto-agile log prints every bank; the list holds the sha256 one', async () => {
  const dir = join(FIXTURES_DIR, 'kernel', 'appraise-fix');
  const r = await imakit(['ima_boot_aggregate', join(dir, 'binary_bios_measurements')]);
  assert.equal(r.status, 0, r.err);
  const lines = r.out.trim().split('\n');
  assert.deepEqual(
    lines.map((l) => l.split(':')[0]),
    ['sha1', 'sha256'],
  );
  // the real kernel's boot_aggregate entry (ima-sig, sha256) in the same run's ascii list
  const ascii = (await import('node:fs')).readFileSync(join(dir, 'ascii_runtime_measurements'), 'utf8');
  const claim = /^10 \S+ \S+ (sha256:[0-9a-f]{64}) boot_aggregate/m.exec(ascii)![1]!;
  assert.equal(lines[1], claim);
  // evmctl 1.4 refuses the crypto-agile log: nothing to compare, the drop-in goes beyond it
  assert.equal(run('evmctl', ['ima_boot_aggregate', join(dir, 'binary_bios_measurements')]).status, 125);
});

test('ima_boot_aggregate on an unreadable log: 125 naming the file, like evmctl', async () => {
  const r = await imakit(['ima_boot_aggregate', '/nonexistent-imakit-log']);
  assert.equal(r.status, run('evmctl', ['ima_boot_aggregate', '/nonexistent-imakit-log']).status);
  assert.equal(r.status, 125);
  assert.match(r.err, /Failed reading the TPM 1.2 event log \(\/nonexistent-imakit-log\)/);
});
