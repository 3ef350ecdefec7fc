/**
 * Benchmark (issue 11): quote verifications per second, in process, for RSA-2048 (RSASSA) and
 * ECDSA P-256 AKs over 10 PCRs in two banks (sha256:0-7,10 + sha1:10), side by side with
 * `tpm2_checkquote` (one process per quote) and Keylime 7.14's `tpm_util.checkquote` (in process,
 * through ../shared/peers/keylime/quote_check.py when present) on the same quotes. The quotes come
 * from a software TPM and tpm2_quote. Target: >= 20,000 RSA verifications/s on one core.
 *
 * Run: node --import tsx bench/quote-verify.ts
 * Env: BENCH_N (in-process verifications per round, default 20000), BENCH_PROC (process runs,
 *      default 30), KEYLIME_PEER_DIR (default ../shared/peers/keylime from the repository root).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fromHex } from '../src/core/bytes/bytes.ts';
import { parseQuotePcrs } from '../src/core/tcg/quote-pcrs.ts';
import { parsePcrSelectionText } from '../src/core/tpm/pcr-selection.ts';
import { decodeTpm2bPublic } from '../src/core/tpm/public.ts';
import { prepareQuoteAk, verifyQuote } from '../src/core/tpm/quote-verify.ts';
import {
  makeQuote,
  makeQuoteWorld,
  read,
  type AkFiles,
  type QuoteFiles,
} from '../test/unit/core/tpm/quote-fixtures.ts';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const N = Number(process.env.BENCH_N ?? 20000);
const PROC = Number(process.env.BENCH_PROC ?? 30);
const KEYLIME = process.env.KEYLIME_PEER_DIR ?? resolve(repo, '../../../shared/peers/keylime');

/** Best of 3 rounds: verifications per wall-clock second and per CPU second (the machine is shared). */
function inProcess(ak: AkFiles, q: QuoteFiles): { wall: number; cpu: number } {
  const k = prepareQuoteAk(decodeTpm2bPublic(read(ak.pub)));
  const input = {
    attest: read(q.msg),
    signature: read(q.sig),
    nonce: fromHex(q.nonce),
    pcrs: parseQuotePcrs(read(q.pcrsTxt)),
    require: parsePcrSelectionText('sha256:0-7'),
  };
  if (verifyQuote(k, input).status !== 'pass') throw new Error('quote does not verify');
  let wall = 0;
  let cpu = 0;
  for (let round = 0; round < 3; round++) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    for (let i = 0; i < N; i++) if (verifyQuote(k, input).status !== 'pass') throw new Error('fail');
    const c = process.cpuUsage(c0);
    wall = Math.max(wall, N / ((performance.now() - t0) / 1000));
    cpu = Math.max(cpu, N / ((c.user + c.system) / 1e6));
  }
  return { wall, cpu };
}

function perProcess(cmd: string, args: string[], runs: number): number {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    times.push(performance.now() - t0);
    if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr}`);
  }
  times.sort((a, b) => a - b);
  return times[times.length >> 1]!;
}

function keylime(ak: AkFiles, q: QuoteFiles, nonceFile: string): { perS: number; note: string } | string {
  const script = join(KEYLIME, 'quote_check.py');
  if (!existsSync(script)) return `not run: ${script} absent`;
  const r = spawnSync(
    '/usr/bin/python3',
    [
      script,
      'checkquote',
      '--ak',
      ak.pem,
      '--quote',
      q.msg,
      '--sig',
      q.sig,
      '--pcrblob',
      q.pcrsBin,
      '--nonce-file',
      nonceFile,
      '--repeat',
      '300',
    ],
    { encoding: 'utf8' },
  );
  try {
    const j = JSON.parse(r.stdout) as { valid?: boolean; timing?: { median_s: number; best_s: number } };
    if (j.valid !== true)
      return `fails: ${JSON.stringify((j as { error?: string }).error ?? r.stdout.slice(0, 120))}`;
    if (!j.timing) return `not run: ${r.stdout.slice(0, 200)} ${r.stderr.slice(-300)}`;
    return {
      perS: 1 / j.timing.median_s,
      note: `median ${(j.timing.median_s * 1000).toFixed(3)} ms, exit ${r.status}`,
    };
  } catch {
    return `not run: ${r.stderr.slice(-300)}`;
  }
}

const w = await makeQuoteWorld();
try {
  // Keylime compares extraData with its nonce string's bytes: quote with an ASCII nonce for it.
  const nonceText = 'imakitbench12345';
  const hexNonce = Buffer.from(nonceText).toString('hex');
  const rows: string[][] = [];
  for (const [label, ak, selection] of [
    ['RSA-2048 RSASSA, two banks', w.rsa, undefined],
    ['ECDSA P-256, two banks', w.ecc, undefined],
    // Keylime hashes only the signature's bank (tpm_util.__hash_pcr_banks): one bank for it too
    ['RSA-2048 RSASSA, sha256:0-9', w.rsa, 'sha256:0,1,2,3,4,5,6,7,8,9'],
    ['ECDSA P-256, sha256:0-9', w.ecc, 'sha256:0,1,2,3,4,5,6,7,8,9'],
  ] as const) {
    const q = makeQuote(
      w.tpm,
      `bench-${ak.handle}-${selection ? 1 : 2}`,
      ak,
      hexNonce,
      selection ? { selection } : {},
    );
    const nonceFile = join(w.tpm.dir, 'bench.nonce');
    writeFileSync(nonceFile, nonceText);
    const ours = inProcess(ak, q);
    const cq = perProcess(
      'tpm2_checkquote',
      ['-u', ak.pub, '-m', q.msg, '-s', q.sig, '-f', q.pcrsBin, '-g', 'sha256', '-q', hexNonce],
      PROC,
    );
    const cli = perProcess(
      process.execPath,
      [
        join(repo, 'bin/imakit.js'),
        'quote',
        'verify',
        '--attest',
        q.msg,
        '--signature',
        q.sig,
        '--ak',
        ak.pub,
        '--nonce',
        hexNonce,
        '--pcrs',
        q.pcrsBin,
      ],
      Math.min(PROC, 10),
    );
    const kl = keylime(ak, q, nonceFile);
    rows.push([
      label,
      `${Math.round(ours.wall).toLocaleString('en')} /s wall, ${Math.round(ours.cpu).toLocaleString('en')} /CPU-s`,
      `${(1000 / cq).toFixed(0)} /s (${cq.toFixed(1)} ms/process)`,
      typeof kl === 'string' ? kl : `${Math.round(kl.perS).toLocaleString('en')} /s (${kl.note})`,
      `${cli.toFixed(0)} ms/process`,
    ]);
  }
  console.log(
    `quote verification, 10 PCRs (two banks: sha256:0-7,10 + sha1:10; one bank: sha256:0-9); N=${N} best of 3 in process; load ${loadavg()[0]!.toFixed(1)} on ${availableParallelism()} cores`,
  );
  console.log(
    '| AK | imakit in process | tpm2_checkquote (per process, median) | Keylime checkquote (in process) | imakit CLI (per process) |',
  );
  console.log('|---|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.join(' | ')} |`);
} finally {
  w.tpm.stop();
}
