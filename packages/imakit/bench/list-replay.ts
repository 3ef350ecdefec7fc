/**
 * Benchmark: replay a 1,000,000-entry ima-ng binary list over sha1 + sha256 with imakit (the
 * library path with and without the worker offload, `node bin/imakit.js evmctl ima_measurement` and
 * `imakit log verify`) and with evmctl on the same list; also the ascii path and a 2,000-event TCG
 * log. Every replay runs in its own process under /usr/bin/time, interleaved with evmctl, for
 * `rounds` rounds: prints best and spread of entries/s, the ratio to evmctl of the same round, peak
 * RSS and CPU seconds. The machine may be shared: the load average is printed with the figures.
 * Usage: node --import tsx bench/list-replay.ts [entries] [rounds]
 *        node --import tsx bench/list-replay.ts --gen DIR [entries]   (write the list only)
 *        (internal) node --import tsx bench/list-replay.ts --lib DIR offload|single|js
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, openSync, writeSync, closeSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createHash } from 'node:crypto';
import { FastSha1, FastSha256 } from '../src/core/ima-list/fast-hash.ts';
import { availableParallelism, loadavg } from 'node:os';
import { verifyMeasurementList } from '../src/core/ima-list/verify.ts';
import { readFileChunks } from '../src/host/attest/list-file.ts';
import { workerOffload } from '../src/host/attest/list-replay-offload.ts';
import { hasNativeHash, nativeHashes } from '../src/host/workers/native-hash.ts';
import { chooseEntry } from '../bin/entry.js';
import { parseEvmctlPcrs, renderEvmctlPcrs } from '../src/core/tcg/pcr-values.ts';
import { parseAsciiList } from '../src/core/ima-list/ascii.ts';
import { encodeAgileEvent, encodeSpecIdHeader, parseEventLog } from '../src/core/tcg/event-log.ts';
import { replayEventLog } from '../src/core/tcg/replay.ts';

function readExpected(d: string) {
  return new Map([
    ['sha1', parseEvmctlPcrs(readFileSync(join(d, 'pcrs_sha1'), 'utf8'), 'sha1')],
    ['sha256', parseEvmctlPcrs(readFileSync(join(d, 'pcrs_sha256'), 'utf8'), 'sha256')],
  ]);
}

if (process.argv[2] === '--lib') {
  // child mode: the library path alone in a fresh process (its own peak RSS)
  const d = process.argv[3]!;
  const v = await verifyMeasurementList(() => readFileChunks(join(d, 'list'), undefined, 0, true), {
    expected: readExpected(d),
    offload: process.argv[4] === 'offload' ? workerOffload() : undefined,
    // js: the TypeScript hashers of core/ima-list/fast-hash.ts, to show what the native ones add
    hashes: process.argv[4] === 'js' ? undefined : nativeHashes(),
  });
  process.stderr.write(`${v.status} ${v.entries} ${v.templateDigests}\n`);
  process.exit(v.status === 'pass' ? 0 : 1);
}

// --gen DIR N: only write the list and PCR files into DIR (for profiling one path by hand)
const genOnly = process.argv[2] === '--gen';
const N = Number(process.argv[genOnly ? 4 : 2] ?? 1_000_000);
const ROUNDS = Number(process.argv[3] ?? 3);
const dir = genOnly ? process.argv[3]! : mkdtempSync(join(tmpdir(), 'imakit-bench-'));
const bin = resolve(import.meta.dirname, '../bin/imakit.js');
const self = import.meta.filename;

function generate(): void {
  const s1 = new FastSha1();
  const s2 = new FastSha256();
  const p1 = new Uint8Array(20);
  const p2 = new Uint8Array(32);
  const d2 = new Uint8Array(32);
  const fd = openSync(join(dir, 'list'), 'w');
  const buf = Buffer.alloc(1 << 20);
  let pos = 0;
  for (let i = 0; i < N; i++) {
    const name = Buffer.from(`/usr/lib/x86_64-linux-gnu/libexample-${i}.so.1\0`);
    const fd1 = 40;
    const tdLen = 4 + fd1 + 4 + name.length;
    const entLen = 4 + 20 + 4 + 6 + 4 + tdLen;
    if (pos + entLen > buf.length) {
      writeSync(fd, buf, 0, pos);
      pos = 0;
    }
    const e = pos;
    buf.writeUInt32LE(10, e);
    buf.writeUInt32LE(6, e + 24);
    buf.write('ima-ng', e + 28, 'latin1');
    buf.writeUInt32LE(tdLen, e + 34);
    const td = e + 38;
    buf.writeUInt32LE(fd1, td);
    buf.write('sha256:\0', td + 4, 'latin1');
    buf.writeUInt32LE(i, td + 12);
    buf.fill(i & 0xff, td + 16, td + 44);
    buf.writeUInt32LE(name.length, td + 44);
    name.copy(buf, td + 48);
    s1.hashInto(buf, td, tdLen, buf, e + 4);
    s1.hash2Into(p1, 0, 20, buf, e + 4, 20, p1, 0);
    s2.hashInto(buf, td, tdLen, d2, 0);
    s2.hash2Into(p2, 0, 32, d2, 0, 32, p2, 0);
    pos += entLen;
  }
  writeSync(fd, buf, 0, pos);
  closeSync(fd);
  writeFileSync(join(dir, 'pcrs_sha1'), renderEvmctlPcrs(new Map([[10, p1]]), 20));
  writeFileSync(join(dir, 'pcrs_sha256'), renderEvmctlPcrs(new Map([[10, p2]]), 32));
}

interface Run {
  s: number;
  cpu: number;
  rssMiB: number;
  status: number;
  err: string;
}

function timed(cmd: string, args: string[]): Run {
  const r = spawnSync('/usr/bin/time', ['-f', '%e %U %S %M', cmd, ...args], {
    encoding: 'utf8',
    maxBuffer: 1 << 26,
  });
  const last = r.stderr.trim().split('\n').pop()!.split(' ');
  return {
    s: Number(last[0]),
    cpu: Number(last[1]) + Number(last[2]),
    rssMiB: Number(last[3]) / 1024,
    status: r.status ?? -1,
    err: r.stderr.slice(-300),
  };
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

generate();
if (genOnly) process.exit(0);
const list = join(dir, 'list');
const pcrArgs = [
  '--ignore-violations',
  '--pcrs',
  `sha1,${join(dir, 'pcrs_sha1')}`,
  '--pcrs',
  `sha256,${join(dir, 'pcrs_sha256')}`,
  list,
];
const tsxImport = ['--import', 'tsx'];
const tools: [string, () => Run][] = [
  ['evmctl 1.4 ima_measurement', () => timed('evmctl', ['ima_measurement', ...pcrArgs])],
  ['imakit library (worker offload)', () => timed('node', [...tsxImport, self, '--lib', dir, 'offload'])],
  ['imakit library (one thread)', () => timed('node', [...tsxImport, self, '--lib', dir, 'single'])],
  ['imakit library (1 thread, TS hash)', () => timed('node', [...tsxImport, self, '--lib', dir, 'js'])],
  ['imakit evmctl ima_measurement', () => timed('node', [bin, 'evmctl', 'ima_measurement', ...pcrArgs])],
  [
    'imakit log verify',
    () =>
      timed('node', [
        bin,
        'log',
        'verify',
        list,
        '--pcrs',
        `sha1,${join(dir, 'pcrs_sha1')}`,
        '--pcrs',
        `sha256,${join(dir, 'pcrs_sha256')}`,
      ]),
  ],
];
const runs = new Map<string, Run[]>(tools.map(([n]) => [n, []]));
const loads: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  loads.push(loadavg()[0]!);
  for (const [name, f] of tools) {
    const x = f();
    if (x.status !== 0) console.error(`${name}: exit ${x.status}: ${x.err}`);
    runs.get(name)!.push(x);
  }
}
console.log(
  `list: ${fmt(N)} ima-ng entries (SHA-1 list), sha1 + sha256 banks; ${ROUNDS} rounds, 1-min load average at round start: ${loads.map((l) => l.toFixed(1)).join(', ')} on ${availableParallelism()} cores`,
);
const entry = chooseEntry(resolve(import.meta.dirname, '..'), process.env);
console.log(
  `  CLI runs: ${entry.kind} (${entry.reason}); native hashers: ${hasNativeHash() ? 'yes' : 'no (addon not built)'}; library rows include tsx start-up`,
);
const ev = runs.get(tools[0]![0])!;
for (const [name] of tools) {
  const xs = runs.get(name)!;
  const rates = xs.map((x) => N / x.s);
  const ratios = xs.map((x, i) => ev[i]!.s / x.s);
  const best = Math.max(...rates);
  console.log(
    `  ${name.padEnd(32)} best ${fmt(best).padStart(9)} entries/s (spread ${fmt(Math.min(...rates))}-${fmt(best)})` +
      `  ratio to evmctl same round: best ${Math.max(...ratios).toFixed(2)}x (${ratios.map((q) => q.toFixed(2)).join(', ')})` +
      `  CPU ${Math.min(...xs.map((x) => x.cpu)).toFixed(2)} s  peak RSS ${Math.max(...xs.map((x) => x.rssMiB)).toFixed(0)} MiB`,
  );
}

// ascii path: 100k lines
const M = Math.min(N, 100_000);
let text = '';
for (let i = 0; i < M; i++)
  text += `10 ${createHash('sha1').update(String(i)).digest('hex')} ima-ng sha256:${createHash('sha256').update(String(i)).digest('hex')} /usr/bin/f${i}\n`;
const t1 = performance.now();
const parsed = parseAsciiList(text);
const aS = (performance.now() - t1) / 1000;
console.log(
  `ascii parse (rebuilds template data): ${fmt(parsed.length)} lines in ${aS.toFixed(2)} s = ${fmt(M / aS)} lines/s`,
);

// 2,000-event crypto-agile log
const parts: Uint8Array[] = [
  encodeSpecIdHeader([
    [4, 20],
    [0xb, 32],
  ]),
];
for (let i = 0; i < 2000; i++) {
  const data = Buffer.from(`event ${i}`);
  parts.push(
    encodeAgileEvent(
      i % 8,
      0x80000007,
      [
        [4, createHash('sha1').update(data).digest()],
        [0xb, createHash('sha256').update(data).digest()],
      ],
      data,
    ),
  );
}
const logBytes = new Uint8Array(Buffer.concat(parts));
const t2 = performance.now();
const rep = replayEventLog(parseEventLog(logBytes));
const eS = (performance.now() - t2) / 1000;
console.log(
  `event log: 2,000 events (sha1+sha256) parsed and replayed in ${(eS * 1000).toFixed(1)} ms (${rep.pcrs.size} banks)`,
);
rmSync(dir, { recursive: true, force: true });
