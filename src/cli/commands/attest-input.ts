/**
 * Inputs shared by `imakit log`, `imakit eventlog` and `imakit boot-aggregate`: PCR values from
 * files (evmctl `PCR-NN:`, `tpm2_pcrread` output, JSON) or the TPM's sysfs, list files (binary or
 * ascii, detected), atomic output files, and a byte-based progress bar.
 */
import { readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import cliProgress from 'cli-progress';
import { fromSystemError, ImakitError } from '../../errors.ts';
import { toHex } from '../../core/bytes.ts';
import { findHashAlgo } from '../../core/hash-algo.ts';
import { mergePcrValues, parsePcrText, type PcrValues } from '../../core/pcr-values.ts';
import { DEFAULT_TPM_SYSFS, readSysfsPcrs } from '../../host/tpm-sysfs.ts';
import type { CliIo } from '../io.ts';

/** Collect a repeatable option. */
export const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

/** Read a whole file. @throws ImakitError E_IO_READ naming the path */
export function readInput(path: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (e) {
    throw fromSystemError(e, 'E_IO_READ', path);
  }
}

/**
 * PCR values from `--pcrs [ALG,]FILE` (any supported format; ALG names the bank of a `PCR-NN:`
 * file) and `--pcrs-json FILE`. Returns undefined when none was given.
 * @throws CodecError E_PCR_FILE naming the file and line
 */
export function readPcrOptions(
  specs: readonly string[],
  jsonFiles: readonly string[] = [],
): PcrValues | undefined {
  const parts: PcrValues[] = [];
  for (const spec of [...specs, ...jsonFiles]) {
    const m = /^([A-Za-z0-9_-]+),(.+)$/.exec(spec);
    const bank = m && findHashAlgo(m[1]!.toLowerCase()) ? m[1]!.toLowerCase() : undefined;
    const file = bank ? m![2]! : spec;
    const text = new TextDecoder().decode(readInput(file));
    try {
      parts.push(parsePcrText(text, bank));
    } catch (e) {
      if (e instanceof ImakitError)
        throw new ImakitError(e.code, e.message, { ...e.context, path: file }, { cause: e });
      throw e;
    }
  }
  return parts.length > 0 ? mergePcrValues(...parts) : undefined;
}

/**
 * The TPM's PCRs from sysfs (`<dir>/pcr-<alg>/N`).
 * @throws ImakitError E_TOOL_MISSING naming the path when the TPM exposes no PCRs
 */
export function readTpmPcrs(dir = DEFAULT_TPM_SYSFS, banks?: readonly string[]): PcrValues {
  try {
    return readSysfsPcrs({ dir, banks });
  } catch (e) {
    const path = e instanceof ImakitError && e.context.path !== undefined ? e.context.path : dir;
    throw new ImakitError(
      'E_TOOL_MISSING',
      `no TPM PCRs readable at ${path} (needs a TPM 2.0 with kernel 5.11+ pcr-<alg> files, or give --pcrs)`,
      { path },
      { cause: e },
    );
  }
}

/** True when `bytes` look like an ascii measurement list rather than a binary one. */
export function looksAscii(bytes: Uint8Array): boolean {
  const head = new TextDecoder('latin1').decode(bytes.subarray(0, 200));
  return /^ ?\d{1,2} [0-9a-f]{40,128} \S+/.test(head);
}

/** Write a file atomically (temporary file + rename). @throws ImakitError E_IO_WRITE */
export function writeAtomic(path: string, data: Uint8Array | string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, path);
  } catch (e) {
    throw fromSystemError(e, 'E_IO_WRITE', path);
  }
}

/** File size, or 0 when unknown (securityfs files report 0). */
export function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** Hex of PCR values for JSON output. */
export function pcrJson(v: PcrValues): Record<string, Record<string, string>> {
  const o: Record<string, Record<string, string>> = {};
  for (const [bank, m] of v) {
    o[bank] = {};
    for (const [i, x] of [...m].sort((a, b) => a[0] - b[0])) o[bank]![String(i)] = toHex(x);
  }
  return o;
}

/** A byte-progress bar on a terminal (stderr), shown after one second; no-op otherwise. */
export function byteProgress(
  io: CliIo,
  label: string,
  total: number,
  json: boolean,
): { update(bytes: number): void; stop(): void } {
  if (!io.isTTY || json || total === 0) return { update() {}, stop() {} };
  const started = Date.now();
  let bar: cliProgress.SingleBar | undefined;
  const mib = (n: number): number => Math.round((n / 1048576) * 10) / 10;
  return {
    update(bytes) {
      if (!bar && Date.now() - started > 1000) {
        bar = new cliProgress.SingleBar(
          {
            stream: process.stderr,
            format: `${label} [{bar}] {percentage}% {value}/{total} MiB, {eta_formatted} left`,
            hideCursor: true,
            clearOnComplete: true,
            fps: 10,
          },
          cliProgress.Presets.shades_classic,
        );
        bar.start(mib(total), 0);
      }
      bar?.update(mib(bytes));
    },
    stop() {
      bar?.stop();
    },
  };
}

/** Print JSON on stdout. */
export function printJson(io: CliIo, v: unknown): void {
  io.stdout(
    JSON.stringify(
      v,
      (_k, x: unknown) => (x instanceof Uint8Array ? toHex(x) : x instanceof Map ? Object.fromEntries(x) : x),
      2,
    ) + '\n',
  );
}
