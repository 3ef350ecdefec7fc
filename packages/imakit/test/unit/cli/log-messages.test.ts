/**
 * Messages of the attestation commands (issue 10 item 10), through the real CLI in-process:
 * `--pcrs sha999,FILE` is an unknown bank (not ENOENT), a file of the other kind says what it
 * looks like and which command reads it, and `log diff` escapes unprintable bytes and calls one
 * changed entry under the same boot_aggregate "entry N differs", not a different boot.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../../src/cli/main.ts';
import { memoryIo } from '../../../src/cli/io.ts';
import { FIXTURES_DIR, tempDir, vectorPath } from '../../helpers.ts';

async function imakit(...argv: string[]) {
  const io = memoryIo();
  const status = await main(argv, io);
  return { status, out: io.out(), err: io.err() };
}

const RUN = join(FIXTURES_DIR, 'kernel', 'appraise-fix');
const LIST = join(RUN, 'binary_runtime_measurements');

test('log verify --pcrs sha999,FILE: unknown bank, exit 2 (was ENOENT on "sha999,FILE")', async () => {
  const r = await imakit('log', 'verify', LIST, '--pcrs', `sha999,${join(RUN, 'pcrs-sha1.txt')}`);
  assert.equal(r.status, 2);
  assert.match(r.err, /unknown bank 'sha999' in --pcrs sha999,.*E_HASH_UNKNOWN/);
  assert.doesNotMatch(r.err, /ENOENT/);
});

test('eventlog show / boot-aggregate on an IMA list say it is one and name log show', async () => {
  for (const argv of [
    ['eventlog', 'show', LIST],
    ['boot-aggregate', '--eventlog', LIST],
    ['eventlog', 'show', vectorPath('synthetic_ascii_runtime_measurements_sha1')],
  ]) {
    const r = await imakit(...argv);
    assert.equal(r.status, 2, r.err);
    assert.match(
      r.err,
      /this looks like an IMA (binary|ascii) measurement list.*; use imakit log show/,
      argv.join(' '),
    );
  }
  const r = await imakit('log', 'show', join(RUN, 'binary_bios_measurements'));
  assert.equal(r.status, 2);
  assert.match(r.err, /this looks like a crypto-agile TCG event log; use imakit eventlog show/);
});

test('log diff: one flipped byte is "entry N differs", shown escaped; different boot_aggregates are different boots', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const bytes = new Uint8Array(readFileSync(LIST));
    const text = Buffer.from(bytes).toString('latin1');
    const name = text.indexOf('/data/good-sha256.txt');
    assert.ok(name > 0);
    const flipped = bytes.slice();
    flipped[name + 1] = 0x01; // 'd' -> \x01 in entry 1's file name
    const f = join(dir, 'flipped.bin');
    writeFileSync(f, flipped);
    const r = await imakit('log', 'diff', LIST, f);
    assert.equal(r.status, 1);
    assert.match(r.out, /^entry 1 differs \(every other entry is equal, same boot_aggregate\)$/m);
    assert.match(r.out, /b \/\\x01ata\/good-sha256\.txt/);
    assert.ok(
      ![...r.out].some((c) => c.charCodeAt(0) < 0x20 && c !== '\n'),
      'no raw control bytes on the terminal',
    );
    assert.doesNotMatch(r.out, /different boots/);
    // the boot_aggregate entry's digest changed: a different boot
    const boot = bytes.slice();
    const ba = text.indexOf('sha256:') + 'sha256:'.length + 1 + 4; // inside entry 0's d-ng digest
    boot[ba]! ^= 0xff;
    const g = join(dir, 'boot.bin');
    writeFileSync(g, boot);
    const r2 = await imakit('log', 'diff', LIST, g, '--json');
    assert.equal(r2.status, 1);
    const j = JSON.parse(r2.out);
    assert.equal(j.bootAggregate, 'different');
    const r3 = await imakit('log', 'diff', LIST, g);
    assert.match(
      r3.out,
      /^different boots: the boot_aggregate entries differ \(first difference at entry 0\)$/m,
    );
  } finally {
    cleanup();
  }
});
