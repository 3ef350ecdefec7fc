/**
 * Read PCR values from the kernel's TPM sysfs files: TPM 2.0 `/sys/class/tpm/tpm0/pcr-<alg>/<n>`
 * (hex text, kernel 5.11+) and TPM 1.2 `/sys/class/tpm/tpm0/device/pcrs` (`PCR-NN: AA BB …`).
 * Paths are adapter defaults, not literals in logic (style.md practice 11).
 */
import { readdirSync } from 'node:fs';
import { readBoundedText } from '../fs/bounded-read.ts';
import { join } from 'node:path';
import { fromSystemError } from '../../errors.ts';
import { fromHex } from '../../core/bytes/bytes.ts';
import { findHashAlgo } from '../../core/hash/hash-algo.ts';
import { parseEvmctlPcrs, PCR_COUNT } from '../../core/tcg/pcr-values.ts';

/** Default sysfs directory of the first TPM. */
export const DEFAULT_TPM_SYSFS = '/sys/class/tpm/tpm0';

/**
 * Read every readable bank (or only `banks`) of the TPM at `dir`; PCRs given by `pcrs` (default all 24).
 * @throws ImakitError E_IO_READ when the TPM exposes no PCR banks
 */
export function readSysfsPcrs(
  opts: { dir?: string; banks?: readonly string[]; pcrs?: readonly number[] } = {},
): Map<string, Map<number, Uint8Array>> {
  const dir = opts.dir ?? DEFAULT_TPM_SYSFS;
  const out = new Map<string, Map<number, Uint8Array>>();
  let entries: string[] = [];
  try {
    entries = readdirSync(dir);
  } catch (e) {
    throw fromSystemError(e, 'E_IO_READ', dir);
  }
  const indexes = opts.pcrs ?? Array.from({ length: PCR_COUNT }, (_, i) => i);
  for (const d of entries) {
    const m = /^pcr-(.+)$/.exec(d);
    if (!m) continue;
    const a = findHashAlgo(m[1]!);
    if (!a || (opts.banks && !opts.banks.includes(a.name))) continue;
    const values = new Map<number, Uint8Array>();
    for (const i of indexes) {
      const p = join(dir, d, String(i));
      try {
        values.set(i, fromHex(readBoundedText(p, 'pcrs').trim(), p));
      } catch (e) {
        throw fromSystemError(e, 'E_IO_READ', p);
      }
    }
    out.set(a.name, values);
  }
  if (out.size === 0) {
    // TPM 1.2: one text file with the SHA-1 bank
    const p = join(dir, 'device', 'pcrs');
    try {
      out.set('sha1', parseEvmctlPcrs(readBoundedText(p, 'pcrs'), 'sha1'));
    } catch (e) {
      throw fromSystemError(e, 'E_IO_READ', p);
    }
  }
  return out;
}
