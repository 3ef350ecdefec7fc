/**
 * TPML_PCR_SELECTION / TPMS_PCR_SELECTION (TPM 2.0 Part 2 §10.6.2, §10.9.7):
 *   u32 count ‖ count × (u16 hash ‖ u8 sizeofSelect ‖ sizeofSelect bytes of bitmap)
 * Bit i of byte j selects PCR 8j+i.
 *
 * The decoded value keeps `sizeofSelect` so a selection re-encodes byte for byte, and keeps the
 * banks in wire order: a quote's pcrDigest is computed in exactly this order (tpm.md gotcha 8).
 *
 * Also here: the `sha256:0-7,10+sha1:0` text form that tpm2-tools and `imakit quote verify
 * --require` use.
 */
import { CodecError } from '../../errors.ts';
import { hashAlgoByTpmAlg, findHashAlgo } from '../hash/hash-algo.ts';
import type { TpmReader, TpmWriter } from './marshal.ts';
import { decodeAll, encodeWith } from './marshal.ts';
import { tpmAlgName } from './constants.ts';

/** Most banks a selection may list (TPM's HASH_COUNT is at most a handful). */
export const MAX_PCR_BANKS = 16;
/** Largest sizeofSelect accepted: 4 bytes = 32 PCRs (PC Client TPMs have 24, PCR_SELECT_MAX 3). */
export const MAX_PCR_SELECT_SIZE = 4;
/** Default sizeofSelect for encoding (PCR_SELECT_MIN for a 24-PCR TPM). */
export const DEFAULT_PCR_SELECT_SIZE = 3;

/** One bank of a selection. */
export interface PcrBankSelection {
  /** TPM_ALG_ID of the bank */
  readonly hashAlg: number;
  /** bytes in the bitmap on the wire (3 on a 24-PCR TPM) */
  readonly sizeofSelect: number;
  /** selected PCR indices, ascending */
  readonly pcrs: readonly number[];
}

/** A TPML_PCR_SELECTION: banks in wire order. */
export type PcrSelection = readonly PcrBankSelection[];

/** Read a TPML_PCR_SELECTION from `r`. @throws CodecError E_CODEC_TOO_LARGE / E_CODEC_TRUNCATED / E_CODEC_BAD_VALUE */
export function readPcrSelection(r: TpmReader, field = 'pcrSelect'): PcrSelection {
  const at = r.offset;
  const count = r.u32(`${field}.count`);
  if (count > MAX_PCR_BANKS)
    r.fail('E_CODEC_TOO_LARGE', `${count} banks exceeds the maximum ${MAX_PCR_BANKS}`, `${field}.count`, at);
  const banks: PcrBankSelection[] = [];
  for (let i = 0; i < count; i++) {
    const f = `${field}[${i}]`;
    const hashAlg = r.u16(`${f}.hash`);
    const sizeAt = r.offset;
    const sizeofSelect = r.u8(`${f}.sizeofSelect`);
    if (sizeofSelect > MAX_PCR_SELECT_SIZE)
      r.fail(
        'E_CODEC_TOO_LARGE',
        `sizeofSelect ${sizeofSelect} exceeds ${MAX_PCR_SELECT_SIZE}`,
        `${f}.sizeofSelect`,
        sizeAt,
      );
    const bits = r.bytesView(sizeofSelect, `${f}.pcrSelect`);
    const pcrs: number[] = [];
    for (let j = 0; j < bits.length; j++)
      for (let b = 0; b < 8; b++) if (bits[j]! & (1 << b)) pcrs.push(j * 8 + b);
    banks.push(Object.freeze({ hashAlg, sizeofSelect, pcrs: Object.freeze(pcrs) }));
  }
  return Object.freeze(banks);
}

/** Write a TPML_PCR_SELECTION. @throws RangeError for a PCR outside the bank's sizeofSelect */
export function writePcrSelection(w: TpmWriter, sel: PcrSelection): void {
  if (sel.length > MAX_PCR_BANKS) throw new RangeError(`more than ${MAX_PCR_BANKS} banks`);
  w.u32(sel.length);
  for (const bank of sel) {
    const n = bank.sizeofSelect;
    if (!Number.isInteger(n) || n < 0 || n > MAX_PCR_SELECT_SIZE)
      throw new RangeError(`sizeofSelect ${n} out of range`);
    const bits = new Uint8Array(n);
    for (const p of bank.pcrs) {
      if (!Number.isInteger(p) || p < 0 || p >= n * 8)
        throw new RangeError(`PCR ${p} does not fit sizeofSelect ${n}`);
      bits[p >> 3]! |= 1 << (p & 7);
    }
    w.u16(bank.hashAlg).u8(n).bytes(bits);
  }
}

/** Decode a whole TPML_PCR_SELECTION. @throws CodecError (also E_CODEC_TRAILING) */
export function decodePcrSelection(bytes: Uint8Array): PcrSelection {
  return decodeAll(bytes, (r) => readPcrSelection(r), 'TPML_PCR_SELECTION');
}

/** Encode a TPML_PCR_SELECTION. */
export function encodePcrSelection(sel: PcrSelection): Uint8Array {
  return encodeWith((w) => writePcrSelection(w, sel));
}

/** Bank name (`sha256`) of a TPM_ALG_ID, or the TPM name (`0x0099`) when it is not a known hash. */
export function bankName(hashAlg: number): string {
  return hashAlgoByTpmAlg(hashAlg)?.name ?? tpmAlgName(hashAlg);
}

/**
 * Parse the text form `sha256:0-7,10+sha1:0,1` (tpm2-tools' `-l`; banks separated by `+` or
 * whitespace; ranges allowed). Banks keep the order given; indices come out ascending and unique.
 * A bank named twice is merged.
 * @throws CodecError E_CODEC_BAD_TEXT naming the token
 * @example parsePcrSelectionText('sha256:0-7,10') // [{hashAlg: 0x000b, sizeofSelect: 3, pcrs: [0..7, 10]}]
 */
export function parsePcrSelectionText(text: string, sizeofSelect = DEFAULT_PCR_SELECT_SIZE): PcrSelection {
  const parts = text.split(/[+\s]+/).filter((p) => p !== '');
  if (parts.length === 0) bad('empty PCR selection', text, 0);
  const order: number[] = [];
  const sets = new Map<number, Set<number>>();
  let pos = 0;
  for (const part of parts) {
    pos = text.indexOf(part, pos);
    const m = /^([A-Za-z0-9_-]+):(.*)$/.exec(part);
    if (!m) bad(`expected BANK:PCRS, got '${part}'`, part, pos);
    const algo = findHashAlgo(m[1]!.toLowerCase());
    if (!algo || algo.tpmAlg === null) bad(`unknown PCR bank '${m[1]}'`, m[1]!, pos);
    const alg = algo.tpmAlg;
    let set = sets.get(alg);
    if (!set) {
      set = new Set();
      sets.set(alg, set);
      order.push(alg);
    }
    for (const item of m[2]!.split(',')) {
      const r = /^(\d{1,2})(?:-(\d{1,2}))?$/.exec(item);
      if (!r) bad(`bad PCR index or range '${item}'`, item, pos);
      const lo = Number(r[1]);
      const hi = r[2] === undefined ? lo : Number(r[2]);
      if (hi < lo || hi >= sizeofSelect * 8) bad(`PCR range '${item}' out of bounds`, item, pos);
      for (let i = lo; i <= hi; i++) set.add(i);
    }
  }
  return Object.freeze(
    order.map((alg) =>
      Object.freeze({
        hashAlg: alg,
        sizeofSelect,
        pcrs: Object.freeze([...sets.get(alg)!].sort((a, b) => a - b)),
      }),
    ),
  );
}

/** Render a selection as `sha256:0,1,2+sha1:10` (tpm2-tools' form). */
export function formatPcrSelection(sel: PcrSelection): string {
  return sel.map((b) => `${bankName(b.hashAlg)}:${b.pcrs.join(',')}`).join('+');
}

function bad(detail: string, token: string, offset: number): never {
  throw new CodecError('E_CODEC_BAD_TEXT', detail, { offset, token, field: 'pcrSelection' });
}
