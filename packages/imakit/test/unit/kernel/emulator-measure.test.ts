/**
 * Measurement behaviour of the emulator (real-kernel.md §7): de-duplication and re-measurement,
 * name rewriting, the xattr's algorithm, violations and their order, the legacy template, padded
 * banks; the emulated lists are replayed by evmctl 1.4 against the emulated PCRs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { run, tempDir } from '../../helpers.ts';
import { Emulator, ext4Fs } from '../../../src/kernel/emulator.ts';
import { getProfile } from '../../../src/kernel/profiles.ts';
import { runAccess } from '../../../src/kernel/workload.ts';
import { toHex } from '../../../src/core/bytes/bytes.ts';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const H = (algo: string, d: Uint8Array | string): string => createHash(algo).update(d).digest('hex');

function boot(cmdline: string, banks: string[] = ['sha1', 'sha256']) {
  const emu = new Emulator({
    profile: getProfile('debian-6.1'),
    cmdline,
    banks,
    bootAggregate: { algo: 'sha256', digest: new Uint8Array(32).fill(7) },
  });
  const fs = ext4Fs('28b23254-9467-44c0-b6ba-34b12e85a26f');
  const add = (path: string, content: string, opts: { uid?: number; ima?: Uint8Array } = {}) =>
    emu.addFile({
      path,
      fs,
      content: enc(content),
      uid: opts.uid ?? 0,
      gid: opts.uid ?? 0,
      mode: 0o100755,
      xattrs: opts.ima ? new Map([['security.ima', opts.ima]]) : undefined,
    });
  return { emu, fs, add };
}

const lines = (emu: Emulator) => emu.store.ascii('sha1').split('\n').slice(0, -1);

test('tcb: dedup on re-read, re-measure after change, uid rules, names with spaces, xattr algorithm', () => {
  const { emu, fs, add } = boot('ima_policy=tcb ima_hash=sha256 ima_template=ima-ng');
  add('plain.txt', 'plain\n');
  add('owned by user', 'u\n', { uid: 1000 });
  add('sha1file', 'one\n', { ima: Uint8Array.of(0x01, ...Buffer.from(H('sha1', 'one\n'), 'hex')) });
  add('sha512file', 'five\n', { ima: Uint8Array.of(0x04, 6, ...Buffer.from(H('sha512', 'five\n'), 'hex')) });
  add('empty', '');
  let i = 0;
  const acc = (op: 'read' | 'write-then-read' | 'exec', path: string, uid = 0) =>
    runAccess(emu, { op, path, uid }, i++, fs);
  acc('read', 'plain.txt');
  acc('read', 'plain.txt');
  assert.equal(lines(emu).length, 2, 'boot_aggregate + one entry: the re-read is not measured');
  acc('write-then-read', 'plain.txt');
  assert.equal(lines(emu).length, 3, 'after a modification the next read is measured again');
  acc('read', 'owned by user', 1000);
  assert.equal(lines(emu).length, 3, 'a read by uid 1000 is not measured');
  acc('read', 'owned by user', 0);
  assert.match(lines(emu)[3]!, / \/data\/owned_by_user$/);
  acc('read', 'sha1file');
  assert.match(lines(emu)[4]!, new RegExp(` sha1:${H('sha1', 'one\n')} /data/sha1file$`));
  const r = acc('read', 'sha512file');
  assert.equal(lines(emu).length, 5, 'sha512 without the module: no entry at all');
  assert.equal(r.outcome, 'allowed');
  assert.equal(r.audit[0]!.fields.op, 'collect_data');
  assert.equal(r.audit[0]!.fields.cause, 'failed');
  acc('read', 'empty');
  assert.match(lines(emu)[5]!, new RegExp(`ima-ng sha256:${H('sha256', '')} /data/empty$`));
  assert.match(lines(emu)[0]!, /^10 [0-9a-f]{40} ima-ng sha256:(07){32} boot_aggregate$/);
});

test('violations: ToMToU after the measurement, open-writers before it; default template; 0xff extends', () => {
  const { emu, fs, add } = boot('ima_hash=sha256 ima_template=ima-ng');
  emu.loadPolicy('measure func=FILE_CHECK mask=^MAY_READ template=ima-sig\n');
  add('t', 'tomtou\n');
  add('w', 'writers\n');
  runAccess(emu, { op: 'tomtou', path: 't' }, 0, fs);
  runAccess(emu, { op: 'open-writers', path: 'w' }, 1, fs);
  const l = lines(emu);
  assert.match(l[1]!, / ima-sig sha256:[0-9a-f]{64} \/data\/t $/);
  assert.match(l[2]!, new RegExp(`^10 ${'0'.repeat(40)} ima-ng sha256:${'0'.repeat(64)} /data/t$`));
  assert.match(l[3]!, new RegExp(`^10 ${'0'.repeat(40)} ima-ng sha256:${'0'.repeat(64)} /data/w$`));
  assert.match(l[4]!, / ima-sig sha256:[0-9a-f]{64} \/data\/w $/);
  assert.equal(emu.store.violations, 2);
  assert.deepEqual(
    emu.audit.filter((a) => a.type === 1804).map((a) => a.fields.cause),
    ['ToMToU', 'open_writers'],
  );
});

test('legacy ima template: sha1, no xattr read, long names replaced by the last component', () => {
  const { emu, fs, add } = boot('ima_policy=tcb ima_hash=sha1 ima_template=ima');
  const long = `${'d'.repeat(120)}/${'e'.repeat(120)}/${'f'.repeat(60)}.txt`;
  add(long, 'long\n');
  add('x512', 'x\n', { ima: Uint8Array.of(0x04, 6, ...new Uint8Array(64)) });
  runAccess(emu, { op: 'read', path: long }, 0, fs);
  runAccess(emu, { op: 'read', path: 'x512' }, 1, fs);
  const l = lines(emu);
  assert.equal(emu.settings.template.name, 'ima');
  assert.match(l[1]!, new RegExp(` ima ${H('sha1', 'long\n')} ${'f'.repeat(60)}\\.txt$`));
  assert.match(
    l[2]!,
    new RegExp(` ima ${H('sha1', 'x\n')} /data/x512$`),
    'the ima template ignores the sha512 xattr',
  );
});

test('four banks: sha384/sha512 cannot be allocated and get the zero-padded SHA-1 digest', () => {
  const { emu, fs, add } = boot('ima_policy=tcb ima_hash=sha256 ima_template=ima-ng', [
    'sha1',
    'sha256',
    'sha384',
    'sha512',
  ]);
  add('a', 'a\n');
  runAccess(emu, { op: 'read', path: 'a' }, 0, fs);
  assert.ok(emu.messages.includes('ima: Can not allocate sha384 (reason: -2)'));
  const e = emu.store.entries[1]!;
  const sha1 = e.digests.get('sha1')!;
  assert.deepEqual(e.digests.get('sha384')!.subarray(0, 20), sha1);
  assert.ok(
    e.digests
      .get('sha384')!
      .subarray(20)
      .every((b) => b === 0),
  );
  assert.equal(toHex(e.digests.get('sha256')!), H('sha256', e.templateData));
});

test('custom ima_template_fmt: the list shows the format string as template name', () => {
  const { emu, fs, add } = boot(
    'ima_policy=tcb ima_hash=sha256 ima_template_fmt=d-ng|n-ng|sig|iuid|igid|imode|xattrnames|xattrlengths|xattrvalues',
  );
  add('c', 'c\n', { ima: Uint8Array.of(0x04, 4, ...Buffer.from(H('sha256', 'c\n'), 'hex')) });
  runAccess(emu, { op: 'read', path: 'c' }, 0, fs);
  const l = lines(emu);
  assert.match(
    l[1]!,
    /^10 [0-9a-f]{40} d-ng\|n-ng\|sig\|iuid\|igid\|imode\|xattrnames\|xattrlengths\|xattrvalues sha256:[0-9a-f]{64} \/data\/c {2}0 0 33261 security\.ima 22000000 0404[0-9a-f]{64}$/,
  );
});

test('evmctl 1.4 replays the emulated list against the emulated PCRs (and rejects a tampered one)', () => {
  const { emu, fs, add } = boot('ima_policy=tcb ima_hash=sha256 ima_template=ima-sig');
  for (let k = 0; k < 5; k++) add(`f${k}`, `file ${k}\n`);
  for (let k = 0; k < 5; k++) runAccess(emu, { op: k === 2 ? 'tomtou' : 'read', path: `f${k}` }, k, fs);
  const { dir, cleanup } = tempDir();
  try {
    const list = join(dir, 'list');
    writeFileSync(list, emu.store.binary('sha1'));
    const pcrFile = (bank: string): string => {
      const p = join(dir, `pcrs_${bank}`);
      writeFileSync(
        p,
        emu.store.pcrs
          .get(bank)!
          .map((v, i) => `PCR-${String(i).padStart(2, '0')}: ${toHex(v)}\n`)
          .join(''),
      );
      return p;
    };
    const args = [
      'ima_measurement',
      '--ignore-violations',
      '--pcrs',
      `sha1,${pcrFile('sha1')}`,
      '--pcrs',
      `sha256,${pcrFile('sha256')}`,
      list,
    ];
    const ok = run('evmctl', args);
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);
    const bytes = emu.store.binary('sha1');
    bytes[bytes.length - 3]! ^= 1;
    writeFileSync(list, bytes);
    assert.notEqual(run('evmctl', args).status, 0);
  } finally {
    cleanup();
  }
});
