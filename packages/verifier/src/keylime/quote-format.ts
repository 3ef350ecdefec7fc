/**
 * Keylime's quote string (keylime/tpm/tpm_main.py `_get_quote_parameters`, tpm_util.py
 * `__get_pcrs_from_blob`): `r` ‖ base64(TPMS_ATTEST) `:` base64(TPMT_SIGNATURE) `:` base64(PCR blob),
 * where the PCR blob is tpm2-tools' in-memory dump (little endian, not marshalled):
 *   u32 count ‖ 16 × TPMS_PCR_SELECTION {u16 hash, u8 sizeofSelect, u8 pcrSelect[4], 1 pad} (8 bytes)
 *   ‖ u32 n ‖ n × TPML_DIGEST {u32 count, 8 × TPM2B_DIGEST {u16 size, 64-byte buffer}}
 * The values follow each selected PCR of each listed bank in order, packed eight to a TPML_DIGEST.
 *
 * The blob is unsigned. Keylime numbers the PCRs from the blob's selection (README "behaviour
 * imakit must not copy" 1); here the blob gives only the values, and the caller numbers them from
 * the selection inside the signed TPMS_ATTEST (`valuesForSignedSelection`).
 * Pure; strict: every byte accounted for, sizes checked before they are used.
 */
import {
  decodeTpmsAttest,
  findHashAlgo,
  hashAlgoByTpmAlg,
  type PcrSelection,
  type PcrValues,
} from 'imakit/core';
import type { ImakitError } from 'imakit/errors';

/** A Keylime evidence field that cannot be decoded: which field, where, and why. */
export class KeylimeFormatError extends Error {
  readonly field: string;
  readonly offset: number | undefined;
  constructor(field: string, message: string, offset?: number) {
    super(`${field}: ${message}`);
    this.name = 'KeylimeFormatError';
    this.field = field;
    this.offset = offset;
  }
}

export interface KeylimeQuote {
  readonly attest: Uint8Array;
  readonly signature: Uint8Array;
  readonly pcrBlob: Uint8Array;
}

/** The PCR blob decoded: the (unsigned) selection it claims, and the values in order. */
export interface PcrBlob {
  readonly selection: readonly { readonly hashAlg: number; readonly pcrs: readonly number[] }[];
  readonly values: readonly Uint8Array[];
}

const B64 = /^[A-Za-z0-9+/]*={0,2}$/;
const MAX_QUOTE_CHARS = 64 * 1024;

/** Strict base64 (padding optional, no whitespace): Python's b64decode would skip junk silently. */
export function base64Field(s: string, field: string): Uint8Array {
  if (!B64.test(s) || s.length % 4 === 1) throw new KeylimeFormatError(field, 'is not base64');
  return new Uint8Array(Buffer.from(s, 'base64'));
}

/** Split Keylime's `r<attest>:<sig>:<pcrs>` string (zlib-compressed quotes, `c`/`d`, are refused). */
export function parseKeylimeQuote(quote: string): KeylimeQuote {
  if (quote.length > MAX_QUOTE_CHARS)
    throw new KeylimeFormatError('data.quote', `longer than ${MAX_QUOTE_CHARS} characters`);
  if (quote[0] !== 'r')
    throw new KeylimeFormatError(
      'data.quote',
      `must start with 'r' (a TPM 2.0 quote), not ${JSON.stringify(quote.slice(0, 1))}`,
      0,
    );
  const parts = quote.slice(1).split(':');
  if (parts.length < 3)
    throw new KeylimeFormatError(
      'data.quote',
      `needs 3 ':'-separated parts (attest:signature:pcrs), has ${parts.length}`,
    );
  const [a, s, p] = parts as [string, string, string];
  return {
    attest: base64Field(a, 'data.quote[attest]'),
    signature: base64Field(s, 'data.quote[signature]'),
    pcrBlob: base64Field(p, 'data.quote[pcrs]'),
  };
}

const SEL_SLOTS = 16;
const SEL_SIZE = 8;
const DIGESTS_PER_LIST = 8;
const TPMU_HA = 64;
const LIST_SIZE = 4 + DIGESTS_PER_LIST * (2 + TPMU_HA);

/** Decode tpm2-tools' PCR blob. @throws KeylimeFormatError naming the offset */
export function decodePcrBlob(b: Uint8Array): PcrBlob {
  const field = 'data.quote[pcrs]';
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const need = (at: number, n: number, what: string): void => {
    if (at + n > b.length)
      throw new KeylimeFormatError(
        field,
        `truncated: ${what} needs ${n} bytes at ${at}, blob is ${b.length}`,
        at,
      );
  };
  need(0, 4 + SEL_SLOTS * SEL_SIZE + 4, 'the selection');
  const count = dv.getUint32(0, true);
  if (count > SEL_SLOTS)
    throw new KeylimeFormatError(field, `selection count ${count} exceeds ${SEL_SLOTS}`, 0);
  const selection: { hashAlg: number; pcrs: number[] }[] = [];
  for (let i = 0; i < count; i++) {
    const at = 4 + i * SEL_SIZE;
    const hashAlg = dv.getUint16(at, true);
    const size = b[at + 2]!;
    if (size > 4) throw new KeylimeFormatError(field, `bank ${i}: sizeofSelect ${size} exceeds 4`, at + 2);
    const pcrs: number[] = [];
    for (let j = 0; j < size; j++)
      for (let bit = 0; bit < 8; bit++) if (b[at + 3 + j]! & (1 << bit)) pcrs.push(j * 8 + bit);
    selection.push({ hashAlg, pcrs });
  }
  let o = 4 + SEL_SLOTS * SEL_SIZE;
  const lists = dv.getUint32(o, true);
  o += 4;
  if (b.length - o !== lists * LIST_SIZE)
    throw new KeylimeFormatError(
      field,
      `${lists} digest lists need ${lists * LIST_SIZE} bytes after offset ${o}, the blob has ${b.length - o}`,
      o,
    );
  const values: Uint8Array[] = [];
  for (let l = 0; l < lists; l++) {
    o += 4; // TPML_DIGEST.count: tpm2-tools writes it, Keylime ignores it; the sizes below decide
    for (let d = 0; d < DIGESTS_PER_LIST; d++) {
      const size = dv.getUint16(o, true);
      if (size > TPMU_HA) throw new KeylimeFormatError(field, `digest size ${size} exceeds ${TPMU_HA}`, o);
      if (size > 0) values.push(b.slice(o + 2, o + 2 + size));
      o += 2 + TPMU_HA;
    }
  }
  return { selection, values };
}

/** A TPM bank id as core names it (`sha256`), or `0x....` when unknown. */
export function bankName(hashAlg: number): string {
  return hashAlgoByTpmAlg(hashAlg)?.name ?? `0x${hashAlg.toString(16).padStart(4, '0')}`;
}

/** True when `name` is a TPM bank algorithm (Keylime's `algorithms.Hash.is_recognized`; not md5). */
export function knownHashAlg(name: string): boolean {
  const a = findHashAlgo(name);
  return a !== undefined && a.tpmAlg !== null && a.name === name;
}

/**
 * Number the blob's values from the SIGNED selection (in its wire order, PCRs ascending: the order
 * the TPM hashed them). The blob's own selection must say the same; a blob that claims other PCRs
 * than the quote signed is refused, whatever its values.
 * @throws KeylimeFormatError when the blob's selection or value count disagrees with the quote
 */
export function valuesForSignedSelection(signed: PcrSelection, blob: PcrBlob): PcrValues {
  const claimed = blob.selection.filter((s) => s.pcrs.length > 0);
  const quoted = signed.filter((s) => s.pcrs.length > 0);
  const text = (sel: readonly { hashAlg: number; pcrs: readonly number[] }[]): string =>
    sel.map((s) => `${bankName(s.hashAlg)}:${s.pcrs.join(',')}`).join('+') || '(none)';
  if (text(claimed) !== text(quoted))
    throw new KeylimeFormatError(
      'data.quote[pcrs]',
      `the PCR blob claims ${text(claimed)} but the quote signed ${text(quoted)}`,
    );
  const out = new Map<string, Map<number, Uint8Array>>();
  let i = 0;
  for (const s of quoted) {
    const m = out.get(bankName(s.hashAlg)) ?? new Map<number, Uint8Array>();
    out.set(bankName(s.hashAlg), m);
    for (const pcr of s.pcrs) {
      const v = blob.values[i++];
      if (v === undefined) break;
      m.set(pcr, v);
    }
  }
  const want = quoted.reduce((n, s) => n + s.pcrs.length, 0);
  if (blob.values.length !== want)
    throw new KeylimeFormatError(
      'data.quote[pcrs]',
      `the quote selects ${want} PCRs but the blob carries ${blob.values.length} values`,
    );
  return out;
}

/**
 * The PCR selection inside a quote's TPMS_ATTEST: what the caller numbers the blob's values by
 * (`valuesForSignedSelection`). Decoded only: the signature is checked by the caller's verifyQuote.
 * @throws KeylimeFormatError when the attestation is not a quote; the imakit error when it does
 * not decode (Keylime's verifier reports the two differently; `attestFieldError` names the field)
 */
export function quotedSelection(attest: Uint8Array): PcrSelection {
  const a = decodeTpmsAttest(attest);
  if (a.attested.kind !== 'quote')
    throw new KeylimeFormatError('data.quote[attest]', `is a ${a.attested.kind} attestation, not a quote`);
  return a.attested.pcrSelect;
}

/** A TPMS_ATTEST that does not decode, as an error in the quote's attest field (with its offset). */
export function attestFieldError(e: ImakitError): KeylimeFormatError {
  return new KeylimeFormatError('data.quote[attest]', e.message, (e.toJSON() as { offset?: number }).offset);
}
