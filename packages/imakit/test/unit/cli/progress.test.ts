/**
 * The progress bar while a tree is walked (issue 10 item 10): no percentage until the total is
 * final (a growing total made it read 87% at 423/483, then 3020/3020); a count is shown instead.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createProgress } from '../../../src/cli/progress.ts';
import { memoryIo } from '../../../src/cli/io.ts';

/** A terminal-like stream that records what the bar draws. */
function fakeTty(): { stream: NodeJS.WritableStream; text: () => string } {
  const chunks: string[] = [];
  const w = new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  });
  Object.assign(w, {
    isTTY: true,
    columns: 120,
    cursorTo: () => true,
    clearLine: () => true,
    moveCursor: () => true,
  });
  return { stream: w, text: () => chunks.join('') };
}

test('progress: a count while walking, a percentage only once the total is final', () => {
  const tty = fakeTty();
  const io = { ...memoryIo(), isTTY: true };
  const p = createProgress(io, { label: 'label', delayMs: 0, stream: tty.stream });
  try {
    p.setFound(483);
    p.tick(423);
    const walking = tty.text();
    // the first frame is drawn at once; later ones at the bar's frame rate
    assert.match(walking, /label \d+ done, 483 found, walking…/);
    assert.doesNotMatch(walking, /%/, 'no percentage while the total can still grow');
    p.setTotal(3020);
    p.tick(1);
    p.stop();
    assert.match(tty.text().slice(walking.length), /\] 14% 424\/3020 files/);
  } finally {
    p.stop();
  }
});

test('progress: nothing on a pipe or in --json mode', () => {
  const tty = fakeTty();
  const piped = createProgress(memoryIo(), { label: 'x', delayMs: 0, stream: tty.stream });
  piped.setFound(3);
  piped.tick();
  piped.stop();
  const json = createProgress(
    { ...memoryIo(), isTTY: true },
    { label: 'x', json: true, delayMs: 0, stream: tty.stream },
  );
  json.setTotal(3);
  json.tick();
  json.stop();
  assert.equal(tty.text(), '');
});
