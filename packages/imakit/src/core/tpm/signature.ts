/**
 * TPMT_SIGNATURE (TPM 2.0 Part 2 §11.3.4): u16 sigAlg ‖ TPMU_SIGNATURE
 *   RSASSA, RSAPSS:               u16 hash ‖ TPM2B_PUBLIC_KEY_RSA sig
 *   ECDSA, ECDAA, SM2, ECSCHNORR: u16 hash ‖ TPM2B_ECC_PARAMETER r ‖ TPM2B_ECC_PARAMETER s
 *   HMAC:                         TPMT_HA (u16 hashAlg ‖ digest of that hash's size)
 *   NULL:                         nothing
 * Decoding never verifies; `verifyQuote` does.
 */
import { hashAlgoByTpmAlg } from '../hash/hash-algo.ts';
import { type TpmReader, type TpmWriter, decodeAll, encodeWith } from './marshal.ts';
import { TPM_ALG, tpmAlgName } from './constants.ts';
import { MAX_ECC_KEY_BYTES, MAX_RSA_KEY_BYTES } from './public.ts';

export interface RsaSignature {
  readonly sigAlg: typeof TPM_ALG.RSASSA | typeof TPM_ALG.RSAPSS;
  readonly hashAlg: number;
  readonly sig: Uint8Array;
}
export interface EccSignature {
  readonly sigAlg:
    typeof TPM_ALG.ECDSA | typeof TPM_ALG.ECDAA | typeof TPM_ALG.SM2 | typeof TPM_ALG.ECSCHNORR;
  readonly hashAlg: number;
  readonly r: Uint8Array;
  readonly s: Uint8Array;
}
export interface HmacSignature {
  readonly sigAlg: typeof TPM_ALG.HMAC;
  readonly hashAlg: number;
  readonly digest: Uint8Array;
}
export interface NullSignature {
  readonly sigAlg: typeof TPM_ALG.NULL;
}
/** A decoded TPMT_SIGNATURE. */
export type TpmtSignature = RsaSignature | EccSignature | HmacSignature | NullSignature;

/** Read a TPMT_SIGNATURE. @throws CodecError E_CODEC_UNKNOWN_ALGO for an unknown sigAlg or HMAC hash */
export function readTpmtSignature(r: TpmReader): TpmtSignature {
  const at = r.offset;
  const sigAlg = r.u16('sigAlg');
  switch (sigAlg) {
    case TPM_ALG.RSASSA:
    case TPM_ALG.RSAPSS: {
      const hashAlg = r.u16('signature.hash');
      const sig = r.tpm2b('signature.sig', MAX_RSA_KEY_BYTES);
      return Object.freeze({ sigAlg, hashAlg, sig });
    }
    case TPM_ALG.ECDSA:
    case TPM_ALG.ECDAA:
    case TPM_ALG.SM2:
    case TPM_ALG.ECSCHNORR: {
      const hashAlg = r.u16('signature.hash');
      const sr = r.tpm2b('signature.signatureR', MAX_ECC_KEY_BYTES);
      const ss = r.tpm2b('signature.signatureS', MAX_ECC_KEY_BYTES);
      return Object.freeze({ sigAlg, hashAlg, r: sr, s: ss });
    }
    case TPM_ALG.HMAC: {
      const hat = r.offset;
      const hashAlg = r.u16('signature.hmac.hashAlg');
      const algo = hashAlgoByTpmAlg(hashAlg);
      if (!algo)
        r.fail(
          'E_CODEC_UNKNOWN_ALGO',
          `HMAC hash ${tpmAlgName(hashAlg)} unknown`,
          'signature.hmac.hashAlg',
          hat,
        );
      return Object.freeze({ sigAlg, hashAlg, digest: r.bytesView(algo.size, 'signature.hmac.digest') });
    }
    case TPM_ALG.NULL:
      return Object.freeze({ sigAlg });
    default:
      return r.fail(
        'E_CODEC_UNKNOWN_ALGO',
        `signature algorithm ${tpmAlgName(sigAlg)} unknown`,
        'sigAlg',
        at,
      );
  }
}

/** Write a TPMT_SIGNATURE. */
export function writeTpmtSignature(w: TpmWriter, s: TpmtSignature): void {
  w.u16(s.sigAlg);
  switch (s.sigAlg) {
    case TPM_ALG.RSASSA:
    case TPM_ALG.RSAPSS:
      w.u16(s.hashAlg).tpm2b(s.sig);
      return;
    case TPM_ALG.ECDSA:
    case TPM_ALG.ECDAA:
    case TPM_ALG.SM2:
    case TPM_ALG.ECSCHNORR:
      w.u16(s.hashAlg).tpm2b(s.r).tpm2b(s.s);
      return;
    case TPM_ALG.HMAC:
      w.u16(s.hashAlg).bytes(s.digest);
      return;
    case TPM_ALG.NULL:
      return;
  }
}

/**
 * Decode a whole TPMT_SIGNATURE (what `tpm2_quote -s` writes in its default tss format).
 * @throws CodecError
 */
export function decodeTpmtSignature(bytes: Uint8Array): TpmtSignature {
  return decodeAll(bytes, readTpmtSignature, 'TPMT_SIGNATURE');
}
/** Encode a TPMT_SIGNATURE. */
export function encodeTpmtSignature(s: TpmtSignature): Uint8Array {
  return encodeWith((w) => writeTpmtSignature(w, s));
}
