/**
 * PCR values for quote verification (`imakit quote verify --pcrs`), in three forms:
 *  - text lines `bank:index hex` (`sha256:10 9ef8…`, an optional `0x`; `#` comments, blank lines);
 *  - `tpm2_pcrread` YAML, or the `pcrs:` section of `tpm2_quote`'s standard output;
 *  - the binary "serialized" file of `tpm2_quote -o` / `tpm2_pcrread -F serialized` (tpm.md
 *    gotcha 6): a little-endian C-struct dump of TPML_PCR_SELECTION (u32 count, 16 × {u16 hash,
 *    u8 sizeofSelect, u8 pcrSelect[5]}) then u32 n and n × TPML_DIGEST (u32 count, 8 ×
 *    {u16 size, u8 buffer[64]}), digests in selection order.
 *
 * Values are UNTRUSTED claims until a quote's signed digest covers them.
 */
import { CodecError } from '../../errors.ts';
import { fromHex, latin1 } from '../bytes/bytes.ts';
import { findHashAlgo, hashAlgoByTpmAlg } from '../hash/hash-algo.ts';
import { PCR_COUNT, parseTpm2Pcrread } from './pcr-values.ts';

/** Sizes of the tpm2-tools serialized structures (tss2's TPML_PCR_SELECTION and TPML_DIGEST). */
const SER_SELECTION_BYTES = 4 + 16 * 8;
const SER_DIGEST_LIST_BYTES = 4 + 8 * 66;
/** tpm2-tools writes at most this many TPML_DIGESTs (one per 8 PCRs of a 24-PCR, 4-bank TPM). */
const SER_MAX_DIGEST_LISTS = 16;

type Values = Map<string, Map<number, Uint8Array>>;

/**
 * Parse quote PCR values in any of the three forms (detected).
 * @throws CodecError E_PCR_FILE naming the line or offset
 * @example parseQuotePcrs(utf8('sha256:10 9ef814b4…\n')).get('sha256')?.get(10)
 */
export function parseQuotePcrs(data: Uint8Array): Values {
  if (isSerialized(data)) return parseSerializedPcrs(data);
  const text = latin1(data);
  const first = text.split('\n').find((l) => l.trim() !== '' && !l.trim().startsWith('#')) ?? '';
  if (/^\s*[A-Za-z0-9_-]+:\d+\s/.test(first)) return parseBankIndexLines(text);
  const pcrsAt = /^pcrs:\s*$/m.exec(text);
  if (pcrsAt) {
    const rest = text.slice(pcrsAt.index + pcrsAt[0].length).split('\n');
    const section: string[] = [];
    for (const l of rest) {
      if (l.trim() !== '' && !/^\s/.test(l)) break;
      section.push(l);
    }
    return parseTpm2Pcrread(section.join('\n'));
  }
  return parseTpm2Pcrread(text);
}

/** Parse `bank:index hex` lines. @throws CodecError E_PCR_FILE */
export function parseBankIndexLines(text: string): Values {
  const out: Values = new Map();
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '').trim();
    if (line === '' || line.startsWith('#')) return;
    const m = /^([A-Za-z0-9_-]+):(\d{1,2})\s+(?:0x)?([0-9a-fA-F]+)$/.exec(line);
    if (!m) bad(`expected 'bank:index hex', got '${line.slice(0, 40)}'`, i + 1);
    const algo = findHashAlgo(m[1]!.toLowerCase());
    if (!algo || algo.tpmAlg === null) bad(`unknown bank '${m[1]}'`, i + 1);
    const idx = Number(m[2]);
    if (idx >= PCR_COUNT) bad(`PCR index ${idx} out of range`, i + 1);
    const v = fromHex(m[3]!, `${algo.name}:${idx}`);
    if (v.length !== algo.size)
      bad(`${algo.name}:${idx} has ${v.length} bytes, expected ${algo.size}`, i + 1);
    let bank = out.get(algo.name);
    if (!bank) out.set(algo.name, (bank = new Map()));
    if (bank.has(idx)) bad(`${algo.name}:${idx} given twice`, i + 1);
    bank.set(idx, v);
  });
  if (out.size === 0) bad('no PCR values', 1);
  return out;
}

function isSerialized(b: Uint8Array): boolean {
  if (b.length < SER_SELECTION_BYTES + 4) return false;
  const extra = b.length - SER_SELECTION_BYTES - 4;
  return extra % SER_DIGEST_LIST_BYTES === 0 && b[1] === 0 && b[2] === 0 && b[3] === 0 && b[0]! <= 16;
}

/** Parse the tpm2-tools serialized PCR file. @throws CodecError E_PCR_FILE naming the offset */
export function parseSerializedPcrs(b: Uint8Array): Values {
  if (b.length < SER_SELECTION_BYTES + 4) badAt('too short for a serialized PCR file', 0);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const count = dv.getUint32(0, true);
  if (count > 16) badAt(`selection count ${count} exceeds 16`, 0);
  const nLists = dv.getUint32(SER_SELECTION_BYTES, true);
  if (nLists > SER_MAX_DIGEST_LISTS)
    badAt(`${nLists} digest lists exceeds ${SER_MAX_DIGEST_LISTS}`, SER_SELECTION_BYTES);
  if (b.length !== SER_SELECTION_BYTES + 4 + nLists * SER_DIGEST_LIST_BYTES)
    badAt(
      `file is ${b.length} bytes, ${nLists} digest lists need ${SER_SELECTION_BYTES + 4 + nLists * SER_DIGEST_LIST_BYTES}`,
      0,
    );
  // the digests, flattened in list order
  const digests: Uint8Array[] = [];
  for (let l = 0; l < nLists; l++) {
    const at = SER_SELECTION_BYTES + 4 + l * SER_DIGEST_LIST_BYTES;
    const n = dv.getUint32(at, true);
    if (n > 8) badAt(`digest list ${l} count ${n} exceeds 8`, at);
    for (let k = 0; k < n; k++) {
      const dAt = at + 4 + k * 66;
      const size = dv.getUint16(dAt, true);
      if (size > 64) badAt(`digest size ${size} exceeds 64`, dAt);
      digests.push(b.subarray(dAt + 2, dAt + 2 + size));
    }
  }
  const out: Values = new Map();
  let next = 0;
  for (let i = 0; i < count; i++) {
    const at = 4 + i * 8;
    const alg = dv.getUint16(at, true);
    const sizeofSelect = b[at + 2]!;
    if (sizeofSelect > 5) badAt(`sizeofSelect ${sizeofSelect} exceeds 5`, at + 2);
    const algo = hashAlgoByTpmAlg(alg);
    if (!algo) badAt(`unknown bank algorithm 0x${alg.toString(16)}`, at);
    const bank = out.get(algo.name) ?? new Map<number, Uint8Array>();
    out.set(algo.name, bank);
    for (let j = 0; j < sizeofSelect; j++)
      for (let bit = 0; bit < 8; bit++) {
        if (!(b[at + 3 + j]! & (1 << bit))) continue;
        const d = digests[next++];
        if (!d) badAt('fewer digests than selected PCRs', SER_SELECTION_BYTES);
        if (d.length !== algo.size)
          badAt(`${algo.name}:${j * 8 + bit} digest has ${d.length} bytes`, SER_SELECTION_BYTES);
        bank.set(j * 8 + bit, d);
      }
  }
  if (next !== digests.length)
    badAt(`${digests.length - next} digests beyond the selection`, SER_SELECTION_BYTES);
  return out;
}

function bad(detail: string, line: number): never {
  throw new CodecError('E_PCR_FILE', detail, { offset: 0, line });
}
function badAt(detail: string, offset: number): never {
  throw new CodecError('E_PCR_FILE', detail, { offset });
}
