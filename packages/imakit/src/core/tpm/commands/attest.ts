/**
 * Attestation (Part 3 §18): TPM2_Quote and TPM2_Certify. Both return a TPM2B_ATTEST and a
 * TPMT_SIGNATURE; they are kept as the TPM's exact bytes (`quote.attest` is the TPMS_ATTEST inside
 * the TPM2B, `quote.sig` the whole TPMT_SIGNATURE, the forms tpm2_quote writes) and decoded by the
 * structure codecs, not here.
 */
import { TPM_ALG, TPM_CC } from '../constants.ts';
import type { TpmReader, TpmWriter } from '../marshal.ts';
import { writePcrSelection, type PcrSelection } from '../pcr-selection.ts';
import { readTpmtSignature } from '../signature.ts';
import { commandSpec, params, type TpmAuth, type TpmCommandSpec } from './frame.ts';

/** Largest TPMS_ATTEST accepted (sizeof(TPMS_ATTEST) in the reference implementation is under 1 KiB). */
export const MAX_ATTEST = 2048;

export interface AttestResult {
  /** the TPMS_ATTEST bytes (without the TPM2B size) */
  readonly attest: Uint8Array;
  /** the whole TPMT_SIGNATURE */
  readonly signature: Uint8Array;
}

/** TPMT_SIG_SCHEME: NULL (use the key's scheme) or a scheme with its hash. */
function writeSigScheme(w: TpmWriter, scheme: number, hashAlg: number): void {
  w.u16(scheme);
  if (scheme !== TPM_ALG.NULL) w.u16(hashAlg);
}

/** A TPMT_SIGNATURE's exact bytes (decoded by `readTpmtSignature`, which checks its shape). */
export function readSignatureBytes(r: TpmReader): Uint8Array {
  const start = r.pos;
  readTpmtSignature(r);
  return r.bytes.slice(start, r.pos);
}

function readAttestResult(r: TpmReader): AttestResult {
  const attest = r.tpm2b('quoted', MAX_ATTEST).slice();
  return Object.freeze({ attest, signature: readSignatureBytes(r) });
}

/**
 * TPM2_Quote(signHandle, qualifyingData, inScheme, PCRselect). With `scheme` NULL (the default) the
 * TPM signs with the key's own scheme (tpm.md gotcha 3: asking RSASSA of a PSS key is TPM_RC_SCHEME).
 */
export function quoteCommand(
  signHandle: number,
  qualifyingData: Uint8Array,
  selection: PcrSelection,
  auth: TpmAuth,
  scheme: number = TPM_ALG.NULL,
  hashAlg: number = TPM_ALG.SHA256,
): TpmCommandSpec<AttestResult> {
  return commandSpec({
    code: TPM_CC.Quote,
    handles: [signHandle],
    auths: [auth],
    params: params((w) => {
      w.tpm2b(qualifyingData);
      writeSigScheme(w, scheme, hashAlg);
      writePcrSelection(w, selection);
    }),
    responseHandles: 0,
    parse: readAttestResult,
  });
}

/** TPM2_Certify(objectHandle, signHandle, qualifyingData, inScheme): `objectAuth` is ADMIN role. */
export function certifyCommand(
  objectHandle: number,
  signHandle: number,
  qualifyingData: Uint8Array,
  objectAuth: TpmAuth,
  signAuth: TpmAuth,
  scheme: number = TPM_ALG.NULL,
  hashAlg: number = TPM_ALG.SHA256,
): TpmCommandSpec<AttestResult> {
  return commandSpec({
    code: TPM_CC.Certify,
    handles: [objectHandle, signHandle],
    auths: [objectAuth, signAuth],
    params: params((w) => {
      w.tpm2b(qualifyingData);
      writeSigScheme(w, scheme, hashAlg);
    }),
    responseHandles: 0,
    parse: readAttestResult,
  });
}
