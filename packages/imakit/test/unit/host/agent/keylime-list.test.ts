/**
 * The IMA list as Keylime's pull API serves it (host/agent/keylime-list.ts), with rust-keylime's
 * `MeasurementList::read` rules: lines from entry N, empty at N = count, the whole list from 0
 * past the end; binary lists rendered as the kernel's ascii lines, ascii lists passed through; a
 * binary entry cut short at EOF (the kernel appending) left for the next read; appended entries
 * found from the remembered position.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../../../helpers.ts';
import { keylimeListReader } from '../../../../src/host/agent/keylime-list.ts';

const KERNEL = join(import.meta.dirname, '../../../fixtures/kernel/appraise-enforce');
const BIN = new Uint8Array(readFileSync(join(KERNEL, 'binary_runtime_measurements')));
const ASCII = readFileSync(join(KERNEL, 'ascii_runtime_measurements'), 'utf8');
const LINES = ASCII.split('\n').slice(0, -1);

for (const form of ['binary', 'ascii'] as const)
  test(`${form} list: from entry N, empty at the end, whole list past it`, () => {
    const t = tempDir('imakit-keylime-list-');
    try {
      const file = join(t.dir, 'list');
      writeFileSync(file, form === 'binary' ? BIN : ASCII);
      const r = keylimeListReader(file);
      const all = r.read(0);
      assert.deepEqual([all.entry, all.count], [0, LINES.length]);
      assert.equal(all.text, ASCII);
      const from5 = r.read(5);
      assert.equal(from5.entry, 5);
      assert.equal(from5.text, `${LINES.slice(5).join('\n')}\n`);
      assert.deepEqual(r.read(LINES.length), { text: '', entry: LINES.length, count: LINES.length });
      const past = r.read(LINES.length + 1);
      assert.deepEqual([past.entry, past.text], [0, ASCII]);
    } finally {
      t.cleanup();
    }
  });

test('binary: an entry cut short at EOF waits; appended entries are read from the remembered position', () => {
  const t = tempDir('imakit-keylime-list-');
  try {
    const file = join(t.dir, 'list');
    // the whole list but the last 10 bytes: the last entry is incomplete
    writeFileSync(file, BIN.subarray(0, BIN.length - 10));
    const r = keylimeListReader(file);
    const first = r.read(0);
    assert.equal(first.count, LINES.length - 1);
    assert.equal(first.text, `${LINES.slice(0, -1).join('\n')}\n`);
    appendFileSync(file, BIN.subarray(BIN.length - 10));
    const next = r.read(LINES.length - 1);
    assert.deepEqual(next, {
      text: `${LINES[LINES.length - 1]}\n`,
      entry: LINES.length - 1,
      count: LINES.length,
    });
  } finally {
    t.cleanup();
  }
});
