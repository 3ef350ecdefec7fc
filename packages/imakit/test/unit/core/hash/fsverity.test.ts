/**
 * fs-verity digests (formats.md §3.3) against the shared vectors and against `fsverity digest`
 * (fsverity-utils) on fresh random files of awkward sizes, block sizes and salts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import {
  FSVERITY_DESCRIPTOR_SIZE,
  FsVerityHasher,
  fsverityDescriptor,
  fsverityDigest,
  fsverityKernelHashId,
  type FsVerityAlgo,
} from '../../../../src/core/hash/fsverity.ts';
import { toHex } from '../../../../src/core/bytes/bytes.ts';
import { run, tempDir, vector, vectorOutputLine } from '../../../helpers.ts';

function toolDigest(path: string, algo: FsVerityAlgo, extra: string[] = []): string {
  const r = run('fsverity', ['digest', path, `--hash-alg=${algo}`, ...extra]);
  assert.equal(r.status, 0, r.stderr);
  const m = /^(sha256|sha512):([0-9a-f]+) /.exec(r.stdout);
  assert.ok(m, r.stdout);
  return m[2]!;
}

test('vectors: hello.txt, empty.bin, pattern5000.bin in sha256 and sha512', () => {
  for (const f of ['hello.txt', 'empty.bin', 'pattern5000.bin'])
    for (const algo of ['sha256', 'sha512'] as const) {
      const line = vectorOutputLine(`${f} fsverity ${algo}:`);
      const expected = /:([0-9a-f]+) /.exec(line)![1]!;
      assert.equal(toHex(fsverityDigest(vector(f), algo)), expected, `${f} ${algo}`);
    }
});

test('descriptor layout and algorithm numbering (fs-verity sha256=1, sha512=2; kernel ids 4, 6)', () => {
  const root = new Uint8Array(32).fill(0xab);
  const d = fsverityDescriptor({ algo: 'sha256', blockSize: 4096, dataSize: 0x0102n, rootHash: root });
  assert.equal(d.length, FSVERITY_DESCRIPTOR_SIZE);
  assert.equal(toHex(d.subarray(0, 16)), '01010c00' + '00000000' + '0201000000000000');
  assert.equal(toHex(d.subarray(16, 48)), 'ab'.repeat(32));
  assert.ok(d.subarray(48).every((b) => b === 0));
  const d2 = fsverityDescriptor({
    algo: 'sha512',
    blockSize: 1024,
    dataSize: 1n,
    rootHash: new Uint8Array(64),
    salt: new Uint8Array([1, 2]),
  });
  assert.equal(toHex(d2.subarray(0, 4)), '01020a02'); // version 1, sha512, log2(1024), salt 2
  assert.equal(toHex(d2.subarray(80, 83)), '010200');
  assert.equal(fsverityKernelHashId('sha256'), 4);
  assert.equal(fsverityKernelHashId('sha512'), 6);
  // the file digest is H(descriptor) (empty file: zero root)
  const e = fsverityDescriptor({
    algo: 'sha256',
    blockSize: 4096,
    dataSize: 0n,
    rootHash: new Uint8Array(32),
  });
  assert.equal(createHash('sha256').update(e).digest('hex'), toHex(fsverityDigest(new Uint8Array(0))));
});

test('fresh random files of awkward sizes vs `fsverity digest`', () => {
  const { dir, cleanup } = tempDir();
  try {
    for (const size of [0, 1, 4095, 4096, 4097, 5000, 128 * 4096, 128 * 4096 + 1, (1 << 20) + 3, 40 << 20]) {
      const data = randomBytes(size);
      const p = join(dir, `f${size}`);
      writeFileSync(p, data);
      for (const algo of ['sha256', 'sha512'] as const) {
        if (size === 40 << 20 && algo === 'sha512') continue; // keep the suite fast: one big run
        // feed in odd-sized chunks to exercise the partial-block paths
        const h = new FsVerityHasher(algo);
        for (let o = 0; o < size; o += 65_537) h.update(data.subarray(o, o + 65_537));
        assert.equal(toHex(h.digest()), toolDigest(p, algo), `size ${size} ${algo}`);
      }
    }
  } finally {
    cleanup();
  }
});

test('block sizes and salts vs `fsverity digest` (deep trees: 1 KiB blocks with sha512)', () => {
  const { dir, cleanup } = tempDir();
  try {
    for (const size of [1, 1024, 1025, 16 * 1024, 16 * 16 * 1024 + 7, 16 * 16 * 16 * 1024 + 1]) {
      const data = randomBytes(size);
      const p = join(dir, `g${size}`);
      writeFileSync(p, data);
      for (const [algo, blockSize, saltHex] of [
        ['sha512', 1024, ''],
        ['sha256', 1024, '00'],
        ['sha256', 65536, 'deadbeef'],
        ['sha512', 4096, 'aa'.repeat(32)],
      ] as const) {
        const salt = Buffer.from(saltHex, 'hex');
        const extra = [`--block-size=${blockSize}`, ...(saltHex ? [`--salt=${saltHex}`] : [])];
        const mine = toHex(fsverityDigest(data, algo, { blockSize, salt }));
        assert.equal(
          mine,
          toolDigest(p, algo, extra),
          `size ${size} ${algo} bs ${blockSize} salt ${saltHex}`,
        );
      }
    }
  } finally {
    cleanup();
  }
});

test('property: chunking does not change the digest', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 20_000 }),
      fc.array(fc.nat({ max: 9000 }), { maxLength: 6 }),
      (data, cuts) => {
        const h = new FsVerityHasher('sha256', { blockSize: 1024 });
        let o = 0;
        for (const c of cuts) {
          h.update(data.subarray(o, o + c));
          o += c;
        }
        h.update(data.subarray(o));
        assert.equal(toHex(h.digest()), toHex(fsverityDigest(data, 'sha256', { blockSize: 1024 })));
      },
    ),
    { numRuns: 60 },
  );
});

test('misuse: bad block size, salt too long, wrong algorithm, reuse after digest', () => {
  assert.throws(() => new FsVerityHasher('sha256', { blockSize: 3000 }), RangeError);
  assert.throws(() => new FsVerityHasher('sha256', { blockSize: 512 }), RangeError);
  assert.throws(() => new FsVerityHasher('sha256', { salt: new Uint8Array(33) }), RangeError);
  assert.throws(() => new FsVerityHasher('sha1' as FsVerityAlgo), RangeError);
  const h = new FsVerityHasher();
  h.digest();
  assert.throws(() => h.update(new Uint8Array(1)));
});
