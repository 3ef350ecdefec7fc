/**
 * Keylime's pull-API shapes as a rust-keylime agent writes them (pure; the agent in
 * host/agent/keylime-api.ts does the I/O):
 *
 * - the quote string (rust-keylime keylime/src/tpm.rs `encode_quote_string`, read by Keylime's
 *   keylime/tpm/tpm_main.py `_get_quote_parameters`): `r` ‖ base64(TPMS_ATTEST) `:`
 *   base64(TPMT_SIGNATURE) `:` base64(PCR blob);
 * - the PCR blob (rust-keylime `pcrdata_to_vec`, read by Keylime's tpm_util.py
 *   `__get_pcrs_from_blob`): tpm2-tools' in-memory dump, little endian, not marshalled:
 *   u32 count ‖ 16 × TPMS_PCR_SELECTION {u16 hash, u8 sizeofSelect = 3, u8 pcrSelect[4] (3 used),
 *   1 pad} ‖ u32 n ‖ n × TPML_DIGEST {u32 count, 8 × TPM2B_DIGEST {u16 size, 64-byte buffer}};
 *   the PCR values in selection order, eight to a TPML_DIGEST (tss-esapi's `Vec<TPML_DIGEST>`);
 * - the PCR mask of `GET /quotes/integrity?mask=0x…` (rust-keylime tpm.rs `read_mask`: bit i is
 *   PCR i, PCRs 0-23 only);
 * - PCR 16, the data PCR (Keylime config.TPM_DATA_PCR): rust-keylime resets it and extends it with
 *   H(the agent's public key PEM) before every quote, and always adds it to the selection; the
 *   verifier checks it equals H(0…0 ‖ H(pubkey PEM)) (tpm_main.py `sim_extend`,
 *   `_check_data_pcr`).
 *
 * The blob's own selection is unsigned: a verifier must number the values from the selection
 * inside the signed TPMS_ATTEST (imakit's verifier does; Keylime 7.14 does not).
 */
import { hash, hashAlgoByTpmAlg } from '../hash/hash-algo.ts';

/** The data PCR Keylime binds the agent's public key to. */
export const KEYLIME_DATA_PCR = 16;
/** rust-keylime's nonce limit (tpm.rs MAX_NONCE_SIZE). */
export const KEYLIME_MAX_NONCE = 64;

const SEL_SLOTS = 16;
const SIZEOF_SELECT = 3;
const DIGESTS_PER_LIST = 8;
const TPMU_HA = 64;

const b64 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');

/**
 * The PCR blob for one bank: `pcrs` (ascending) and their `values` in the same order.
 * @throws RangeError for a PCR outside 0-23, a value count that differs, or a value longer than 64 bytes
 */
export function encodeKeylimePcrBlob(
  hashAlg: number,
  pcrs: readonly number[],
  values: readonly Uint8Array[],
): Uint8Array {
  if (pcrs.length !== values.length) throw new RangeError(`${pcrs.length} PCRs but ${values.length} values`);
  const select = new Uint8Array(SIZEOF_SELECT);
  for (const p of pcrs) {
    if (!Number.isInteger(p) || p < 0 || p >= SIZEOF_SELECT * 8)
      throw new RangeError(`PCR ${p} is outside 0-23`);
    select[p >> 3]! |= 1 << (p & 7);
  }
  const lists = Math.ceil(values.length / DIGESTS_PER_LIST);
  const listSize = 4 + DIGESTS_PER_LIST * (2 + TPMU_HA);
  const out = new Uint8Array(4 + SEL_SLOTS * 8 + 4 + lists * listSize);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, 1, true);
  dv.setUint16(4, hashAlg, true);
  out[6] = SIZEOF_SELECT;
  out.set(select, 7);
  let o = 4 + SEL_SLOTS * 8;
  dv.setUint32(o, lists, true);
  o += 4;
  for (let l = 0; l < lists; l++) {
    const chunk = values.slice(l * DIGESTS_PER_LIST, (l + 1) * DIGESTS_PER_LIST);
    dv.setUint32(o, chunk.length, true);
    o += 4;
    for (let d = 0; d < DIGESTS_PER_LIST; d++) {
      const v = chunk[d];
      if (v !== undefined) {
        if (v.length > TPMU_HA) throw new RangeError(`a PCR value of ${v.length} bytes exceeds ${TPMU_HA}`);
        dv.setUint16(o, v.length, true);
        out.set(v, o + 2);
      }
      o += 2 + TPMU_HA;
    }
  }
  return out;
}

/** `r<attest>:<signature>:<pcr blob>`, each part standard base64. */
export function keylimeQuoteString(attest: Uint8Array, signature: Uint8Array, pcrBlob: Uint8Array): string {
  return `r${b64(attest)}:${b64(signature)}:${b64(pcrBlob)}`;
}

/**
 * The PCRs of a Keylime mask (`0x408400`, hex with or without `0x`), ascending.
 * @throws RangeError naming the mask when it is not hex or selects a PCR above 23
 */
export function keylimeMaskPcrs(mask: string): number[] {
  const hex = mask.replace(/^0x/i, '');
  if (!/^[0-9a-fA-F]{1,8}$/.test(hex))
    throw new RangeError(`mask ${JSON.stringify(mask)} is not a 32-bit hex number`);
  const m = Number.parseInt(hex, 16);
  const pcrs: number[] = [];
  for (let i = 0; i < 32; i++)
    if ((m >>> i) & 1) {
      if (i > 23) throw new RangeError(`mask ${mask} selects PCR ${i}: only PCRs 0-23 can be quoted`);
      pcrs.push(i);
    }
  return pcrs;
}

/** The mask text of `pcrs` (`0x` + lowercase hex, as Keylime's tenant writes it). */
export function keylimeMask(pcrs: readonly number[]): string {
  let m = 0;
  for (const p of pcrs) {
    if (!Number.isInteger(p) || p < 0 || p > 23) throw new RangeError(`PCR ${p} is outside 0-23`);
    m |= 1 << p;
  }
  return `0x${(m >>> 0).toString(16)}`;
}

/**
 * The value PCR 16 holds after a reset and one extend with H(`data`) in bank `hashAlg`, which is
 * what Keylime's verifier expects for the public key `data` (tpm_main.py `sim_extend`).
 * @throws RangeError for a bank core has no hash for
 */
export function keylimeDataPcrValue(data: string, hashAlg: number): Uint8Array {
  const h = hashAlgoByTpmAlg(hashAlg);
  if (h === undefined) throw new RangeError(`no hash for TPM algorithm 0x${hashAlg.toString(16)}`);
  const d = hash(h, new TextEncoder().encode(data));
  return hash(h, new Uint8Array(d.length), d);
}
