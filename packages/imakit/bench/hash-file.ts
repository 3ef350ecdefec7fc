/**
 * File hashing throughput (dependencies.md §2e targets). Prints figures; asserts nothing.
 *
 *  1. one 1 GiB file, sha256: imakit's single-pass reader (readSync into a reused 1 MiB buffer) vs
 *     coreutils `sha256sum`, plus imakit with sha256 + fs-verity in the same pass
 *  2. a HashPool over 2,000 files (50 KiB each by default) vs the single-threaded reader
 *
 * Run: node --import tsx bench/hash-file.ts [--size-mib 1024] [--files 2000] [--file-kib 50]
 * Files go to a fresh temporary directory (page cache warm after the first read), removed at the end.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { hashFileSync } from '../src/host/fs/file-hash.ts';
import { HashPool } from '../src/host/workers/hash-pool.ts';
import { toHex } from '../src/core/bytes/bytes.ts';

const { values } = parseArgs({
  options: {
    'size-mib': { type: 'string', default: '1024' },
    files: { type: 'string', default: '2000' },
    'file-kib': { type: 'string', default: '50' },
  },
});
const sizeMiB = Number(values['size-mib']);
const nFiles = Number(values.files);
const fileKiB = Number(values['file-kib']);

const mibps = (bytes: number, ms: number): string => `${(bytes / (1 << 20) / (ms / 1000)).toFixed(0)} MiB/s`;
const time = <T>(fn: () => T): [T, number] => {
  const t0 = performance.now();
  const r = fn();
  return [r, performance.now() - t0];
};

const dir = mkdtempSync(join(tmpdir(), 'imakit-bench-'));
try {
  // 1. big file
  const big = join(dir, 'big');
  const chunk = randomBytes(1 << 20);
  const fd = openSync(big, 'w');
  for (let i = 0; i < sizeMiB; i++) writeSync(fd, chunk);
  closeSync(fd);
  const bytes = sizeMiB << 20;
  hashFileSync(big, ['sha256']); // warm the page cache
  const buffer = Buffer.allocUnsafe(1 << 20);
  const [r1, t1] = time(() => hashFileSync(big, ['sha256'], { buffer }));
  const [r2, t2] = time(() => spawnSync('sha256sum', [big], { encoding: 'utf8' }));
  const [, t3] = time(() => hashFileSync(big, ['sha256'], { buffer, verity: 'sha256' }));
  const [, t4] = time(() => hashFileSync(big, ['sha256', 'sha1', 'sha512'], { buffer }));
  const same = r2.stdout.split(' ')[0] === toHex(r1.digests.get('sha256')!);
  console.log(`single file, ${sizeMiB} MiB (page cache):`);
  console.log(
    `  imakit sha256 (readSync, 1 MiB buffer) ${mibps(bytes, t1).padStart(12)}  ${t1.toFixed(0)} ms`,
  );
  console.log(
    `  sha256sum                              ${mibps(bytes, t2).padStart(12)}  ${t2.toFixed(0)} ms  (digests equal: ${same})`,
  );
  console.log(
    `  imakit sha256 + fs-verity, one pass    ${mibps(bytes, t3).padStart(12)}  ${t3.toFixed(0)} ms`,
  );
  console.log(
    `  imakit sha256 + sha1 + sha512, one pass${mibps(bytes, t4).padStart(12)}  ${t4.toFixed(0)} ms`,
  );
  rmSync(big);

  // 2. many small files
  const paths: string[] = [];
  for (let i = 0; i < nFiles; i++) {
    const p = join(dir, `f${i}`);
    writeFileSync(p, randomBytes(fileKiB << 10));
    paths.push(p);
  }
  const total = nFiles * (fileKiB << 10);
  for (const p of paths) hashFileSync(p, ['sha256'], { buffer }); // warm
  const [, ts] = time(() => {
    for (const p of paths) hashFileSync(p, ['sha256'], { buffer });
  });
  console.log(`${nFiles} files x ${fileKiB} KiB, sha256:`);
  console.log(
    `  single thread                          ${mibps(total, ts).padStart(12)}  ${ts.toFixed(0)} ms  ${(nFiles / (ts / 1000)).toFixed(0)} files/s`,
  );
  for (const workers of [...new Set([1, 2, availableParallelism()])]) {
    const pool = HashPool.create({ workers });
    await Promise.all(paths.slice(0, 50).map((p) => pool.hash(p, ['sha256']))); // start-up
    const t0 = performance.now();
    await Promise.all(paths.map((p) => pool.hash(p, ['sha256'])));
    const tp = performance.now() - t0;
    await pool.close();
    console.log(
      `  pool, ${workers} worker(s)`.padEnd(41) +
        `${mibps(total, tp).padStart(12)}  ${tp.toFixed(0)} ms  ${(nFiles / (tp / 1000)).toFixed(0)} files/s`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
