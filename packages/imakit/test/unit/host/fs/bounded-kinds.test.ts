/**
 * The newer whole-file inputs are bounded too (issue 10 item 3, "the same class of defect
 * everywhere else"): reference sets (`--refs`, `refs show|sign|…`), AK directory files, OCI JSON
 * documents, dpkg's database and `rpmdb.sqlite` read through the one bounded reader, and an RPM
 * header is checked against the file's size before it is allocated. Each used to read a device or
 * FIFO until EOF (or allocate what a header declared): here each is refused promptly, naming the
 * file and the cap (or what the first bytes are), with memory bounded by the cap.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../../../src/cli/main.ts';
import { memoryIo } from '../../../../src/cli/io.ts';
import { ImakitError } from '../../../../src/errors.ts';
import { readAkInfo } from '../../../../src/host/tpm/ak-files.ts';
import { readOciImage } from '../../../../src/host/packages/oci.ts';
import { readDpkgInstalled } from '../../../../src/host/packages/dpkg.ts';
import { readRpm, readRpmdb } from '../../../../src/host/packages/rpm.ts';
import { RPM_LEAD_SIZE } from '../../../../src/core/packages/rpm-header.ts';
import { run, tempDir, vectorPath } from '../../../helpers.ts';

const MiB = 1 << 20;

async function imakit(args: string[]) {
  const io = memoryIo();
  const status = await main(args, io);
  return { status, out: io.out(), err: io.err() };
}

async function drain<T>(it: AsyncIterable<T>): Promise<void> {
  for await (const x of it) void x;
}

/** A FIFO at `path` fed by `sh -c CMD > path` (the writer ends with SIGPIPE when the reader closes). */
function fifo(path: string, cmd: string): ChildProcess {
  assert.equal(run('mkfifo', [path]).status, 0);
  return spawn('sh', ['-c', `exec ${cmd} > '${path}'`], { stdio: 'ignore' });
}

function killed(w: ChildProcess): Promise<void> {
  if (w.exitCode !== null || w.signalCode !== null) return Promise.resolve();
  w.kill();
  return new Promise((r) => w.on('exit', () => r()));
}

/** Run `fn`, assert the memory it grew stayed under `limit` bytes. */
async function bounded<T>(limit: number, fn: () => Promise<T>): Promise<T> {
  const before = process.memoryUsage().rss;
  const r = await fn();
  assert.ok(process.memoryUsage().rss - before < limit, 'memory stayed bounded');
  return r;
}

const isErr = (code: string, message: RegExp) => (e: unknown) => {
  assert.ok(e instanceof ImakitError, String(e));
  assert.equal(e.code, code, e.message);
  assert.match(e.message, message);
  return true;
};

test('reference sets: /dev/zero is refused from its first bytes, a file over 512 MiB from its size', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const list = vectorPath('synthetic_binary_runtime_measurements_sha256');
    for (const argv of [
      ['log', 'verify', list, '--refs', '/dev/zero'],
      ['refs', 'show', '/dev/zero'],
      ['refs', 'sign', '/dev/zero', '--key', vectorPath('rsa2048.key'), '--out', join(dir, 'sig')],
    ]) {
      const r = await bounded(32 * MiB, () => imakit(argv));
      assert.equal(r.status, 2, r.err);
      assert.match(r.err, /\/dev\/zero.*not a reference set: a 0x00 byte.*E_REFS_FORMAT/);
      assert.doesNotMatch(r.err, /\n\s+at /, 'no stack trace');
    }
    // a sparse file: refused from its size, nothing read
    const big = join(dir, 'big.json');
    writeFileSync(big, '{');
    truncateSync(big, 600 * MiB);
    const r = await bounded(32 * MiB, () => imakit(['refs', 'show', big]));
    assert.equal(r.status, 2);
    assert.match(r.err, /big\.json: is 600 MiB: the cap for a reference set is 512 MiB.*E_IO_TOO_LARGE/);
  } finally {
    cleanup();
  }
});

test('AK directory files: ak.json as /dev/zero or an endless FIFO names the 64 KiB cap', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const zero = join(dir, 'zero');
    mkdirSync(zero);
    symlinkSync('/dev/zero', join(zero, 'ak.json'));
    await bounded(16 * MiB, async () =>
      assert.throws(
        () => readAkInfo(zero),
        isErr(
          'E_IO_TOO_LARGE',
          /ak\.json: is a character device giving more than 64 KiB: the cap for a TPM object file is 64 KiB/,
        ),
      ),
    );
    const pipe = join(dir, 'pipe');
    mkdirSync(pipe);
    const w = fifo(join(pipe, 'ak.json'), 'yes');
    try {
      assert.throws(() => readAkInfo(pipe), isErr('E_IO_TOO_LARGE', /is a FIFO giving more than 64 KiB/));
    } finally {
      await killed(w);
    }
  } finally {
    cleanup();
  }
});

test('OCI layout: an index.json that never ends names the 4 MiB cap', async () => {
  const { dir, cleanup } = tempDir();
  try {
    writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    const w = fifo(join(dir, 'index.json'), 'yes');
    try {
      await bounded(64 * MiB, () =>
        assert.rejects(
          drain(readOciImage(dir)),
          isErr(
            'E_IO_TOO_LARGE',
            /index\.json: is a FIFO giving more than 4 MiB: the cap for an OCI JSON document is 4 MiB/,
          ),
        ),
      );
    } finally {
      await killed(w);
    }
  } finally {
    cleanup();
  }
});

test('dpkg database: a status file that never ends names the 64 MiB cap; a missing .list is still skipped', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const admin = join(dir, 'var/lib/dpkg');
    mkdirSync(join(admin, 'info'), { recursive: true });
    const w = fifo(join(admin, 'status'), 'yes');
    try {
      await bounded(200 * MiB, () =>
        assert.rejects(
          drain(readDpkgInstalled(dir)),
          isErr(
            'E_IO_TOO_LARGE',
            /status: is a FIFO giving more than 64 MiB: the cap for a dpkg database file is 64 MiB/,
          ),
        ),
      );
    } finally {
      await killed(w);
    }
    // the optional files keep their ENOENT meaning through the bounded reader
    const ok = join(dir, 'ok');
    mkdirSync(join(ok, 'var/lib/dpkg/info'), { recursive: true });
    writeFileSync(
      join(ok, 'var/lib/dpkg/status'),
      'Package: gone\nStatus: install ok installed\nVersion: 1\nArchitecture: amd64\n\n',
    );
    const records: unknown[] = [];
    for await (const r of readDpkgInstalled(ok)) records.push(r);
    assert.deepEqual(records, []);
  } finally {
    cleanup();
  }
});

test('rpmdb.sqlite: /dev/zero is no SQLite database (first 16 bytes), a file over 2 GiB names the cap', async () => {
  const { dir, cleanup } = tempDir();
  try {
    await bounded(32 * MiB, () =>
      assert.rejects(
        drain(readRpmdb('/dev/zero')),
        isErr('E_PKG_FORMAT', /\/dev\/zero.*not an SQLite database/),
      ),
    );
    const big = join(dir, 'rpmdb.sqlite');
    writeFileSync(big, 'SQLite format 3\0');
    truncateSync(big, 2049 * MiB);
    await bounded(32 * MiB, () =>
      assert.rejects(
        drain(readRpmdb(big)),
        isErr('E_IO_TOO_LARGE', /is 2049 MiB: the cap for an RPM database is 2048 MiB/),
      ),
    );
  } finally {
    cleanup();
  }
});

test('.rpm: a header declaring more than the file holds is refused before it is allocated', async () => {
  const { dir, cleanup } = tempDir();
  try {
    // a lead and a signature header intro that declares 60 MiB of data (under rpm's 64 MiB cap)
    const lead = Buffer.alloc(RPM_LEAD_SIZE);
    Buffer.from([0xed, 0xab, 0xee, 0xdb, 3, 0]).copy(lead); // magic, version 3.0
    lead.writeUInt16BE(5, 78); // signature type: header-style
    const intro = Buffer.from([0x8e, 0xad, 0xe8, 0x01, 0, 0, 0, 0, 0, 0, 0, 1, 0x03, 0xc0, 0, 0]);
    const p = join(dir, 'liar.rpm');
    writeFileSync(p, Buffer.concat([lead, intro, Buffer.alloc(64)]));
    await bounded(32 * MiB, () =>
      assert.rejects(
        drain(readRpm(p)),
        isErr(
          'E_CODEC_TRUNCATED',
          /liar\.rpm.*signature header declares 62914592 bytes, the file has 80 from here/,
        ),
      ),
    );
    assert.ok(readFileSync(p).length < 1024);
  } finally {
    cleanup();
  }
});
