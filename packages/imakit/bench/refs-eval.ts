/**
 * Benchmark: evaluate an N-entry (default 100,000) `ima-ng` list, sha256 PCR replay included,
 * against an N-path reference set: in-process (replay + evaluation, and evaluation alone) and as a
 * whole command (`imakit log verify LIST --refs FILE --pcrs …`, with the compact imakit file and
 * with the Keylime JSON policy), side by side with Keylime 7.14's own `process_measurement_list`
 * (the peers driver `ima_verify.py`, when Keylime is set up here: KEYLIME_PEERS=dir of the peers
 * scripts, default ../../../shared/peers/keylime relative to this package, and /tmp/keylime-src).
 * Then references from a rootfs of F (default 50,000) small files: files/s and MiB/s.
 * Every command runs under /usr/bin/time, RUNS times (default 5; medians): wall, CPU (user+sys) and
 * peak RSS; the whole commands round-robin (one run of each per round), so a change of the machine's
 * load hits imakit and Keylime alike. The machine may be shared: the load average is printed;
 * compare CPU seconds when it is high. Then imakit and Keylime side by side against issue 12's target: the whole command at >= 10x
 * Keylime's entries per CPU-second and <= 1/3 of its peak RSS, both measured in this run.
 * Usage: node --import tsx bench/refs-eval.ts [entries] [rootfsFiles] [runs]
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { encodeBinaryList, type UntrustedEntry } from '../src/core/ima-list/binary.ts';
import { renderAsciiList } from '../src/core/ima-list/ascii.ts';
import { verifyMeasurementList, bytesSource } from '../src/core/ima-list/verify.ts';
import { RefsEvaluator } from '../src/core/refs/evaluate.ts';
import { ReferenceSetBuilder } from '../src/core/refs/reference-set.ts';
import { decodeRefsBinary, encodeRefsBinary } from '../src/core/refs/refs-binary.ts';
import { writeKeylimePolicy } from '../src/core/refs/keylime-policy.ts';
import { nativeHashes } from '../src/host/workers/native-hash.ts';

const N = Number(process.argv[2] ?? 100_000);
const FILES = Number(process.argv[3] ?? 50_000);
const RUNS = Number(process.argv[4] ?? 5);
const pkg = resolve(import.meta.dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'imakit-refs-bench-'));

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v);
  return b;
}
function imaNg(digest: Uint8Array, path: string): Uint8Array {
  const d = Buffer.concat([Buffer.from('sha256:\0'), digest]);
  const n = Buffer.from(path + '\0');
  return Buffer.concat([u32(d.length), d, u32(n.length), n]);
}

// --- inputs: list (binary + ascii), PCR 10 sha256, Keylime policy, imakit compact set
const entries: UntrustedEntry[] = [];
const b = new ReferenceSetBuilder({ hashAlgo: 'sha256', logHashAlgo: 'sha1' });
let pcr = Buffer.alloc(32);
for (let i = 0; i < N; i++) {
  const digest = new Uint8Array(randomBytes(32));
  const path =
    i === 0
      ? 'boot_aggregate'
      : `/usr/lib/synth/d${String(Math.floor(i / 1000)).padStart(3, '0')}/f${String(i).padStart(6, '0')}.so`;
  const data = imaNg(digest, path);
  entries.push({
    index: i,
    offset: 0,
    pcr: 10,
    digest: createHash('sha1').update(data).digest(),
    templateName: 'ima-ng',
    templateData: data,
  });
  pcr = createHash('sha256').update(pcr).update(createHash('sha256').update(data).digest()).digest();
  if (i === 0) b.addBootAggregate({ algo: 'sha256', digest, provenance: { kind: 'list' } });
  else b.addDigest(path, { algo: 'sha256', digest, provenance: { kind: 'rootfs' } });
}
const set = b.build();
const listBin = encodeBinaryList(entries, { endian: 'le', digestSize: 20, bank: 'sha1' });
writeFileSync(join(dir, 'list.bin'), listBin);
writeFileSync(join(dir, 'list.ascii'), renderAsciiList(entries));
writeFileSync(join(dir, 'pcrs-sha256.txt'), `PCR-10: ${pcr.toString('hex')}\n`);
writeFileSync(join(dir, 'pcr10-sha256.hex'), pcr.toString('hex') + '\n');
writeFileSync(join(dir, 'policy.json'), writeKeylimePolicy(set).text);
const compact = encodeRefsBinary(set);
writeFileSync(join(dir, 'refs.imr'), compact);
const mib = (n: number): string => (n / 1048576).toFixed(1);
console.log(
  `inputs: ${N} entries (list ${mib(listBin.length)} MiB), policy.json ${mib(readFileSync(join(dir, 'policy.json')).length)} MiB, refs.imr ${mib(compact.length)} MiB; load average ${loadavg()
    .map((x) => x.toFixed(1))
    .join(' ')}`,
);

// --- compact-set load time: 100k (this set) and 1M paths (made here, not evaluated)
{
  const loadMs = (bytes: Uint8Array, full: boolean): number => {
    let best = Infinity;
    for (let k = 0; k < 5; k++) {
      const t0 = process.hrtime.bigint();
      decodeRefsBinary(bytes, { full });
      best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e6);
    }
    return best;
  };
  const big = new ReferenceSetBuilder({ hashAlgo: 'sha256' });
  const dg = new Uint8Array(32);
  for (let i = 0; i < 1_000_000; i++) {
    dg[0] = i & 0xff;
    dg[1] = (i >> 8) & 0xff;
    dg[2] = i >> 16;
    big.addDigest(
      `/usr/lib/synth/d${String(Math.floor(i / 1000)).padStart(4, '0')}/f${String(i).padStart(7, '0')}.so`,
      {
        algo: 'sha256',
        digest: dg,
        provenance: { kind: 'rootfs' },
      },
    );
  }
  writeFileSync(join(dir, 'refs-1m.imr'), encodeRefsBinary(big.build()));
  for (const [label, file] of [
    [`${N} paths`, 'refs.imr'],
    ['1,000,000 paths', 'refs-1m.imr'],
  ] as const) {
    const t0 = process.hrtime.bigint();
    const bytes = readFileSync(join(dir, file));
    const readMs = Number(process.hrtime.bigint() - t0) / 1e6;
    console.log(
      `compact load, ${label} (${mib(bytes.length)} MiB): read ${readMs.toFixed(1)} ms, decode ${loadMs(bytes, false).toFixed(2)} ms (integer checks; full check ${loadMs(bytes, true).toFixed(1)} ms)`,
    );
  }
}

// --- in-process
{
  const t0 = process.hrtime.bigint();
  const loaded = decodeRefsBinary(readFileSync(join(dir, 'refs.imr')));
  const t1 = process.hrtime.bigint();
  const ev = new RefsEvaluator(loaded, {});
  const c0 = process.cpuUsage();
  const t2 = process.hrtime.bigint();
  const v = await verifyMeasurementList(bytesSource(listBin), {
    expected: new Map([['sha256', new Map([[10, new Uint8Array(pcr)]])]]),
    hashes: nativeHashes(),
    onEntry: (c) => ev.feedCursor(c),
  });
  const t3 = process.hrtime.bigint();
  const cpu = process.cpuUsage(c0);
  const s = ev.summary();
  const ev2 = new RefsEvaluator(loaded, {});
  const t4 = process.hrtime.bigint();
  for (const e of entries) ev2.feedEntry(e);
  const t5 = process.hrtime.bigint();
  const sec = (a: bigint, z: bigint): number => Number(z - a) / 1e9;
  console.log(
    `in-process: compact set load ${(sec(t0, t1) * 1000).toFixed(1)} ms (${set.digests.size} paths)`,
  );
  console.log(
    `in-process: replay sha256 + evaluate ${sec(t2, t3).toFixed(3)} s wall, ${((cpu.user + cpu.system) / 1e6).toFixed(3)} s CPU, ${Math.round(N / sec(t2, t3))} entries/s; replay ${v.status}, ${s.allowed} allowed, ${s.refused} refused`,
  );
  console.log(
    `in-process: evaluation alone ${sec(t4, t5).toFixed(3)} s, ${Math.round(N / sec(t4, t5))} entries/s; peak RSS so far ${mib(process.resourceUsage().maxRSS * 1024)} MiB`,
  );
}

// --- whole commands under /usr/bin/time
interface Timed {
  wall: number;
  cpu: number;
  rss: number;
  status: number;
  out: string;
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
interface Candidate {
  readonly label: string;
  readonly cmd: string;
  readonly args: string[];
}
/** One run under /usr/bin/time. */
function runOnce(c: Candidate): Timed {
  const r = spawnSync('/usr/bin/time', ['-f', '@@ %e %U %S %M', c.cmd, ...c.args], {
    encoding: 'utf8',
    cwd: pkg,
    maxBuffer: 256 << 20,
  });
  const m = /@@ ([\d.]+) ([\d.]+) ([\d.]+) (\d+)/.exec(r.stderr);
  if (!m) throw new Error(`${c.label}: no timing\n${r.stderr}`);
  return {
    wall: Number(m[1]),
    cpu: Number(m[2]) + Number(m[3]),
    rss: Number(m[4]) / 1024,
    status: r.status ?? -1,
    out: r.stdout,
  };
}
/**
 * `runs` rounds (default RUNS), one run of each candidate per round (round-robin: a change of the
 * machine's load hits them alike); medians of wall, CPU and peak RSS, each taken on its own.
 */
function timedRounds(cands: readonly Candidate[], runs = RUNS): Timed[] {
  const all: Timed[][] = cands.map(() => []);
  for (let k = 0; k < runs; k++) cands.forEach((c, i) => all[i]!.push(runOnce(c)));
  return cands.map((c, i) => {
    const a = all[i]!;
    const x = {
      wall: median(a.map((t) => t.wall)),
      cpu: median(a.map((t) => t.cpu)),
      rss: median(a.map((t) => t.rss)),
      status: a[0]!.status,
      out: a[0]!.out,
    };
    console.log(
      `${c.label.padEnd(44)} ${x.wall.toFixed(2)} s wall  ${x.cpu.toFixed(2)} s CPU  ${Math.round(N / x.cpu)} entries/CPU-s  ${x.rss.toFixed(0)} MB peak  exit ${x.status}  (median of ${runs})`,
    );
    return x;
  });
}
const timed = (label: string, cmd: string, args: string[], runs = RUNS): Timed =>
  timedRounds([{ label, cmd, args }], runs)[0]!;
const pcrs = ['--pcrs', `sha256,${join(dir, 'pcrs-sha256.txt')}`];
// IMAKIT_BENCH_BIN: another launcher (a package built outside a tree whose build others keep stale)
const bin = process.env.IMAKIT_BENCH_BIN ?? 'bin/imakit.js';
const entry = spawnSync('node', [bin, '--version'], {
  cwd: pkg,
  encoding: 'utf8',
  env: { ...process.env, IMAKIT_LAUNCH_TRACE: '1' },
});
console.log(`${bin} runs ${entry.stderr.trim()}`);
const peers = process.env.KEYLIME_PEERS ?? resolve(pkg, '../../../shared/peers/keylime');
const haveKeylime = existsSync(join(peers, 'ima_verify.py')) && existsSync('/tmp/keylime-src');
const list = join(dir, 'list.bin');
const [oursRun, , , klRun] = timedRounds([
  {
    label: 'imakit log verify --refs refs.imr',
    cmd: 'node',
    args: [bin, 'log', 'verify', list, '--refs', join(dir, 'refs.imr'), ...pcrs],
  },
  {
    label: 'imakit log verify --refs policy.json (Keylime)',
    cmd: 'node',
    args: [bin, 'log', 'verify', list, '--refs', join(dir, 'policy.json'), ...pcrs],
  },
  {
    label: 'imakit log verify (replay only, no --refs)',
    cmd: 'node',
    args: [bin, 'log', 'verify', list, ...pcrs],
  },
  ...(haveKeylime
    ? [
        {
          label: 'Keylime 7.14 ima_verify.py (whole command)',
          cmd: '/usr/bin/python3',
          args: [
            join(peers, 'ima_verify.py'),
            join(dir, 'list.ascii'),
            '--policy',
            join(dir, 'policy.json'),
            '--pcr-file',
            join(dir, 'pcr10-sha256.hex'),
            '--bank',
            'sha256',
          ],
        },
      ]
    : []),
]);
const ours = oursRun!;
if (klRun !== undefined) {
  const kl = klRun;
  const t = JSON.parse(kl.out) as {
    verdict: string;
    timing: { verify_s: number; verify_cpu_s: number; policy_load_s: number };
  };
  console.log(
    `Keylime function only: verify ${t.timing.verify_s} s wall, ${t.timing.verify_cpu_s} s CPU (${Math.round(N / t.timing.verify_cpu_s)} entries/CPU-s), policy load ${t.timing.policy_load_s} s; verdict ${t.verdict}`,
  );
  // side by side, and against the target (issue 12: >= 10x Keylime per core, <= 1/3 of its memory)
  const row = (name: string, x: { wall: number; cpu: number; rss: number }): string =>
    `${name.padEnd(34)} ${x.wall.toFixed(2).padStart(6)} s ${x.cpu.toFixed(2).padStart(6)} s ${x.rss.toFixed(0).padStart(6)} MB ${String(Math.round(N / x.wall)).padStart(9)} ${String(Math.round(N / x.cpu)).padStart(9)}`;
  console.log(`\nwhole command, ${N} entries (medians)  wall      CPU  peak RSS  entries/s  per CPU-s`);
  console.log(row('imakit log verify --refs refs.imr', ours));
  console.log(row('Keylime 7.14 ima_verify.py', kl));
  console.log(
    `${'target: 10x Keylime CPU, 1/3 RSS'.padEnd(34)} ${'-'.padStart(6)}   ${(kl.cpu / 10).toFixed(2).padStart(6)} s ${(kl.rss / 3).toFixed(0).padStart(6)} MB ${'-'.padStart(9)} ${String(Math.round((10 * N) / kl.cpu)).padStart(9)}`,
  );
  const x = kl.cpu / ours.cpu;
  console.log(
    `imakit vs Keylime: ${x.toFixed(1)}x per CPU-s (target 10x: ${x >= 10 ? 'met' : `not met, ${((10 / x) * 100 - 100).toFixed(0)}% too slow`}), ${(kl.wall / ours.wall).toFixed(1)}x wall; peak RSS ${(ours.rss / kl.rss).toFixed(2)} of Keylime's (target 0.33: ${ours.rss <= kl.rss / 3 ? 'met' : `not met, ${(ours.rss - kl.rss / 3).toFixed(0)} MB over`})`,
  );
} else
  console.log(
    `Keylime not set up here (need ${peers}/ima_verify.py and /tmp/keylime-src: see the peers README); skipped`,
  );

// --- references from a rootfs
{
  const root = join(dir, 'rootfs');
  let bytes = 0;
  for (let i = 0; i < FILES; i++) {
    const d = join(root, 'usr', 'lib', `d${Math.floor(i / 500)}`);
    if (i % 500 === 0) mkdirSync(d, { recursive: true });
    const size = 1024 + ((i * 7919) % 16384);
    writeFileSync(join(d, `f${i}.so`), randomBytes(size));
    bytes += size;
  }
  const r = timed(
    `imakit refs from-rootfs (${FILES} files, ${mib(bytes)} MiB)`,
    'node',
    [bin, 'refs', 'from-rootfs', root, '--out', join(dir, 'rootfs.imr')],
    1,
  );
  console.log(
    `rootfs: ${Math.round(FILES / r.wall)} files/s, ${(bytes / 1048576 / r.wall).toFixed(1)} MiB/s wall (Keylime's generator: ~6 s for 50k files, peers README/landscape)`,
  );
}
rmSync(dir, { recursive: true, force: true });
