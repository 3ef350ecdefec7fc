/**
 * The bounded input reader (issue 10 item 3): a regular file over the cap is refused from its size,
 * a character device or a FIFO is read only up to the cap and refused past it, and the error names
 * the file, the kind and the cap. Before it, `--key /dev/zero` read until the OOM killer came.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { readBoundedFile, readBoundedStream, readBoundedText } from '../../../../src/host/fs/bounded-read.ts';
import { ImakitError } from '../../../../src/errors.ts';
import { tempDir } from '../../../helpers.ts';

function rejects(fn: () => unknown, code: string, re: RegExp): ImakitError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ImakitError, String(e));
    assert.equal(e.code, code);
    assert.match(e.message, re);
    return e;
  }
  assert.fail('did not throw');
}

test('reads a regular file under the cap exactly, including a file exactly at the cap', () => {
  const { dir, cleanup } = tempDir();
  try {
    const p = join(dir, 'k');
    writeFileSync(p, Buffer.alloc(100, 7));
    assert.deepEqual(readBoundedFile(p, 'key', { cap: 100 }), new Uint8Array(100).fill(7));
    writeFileSync(p, '');
    assert.equal(readBoundedFile(p, 'key').length, 0);
    writeFileSync(p, 'héllo\n');
    assert.equal(readBoundedText(p, 'policy'), 'héllo\n');
  } finally {
    cleanup();
  }
});

test('a regular file over the cap is refused naming the file, kind and cap', () => {
  const { dir, cleanup } = tempDir();
  try {
    const p = join(dir, 'big.pem');
    writeFileSync(p, Buffer.alloc(101));
    const e = rejects(
      () => readBoundedFile(p, 'key', { cap: 100 }),
      'E_IO_TOO_LARGE',
      /big\.pem: is 101 bytes: the cap for a key is 100 bytes/,
    );
    assert.equal(e.context.path, p);
    assert.equal(e.exitCode, 2);
  } finally {
    cleanup();
  }
});

test('/dev/zero is read only up to the cap and refused (a character device)', () => {
  const before = process.memoryUsage().rss;
  const e = rejects(
    () => readBoundedFile('/dev/zero', 'key'),
    'E_IO_TOO_LARGE',
    /\/dev\/zero: is a character device giving more than 1 MiB: the cap for a key is 1 MiB/,
  );
  assert.equal(e.context.path, '/dev/zero');
  // bounded: the reader held at most cap + 1 bytes
  assert.ok(process.memoryUsage().rss - before < 64 << 20);
  rejects(
    () => readBoundedFile('/dev/zero', 'policy', { cap: 4096 }),
    'E_IO_TOO_LARGE',
    /cap for a policy is 4 KiB/,
  );
});

test('a FIFO fed forever is refused at the cap; a short FIFO is read whole', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    // `yes` writes forever; it dies of SIGPIPE once the reader gives up
    const writer = spawn('sh', ['-c', `exec yes > '${fifo}'`], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 50));
      rejects(
        () => readBoundedFile(fifo, 'pcrs', { cap: 1 << 16 }),
        'E_IO_TOO_LARGE',
        /is a FIFO giving more than 64 KiB: the cap for a PCR file/,
      );
    } finally {
      writer.kill('SIGKILL');
    }
    // a FIFO of its own: a `yes` still being reaped could otherwise write into the short read
    const fifo2 = join(dir, 'fifo2');
    execFileSync('mkfifo', [fifo2]);
    const short = spawn('sh', ['-c', `printf 'PCR-10: 00\\n' > '${fifo2}'`], { stdio: 'ignore' });
    assert.equal(readBoundedText(fifo2, 'pcrs'), 'PCR-10: 00\n');
    await new Promise((r) => short.on('exit', r));
  } finally {
    cleanup();
  }
});

test('missing file and directory: E_IO_READ and E_IO_NOT_REGULAR with the path', () => {
  const { dir, cleanup } = tempDir();
  try {
    rejects(() => readBoundedFile(join(dir, 'nope'), 'key'), 'E_IO_READ', /nope.*ENOENT/);
    mkdirSync(join(dir, 'd'));
    rejects(() => readBoundedFile(join(dir, 'd'), 'certificate'), 'E_IO_NOT_REGULAR', /d: is a directory/);
  } finally {
    cleanup();
  }
});

test('the probe sees the head first and can refuse before the rest is read', () => {
  let seen = -1;
  rejects(
    () =>
      readBoundedFile('/dev/zero', 'measurement-list', {
        probe: {
          bytes: 4096,
          check: (h) => {
            seen = h.length;
            throw new ImakitError('E_LIST_ENDIAN', 'not a list', { path: '/dev/zero' });
          },
        },
      }),
    'E_LIST_ENDIAN',
    /not a list/,
  );
  assert.ok(seen >= 4096 && seen < 1 << 20, `probe saw ${seen} bytes`);
});

test('streams (standard input) are capped the same way', async () => {
  const ok = await readBoundedStream(
    Readable.from([Buffer.from('ab'), Buffer.from('c')]),
    'stdin',
    'standard input',
  );
  assert.equal(Buffer.from(ok).toString(), 'abc');
  await assert.rejects(
    readBoundedStream(Readable.from([Buffer.alloc(10), Buffer.alloc(10)]), 'stdin', 'standard input', {
      cap: 15,
    }),
    (e: unknown) =>
      e instanceof ImakitError &&
      e.code === 'E_IO_TOO_LARGE' &&
      /standard input: gave more than 15 bytes/.test(e.message),
  );
});
