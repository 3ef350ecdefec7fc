/**
 * PCR value inputs: evmctl `--pcrs` files (`PCR-NN: hex`, also TPM 1.2 sysfs style with spaces
 * between bytes; formats.md §2.2), `tpm2_pcrread` output (`sha256:\n  0 : 0x…`), and a JSON map
 * `{ "sha256": { "10": "hex" } }`. The TPM 2.0 sysfs reader lives in src/host/tpm-sysfs.ts.
 *
 * PCR values from a file are UNTRUSTED claims: replay proves a list matches them, not that they
 * came from a TPM (a quote does that).
 */
import { CodecError } from '../../errors.ts';
import { fromHex, toHex } from '../bytes/bytes.ts';
import { findHashAlgo } from '../hash/hash-algo.ts';

/** PCR values per bank: bank name → PCR index → value. */
export type PcrValues = ReadonlyMap<string, ReadonlyMap<number, Uint8Array>>;

/** Number of PCRs of a PC Client TPM. */
export const PCR_COUNT = 24;

function bankSize(bank: string, line: number): number {
  const a = findHashAlgo(bank);
  if (!a) throw new CodecError('E_PCR_FILE', `unknown bank '${bank}'`, { offset: 0, line, token: bank });
  return a.size;
}

function checkSize(bank: string, v: Uint8Array, line: number, pcr: number): Uint8Array {
  const n = bankSize(bank, line);
  if (v.length !== n)
    throw new CodecError('E_PCR_FILE', `PCR ${pcr}: ${v.length} bytes, a ${bank} PCR has ${n}`, {
      offset: 0,
      line,
    });
  return v;
}

/**
 * Parse evmctl's `--pcrs` format: `PCR-NN: <hex>` lines (a space may precede each byte, TPM 1.2
 * sysfs style). The bank is given by the caller (evmctl's `--pcrs ALG,FILE`).
 * @throws CodecError E_PCR_FILE naming the line
 */
export function parseEvmctlPcrs(text: string, bank: string): Map<number, Uint8Array> {
  const out = new Map<number, Uint8Array>();
  const lines = text.split('\n');
  let seen = 0;
  lines.forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '') return;
    const m = /^PCR-(\d\d):((?: ?[0-9a-fA-F]{2})+) *$/.exec(line);
    if (!m)
      throw new CodecError('E_PCR_FILE', `expected 'PCR-NN: <hex>', got '${line.slice(0, 40)}'`, {
        offset: 0,
        line: i + 1,
      });
    const pcr = Number(m[1]);
    if (pcr >= PCR_COUNT)
      throw new CodecError('E_PCR_FILE', `PCR index ${pcr} out of range`, { offset: 0, line: i + 1 });
    const v = fromHex(m[2]!.replace(/ /g, ''), `PCR-${m[1]}`);
    out.set(pcr, checkSize(bank, v, i + 1, pcr));
    seen++;
  });
  if (seen === 0) throw new CodecError('E_PCR_FILE', 'no PCR-NN lines', { offset: 0, line: 1 });
  return out;
}

/**
 * Parse `tpm2_pcrread` output: a bank header (`  sha256:`) followed by `    N : 0xHEX` lines.
 * @throws CodecError E_PCR_FILE naming the line
 */
export function parseTpm2Pcrread(text: string): Map<string, Map<number, Uint8Array>> {
  const out = new Map<string, Map<number, Uint8Array>>();
  let bank: string | undefined;
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '') return;
    const h = /^\s*([a-z0-9_-]+):\s*$/.exec(line);
    if (h) {
      bank = h[1]!;
      bankSize(bank, i + 1);
      out.set(bank, new Map());
      return;
    }
    const m = /^\s*(\d+)\s*:\s*0x([0-9a-fA-F]+)\s*$/.exec(line);
    if (!m || bank === undefined)
      throw new CodecError(
        'E_PCR_FILE',
        `expected '<bank>:' or 'N : 0x<hex>', got '${line.trim().slice(0, 40)}'`,
        {
          offset: 0,
          line: i + 1,
        },
      );
    const pcr = Number(m[1]);
    if (pcr >= PCR_COUNT)
      throw new CodecError('E_PCR_FILE', `PCR index ${pcr} out of range`, { offset: 0, line: i + 1 });
    out.get(bank)!.set(pcr, checkSize(bank, fromHex(m[2]!, `pcr ${pcr}`), i + 1, pcr));
  });
  if (out.size === 0) throw new CodecError('E_PCR_FILE', 'no bank found', { offset: 0, line: 1 });
  return out;
}

/**
 * Parse a JSON map `{ "<bank>": { "<pcr>": "<hex>" } }` (the form `renderPcrJson` writes).
 * @throws CodecError E_PCR_FILE
 */
export function parsePcrJson(text: string): Map<string, Map<number, Uint8Array>> {
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch (e) {
    throw new CodecError('E_PCR_FILE', `not JSON: ${(e as Error).message}`, { offset: 0 });
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj))
    throw new CodecError('E_PCR_FILE', 'expected an object of banks', { offset: 0 });
  const out = new Map<string, Map<number, Uint8Array>>();
  for (const [bank, pcrs] of Object.entries(obj as Record<string, unknown>)) {
    bankSize(bank, 0);
    if (typeof pcrs !== 'object' || pcrs === null)
      throw new CodecError('E_PCR_FILE', `bank ${bank}: expected an object`, { offset: 0, token: bank });
    const m = new Map<number, Uint8Array>();
    for (const [k, v] of Object.entries(pcrs as Record<string, unknown>)) {
      const pcr = Number(k);
      if (!Number.isInteger(pcr) || pcr < 0 || pcr >= PCR_COUNT || typeof v !== 'string')
        throw new CodecError('E_PCR_FILE', `bank ${bank}: bad entry '${k}'`, { offset: 0, token: k });
      m.set(pcr, checkSize(bank, fromHex(v.replace(/^0x/, ''), `${bank}[${k}]`), 0, pcr));
    }
    out.set(bank, m);
  }
  return out;
}

/**
 * Parse PCR values in any supported format, detecting which: JSON, tpm2_pcrread, or evmctl
 * `PCR-NN:` (the latter needs `bank`).
 * @throws CodecError E_PCR_FILE when the text is in none of them
 */
export function parsePcrText(text: string, bank?: string): Map<string, Map<number, Uint8Array>> {
  const t = text.trimStart();
  if (t.startsWith('{')) return parsePcrJson(text);
  if (t.startsWith('PCR-')) return new Map([[bank ?? 'sha1', parseEvmctlPcrs(text, bank ?? 'sha1')]]);
  if (/^[a-z0-9_-]+:\s*$/m.test(t.split('\n')[0] ?? '')) return parseTpm2Pcrread(text);
  throw new CodecError('E_PCR_FILE', 'not a PCR file (expected PCR-NN:, tpm2_pcrread output or JSON)', {
    offset: 0,
    line: 1,
  });
}

/** Render PCR values as the JSON map parsePcrJson reads. */
export function renderPcrJson(v: PcrValues): Record<string, Record<string, string>> {
  const o: Record<string, Record<string, string>> = {};
  for (const [bank, m] of v) {
    o[bank] = {};
    for (const [pcr, val] of [...m].sort((a, b) => a[0] - b[0])) o[bank]![String(pcr)] = toHex(val);
  }
  return o;
}

/** Render one bank as an evmctl `--pcrs` file (24 lines, zero for absent PCRs). */
export function renderEvmctlPcrs(values: ReadonlyMap<number, Uint8Array>, size: number): string {
  let s = '';
  for (let i = 0; i < PCR_COUNT; i++)
    s += `PCR-${String(i).padStart(2, '0')}: ${toHex(values.get(i) ?? new Uint8Array(size))}\n`;
  return s;
}

/** Merge PCR maps (later ones win per bank and PCR). */
export function mergePcrValues(...all: PcrValues[]): Map<string, Map<number, Uint8Array>> {
  const out = new Map<string, Map<number, Uint8Array>>();
  for (const v of all)
    for (const [bank, m] of v) {
      const t = out.get(bank) ?? new Map<number, Uint8Array>();
      for (const [k, x] of m) t.set(k, x);
      out.set(bank, t);
    }
  return out;
}
