/**
 * CLI helpers shared by `imakit log`, `imakit eventlog` and `imakit boot-aggregate`: repeatable
 * options, JSON output and a byte-based progress bar. Their inputs (PCR files, TPM PCRs, list
 * files) are read by host/attest-input.ts.
 */
import cliProgress from 'cli-progress';
import { toHex } from '../../core/bytes/bytes.ts';
import type { PcrValues } from '../../core/tcg/pcr-values.ts';
import type { CliIo } from '../io.ts';

/** Collect a repeatable option. */
export const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

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
