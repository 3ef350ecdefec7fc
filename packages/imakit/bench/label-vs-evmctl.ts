/**
 * Benchmark (issue 2): label a tree with RSA-2048 + sha256 signatures, `imakit label` (through
 * bin/imakit.js, as a user runs it) against `evmctl ima_sign -r` on an identical copy, in one run.
 * Prints files/s, MiB/s, the ratio, the peak RSS of each (/usr/bin/time -v), and single-file sha256
 * throughput against `sha256sum`. Targets: imakit >= 1.5x evmctl, RSS < 200 MiB, sha256 >= sha256sum.
 *
 * Run: node --import tsx bench/label-vs-evmctl.ts
 * Env: BENCH_FILES (default 20000), BENCH_MIB (default 1100, total size), BENCH_DIR (parent of the
 *      temp tree; must support security.* xattrs — default os.tmpdir()), BENCH_XATTR_USER=1 to use
 *      user.ima for both tools, BENCH_BIG_MIB (single-file test size, default 512).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const FILES = Number(process.env.BENCH_FILES ?? 20000);
const TOTAL_MIB = Number(process.env.BENCH_MIB ?? 1100);
const BIG_MIB = Number(process.env.BENCH_BIG_MIB ?? 512);
const XATTR_USER = process.env.BENCH_XATTR_USER === '1';
const base = mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), 'imakit-bench-'));

interface RunResult {
  seconds: number;
  rssMiB: number;
  status: number;
  stderrTail: string;
}

/** Run under /usr/bin/time -v; peak RSS from "Maximum resident set size (kbytes)". */
function timed(cmd: string, args: string[]): RunResult {
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-v', cmd, ...args], { encoding: 'utf8', maxBuffer: 1 << 30 });
  const seconds = (performance.now() - t0) / 1000;
  const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr ?? '');
  return {
    seconds,
    rssMiB: m ? Number(m[1]) / 1024 : NaN,
    status: r.status ?? -1,
    stderrTail: (r.stderr ?? '').split('\n').slice(0, 5).join('\n'),
  };
}

/** Mixed sizes: 70% small (1-16 KiB), 25% medium (16-256 KiB), 5% large; scaled to TOTAL_MIB. */
function sizes(): number[] {
  let seed = 12345;
  const rnd = (): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
  const raw = Array.from({ length: FILES }, () => {
    const u = rnd();
    if (u < 0.7) return 1024 + rnd() * 15 * 1024;
    if (u < 0.95) return 16 * 1024 + rnd() * 240 * 1024;
    return 512 * 1024 + rnd() * 4 * 1024 * 1024;
  });
  const sum = raw.reduce((a, b) => a + b, 0);
  const scale = (TOTAL_MIB * 1024 * 1024) / sum;
  return raw.map((s) => Math.max(1, Math.round(s * scale)));
}

function makeTree(dir: string): number {
  const pool = randomBytes(8 << 20);
  let total = 0;
  sizes().forEach((size, i) => {
    const sub = join(dir, `d${i % 100}`, `e${i % 7}`);
    if (i < 700) mkdirSync(sub, { recursive: true });
    const fd = openSync(join(sub, `f${i}`), 'w');
    let left = size;
    let off = (i * 7919) % (pool.length - 1);
    while (left > 0) {
      const n = Math.min(left, pool.length - off);
      writeSync(fd, pool, off, n);
      left -= n;
      off = 0;
    }
    // make every file unique even when the pool slice repeats
    writeSync(fd, Buffer.from(`${i}`), 0, undefined, 0);
    closeSync(fd);
    total += size;
  });
  return total;
}

function main(): void {
  try {
    const key = join(base, 'rsa2048.pem');
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    writeFileSync(key, privateKey.export({ format: 'pem', type: 'pkcs8' }));

    const a = join(base, 'imakit');
    const b = join(base, 'evmctl');
    mkdirSync(a);
    process.stderr.write(`creating ${FILES} files, ~${TOTAL_MIB} MiB under ${a} …\n`);
    const bytes = makeTree(a);
    const cp = spawnSync('cp', ['-a', a, b]);
    if (cp.status !== 0) throw new Error('cp -a failed');
    spawnSync('sync');
    const mib = bytes / (1 << 20);

    // warm both trees equally into the page cache, so neither run pays the first read alone
    for (const d of [a, b]) spawnSync('sh', ['-c', `find ${d} -type f -exec cat {} + > /dev/null`]);

    const xu = XATTR_USER ? ['--xattr-user'] : [];
    const ev = timed('evmctl', ['ima_sign', '-r', '-a', 'sha256', '--key', key, ...xu, b]);
    const im = timed(process.execPath, [
      join(repo, 'bin/imakit.js'),
      'label',
      '--sign',
      '--key',
      key,
      '-a',
      'sha256',
      ...(XATTR_USER ? ['-x'] : []),
      a,
    ]);
    if (ev.status !== 0) process.stderr.write(`evmctl exited ${ev.status}: ${ev.stderrTail}\n`);
    if (im.status !== 0) process.stderr.write(`imakit exited ${im.status}: ${im.stderrTail}\n`);

    // spot check: both wrote the same (deterministic RSA) value
    const name = XATTR_USER ? 'user.ima' : 'security.ima';
    const probe = 'd5/e5/f5';
    const ga = spawnSync('getfattr', ['--only-values', '-n', name, join(a, probe)]).stdout;
    const gb = spawnSync('getfattr', ['--only-values', '-n', name, join(b, probe)]).stdout;
    const same = ga.length > 0 && Buffer.compare(ga, gb) === 0;

    // single file sha256: imakit's hasher (host/file-hash through `imakit evmctl ima_hash -n`) vs sha256sum
    const big = join(base, 'big.bin');
    const fd = openSync(big, 'w');
    const chunk = randomBytes(1 << 20);
    for (let i = 0; i < BIG_MIB; i++) writeSync(fd, chunk);
    closeSync(fd);
    spawnSync('cat', [big], { stdio: ['ignore', 'ignore', 'ignore'] });
    const s1 = timed('sha256sum', [big]);
    const s2 = timed(process.execPath, [join(repo, 'bin/imakit.js'), 'evmctl', 'ima_hash', '-n', big]);

    const row = (n: string, r: RunResult): string =>
      `| ${n.padEnd(22)} | ${r.seconds.toFixed(2).padStart(8)} | ${(FILES / r.seconds).toFixed(0).padStart(8)} | ${(mib / r.seconds).toFixed(1).padStart(7)} | ${r.rssMiB.toFixed(1).padStart(8)} |`;
    const out = [
      `tree: ${FILES} files, ${mib.toFixed(0)} MiB (mixed 1 KiB – 4.5 MiB), RSA-2048 + sha256, ${XATTR_USER ? 'user.ima' : 'security.ima'}`,
      '',
      '| tool                   |   time s |  files/s |   MiB/s | RSS MiB  |',
      '| ---------------------- | -------- | -------- | ------- | -------- |',
      row('evmctl ima_sign -r', ev),
      row('imakit label --sign', im),
      '',
      `ratio imakit/evmctl (files/s): ${(ev.seconds / im.seconds).toFixed(2)}x (target >= 1.5x)`,
      `identical security.ima on ${probe}: ${same ? 'yes' : 'NO'}`,
      '',
      `single file sha256, ${BIG_MIB} MiB in page cache (process time incl. startup):`,
      `| sha256sum              | ${s1.seconds.toFixed(2)} s | ${(BIG_MIB / s1.seconds).toFixed(0)} MiB/s |`,
      `| imakit evmctl ima_hash | ${s2.seconds.toFixed(2)} s | ${(BIG_MIB / s2.seconds).toFixed(0)} MiB/s |`,
    ];
    process.stdout.write(out.join('\n') + '\n');
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

main();
