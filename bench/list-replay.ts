/**
 * Benchmark: replay a 1,000,000-entry ima-ng binary list over sha1 + sha256 with imakit (library
 * and `node bin/imakit.js evmctl ima_measurement`) and with evmctl on the same list; also the
 * ascii path and a 2,000-event TCG log. Prints entries/s, ratio and peak RSS.
 * Usage: node --import tsx bench/list-replay.ts [entries]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, openSync, writeSync, closeSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createHash } from 'node:crypto';
import { FastSha1, FastSha256 } from '../src/core/ima-list/fast-hash.ts';
import { verifyMeasurementList } from '../src/core/ima-list/verify.ts';
import { readFileChunks } from '../src/host/list-file.ts';
import { parseEvmctlPcrs, renderEvmctlPcrs } from '../src/core/pcr-values.ts';
import { parseAsciiList } from '../src/core/ima-list/ascii.ts';
import { encodeAgileEvent, encodeSpecIdHeader, parseEventLog } from '../src/core/tcg/event-log.ts';
import { replayEventLog } from '../src/core/tcg/replay.ts';

const N = Number(process.argv[2] ?? 1_000_000);
const dir = mkdtempSync(join(tmpdir(), 'imakit-bench-'));
const bin = resolve(import.meta.dirname, '../bin/imakit.js');

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

function timed(cmd: string, args: string[]): { s: number; rssMiB: number; status: number; err: string } {
  const r = spawnSync('/usr/bin/time', ['-f', '%e %M', cmd, ...args], {
    encoding: 'utf8',
    maxBuffer: 1 << 26,
  });
  const last = r.stderr.trim().split('\n').pop()!.split(' ');
  return {
    s: Number(last[0]),
    rssMiB: Number(last[1]) / 1024,
    status: r.status ?? -1,
    err: r.stderr.slice(-300),
  };
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

generate();
const list = join(dir, 'list');
const expected = new Map([
  ['sha1', parseEvmctlPcrs(readFileSync(join(dir, 'pcrs_sha1'), 'utf8'), 'sha1')],
  ['sha256', parseEvmctlPcrs(readFileSync(join(dir, 'pcrs_sha256'), 'utf8'), 'sha256')],
]);
const t0 = performance.now();
const v = await verifyMeasurementList(() => readFileChunks(list), { expected });
const libS = (performance.now() - t0) / 1000;
const libRss = process.memoryUsage().rss / 2 ** 20;
const pcrArgs = [
  '--ignore-violations',
  '--pcrs',
  `sha1,${join(dir, 'pcrs_sha1')}`,
  '--pcrs',
  `sha256,${join(dir, 'pcrs_sha256')}`,
  list,
];
const ev = timed('evmctl', ['ima_measurement', ...pcrArgs]);
const cli = timed('node', [bin, 'evmctl', 'ima_measurement', ...pcrArgs]);
console.log(`list: ${fmt(N)} ima-ng entries, sha1 + sha256 banks`);
console.log(
  `  imakit library : ${v.status} ${libS.toFixed(2)} s  ${fmt(N / libS)} entries/s  rss ${libRss.toFixed(0)} MiB (process, after run)`,
);
console.log(
  `  imakit evmctl  : status ${cli.status} ${cli.s.toFixed(2)} s  ${fmt(N / cli.s)} entries/s  peak RSS ${cli.rssMiB.toFixed(0)} MiB`,
);
console.log(
  `  evmctl 1.4     : status ${ev.status} ${ev.s.toFixed(2)} s  ${fmt(N / ev.s)} entries/s  peak RSS ${ev.rssMiB.toFixed(0)} MiB`,
);
console.log(
  `  ratio imakit CLI / evmctl: ${(ev.s / cli.s).toFixed(2)}x   library / evmctl: ${(ev.s / libS).toFixed(2)}x`,
);

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
