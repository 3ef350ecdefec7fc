/**
 * TPM2_PCR_Read (Part 3 §22.4) and TPM2_PCR_Extend (§22.2).
 *
 * PCR_Read returns at most 8 digests per call (libtpms and the reference implementation fill a
 * TPML_DIGEST of 8); `pcrSelectionOut` says which of the asked PCRs the values are, in order, and
 * the caller asks again for the rest (`remainingSelection`).
 */
import { TPM_CC } from '../constants.ts';
import type { TpmReader } from '../marshal.ts';
import { readPcrSelection, writePcrSelection, type PcrSelection } from '../pcr-selection.ts';
import { commandSpec, params, passwordAuth, type TpmCommandSpec } from './frame.ts';

/** TPML_DIGEST holds at most 8 digests (Part 2 §10.9.2). */
export const MAX_TPML_DIGEST = 8;

export interface PcrReadResult {
  readonly updateCounter: number;
  /** the PCRs the values are for, banks in order, PCRs ascending */
  readonly selection: PcrSelection;
  readonly values: readonly Uint8Array[];
}

/** Read TPML_DIGEST. */
export function readDigestList(r: TpmReader, field = 'digests'): Uint8Array[] {
  const at = r.offset;
  const n = r.u32(`${field}.count`);
  if (n > MAX_TPML_DIGEST) r.fail('E_CODEC_TOO_LARGE', `${n} digests exceeds ${MAX_TPML_DIGEST}`, field, at);
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) out.push(r.tpm2b(`${field}[${i}]`, 64).slice());
  return out;
}

/** TPM2_PCR_Read(pcrSelectionIn). */
export function pcrReadCommand(sel: PcrSelection): TpmCommandSpec<PcrReadResult> {
  return commandSpec({
    code: TPM_CC.PCR_Read,
    handles: [],
    auths: [],
    params: params((w) => writePcrSelection(w, sel)),
    responseHandles: 0,
    parse: (r) => {
      const updateCounter = r.u32('pcrUpdateCounter');
      const selection = readPcrSelection(r, 'pcrSelectionOut');
      const at = r.offset;
      const values = readDigestList(r, 'pcrValues');
      const selected = selection.reduce((n, b) => n + b.pcrs.length, 0);
      if (selected !== values.length)
        r.fail(
          'E_CODEC_BAD_LENGTH',
          `${values.length} values for ${selected} selected PCRs`,
          'pcrValues',
          at,
        );
      return Object.freeze({ updateCounter, selection, values: Object.freeze(values) });
    },
  });
}

/** What of `asked` is not in `got` (same banks, PCRs removed); empty banks dropped. */
export function remainingSelection(asked: PcrSelection, got: PcrSelection): PcrSelection {
  const out = [];
  for (const bank of asked) {
    const done = new Set(got.filter((g) => g.hashAlg === bank.hashAlg).flatMap((g) => g.pcrs));
    const pcrs = bank.pcrs.filter((p) => !done.has(p));
    if (pcrs.length > 0) out.push(Object.freeze({ ...bank, pcrs: Object.freeze(pcrs) }));
  }
  return Object.freeze(out);
}

/** One digest of a TPML_DIGEST_VALUES (TPMT_HA: hashAlg ‖ digest of that algorithm's size). */
export interface TaggedDigest {
  readonly hashAlg: number;
  readonly digest: Uint8Array;
}

/** TPM2_PCR_Extend(pcrHandle = index, digests), authorized by the PCR's (empty) password. */
export function pcrExtendCommand(pcr: number, digests: readonly TaggedDigest[]): TpmCommandSpec<void> {
  if (!Number.isInteger(pcr) || pcr < 0 || pcr > 31) throw new RangeError(`PCR index ${pcr} out of range`);
  return commandSpec({
    code: TPM_CC.PCR_Extend,
    handles: [pcr],
    auths: [passwordAuth()],
    params: params((w) => {
      w.u32(digests.length);
      for (const d of digests) w.u16(d.hashAlg).bytes(d.digest);
    }),
    responseHandles: 0,
    parse: () => undefined,
  });
}

/**
 * TPM2_PCR_Reset(pcrHandle = index), authorized by the PCR's (empty) password. Only the resettable
 * PCRs (16 and 23 at locality 0, TCG PC Client PTP §3.3.1) accept it; others answer TPM_RC_LOCALITY.
 */
export function pcrResetCommand(pcr: number): TpmCommandSpec<void> {
  if (!Number.isInteger(pcr) || pcr < 0 || pcr > 31) throw new RangeError(`PCR index ${pcr} out of range`);
  return commandSpec({
    code: TPM_CC.PCR_Reset,
    handles: [pcr],
    auths: [passwordAuth()],
    params: new Uint8Array(0),
    responseHandles: 0,
    parse: () => undefined,
  });
}
