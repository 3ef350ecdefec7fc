/**
 * NV indices (Part 3 §31): TPM2_NV_ReadPublic and TPM2_NV_Read. EK certificates live at the TCG
 * indices (TCG EK Credential Profile §2.2.1.5): RSA 2048 at 0x01c00002, ECC P-256 at 0x01c0000a,
 * and the high-range templates from 0x01c00012 (swtpm puts its P-384 EK certificate at 0x01c00016).
 * A certificate larger than TPM_PT_NV_BUFFER_MAX is read in several NV_Read calls.
 */
import { TPM_CC } from '../constants.ts';
import { commandSpec, params, passwordAuth, type TpmCommandSpec } from './frame.ts';

/** TCG EK certificate indices. */
export const EK_CERT_NV = Object.freeze({
  RSA_2048: 0x01c00002,
  ECC_P256: 0x01c0000a,
  RSA_2048_H1: 0x01c00012,
  ECC_P256_H2: 0x01c00014,
  ECC_P384_H3: 0x01c00016,
});

/** TPMS_NV_PUBLIC (Part 2 §13.5). */
export interface NvPublic {
  readonly nvIndex: number;
  readonly nameAlg: number;
  readonly attributes: number;
  readonly authPolicy: Uint8Array;
  readonly dataSize: number;
}

export interface NvReadPublicResult {
  readonly nvPublic: NvPublic;
  readonly name: Uint8Array;
}

/** TPM2_NV_ReadPublic(nvIndex). */
export function nvReadPublicCommand(nvIndex: number): TpmCommandSpec<NvReadPublicResult> {
  return commandSpec({
    code: TPM_CC.NV_ReadPublic,
    handles: [nvIndex],
    auths: [],
    params: new Uint8Array(0),
    responseHandles: 0,
    parse: (r) => {
      const inner = r.sized('nvPublic', 256);
      const nvPublic = Object.freeze({
        nvIndex: inner.u32('nvIndex'),
        nameAlg: inner.u16('nameAlg'),
        attributes: inner.u32('attributes'),
        authPolicy: inner.tpm2b('authPolicy', 64).slice(),
        dataSize: inner.u16('dataSize'),
      });
      inner.end('TPMS_NV_PUBLIC');
      return Object.freeze({ nvPublic, name: r.tpm2b('nvName', 66).slice() });
    },
  });
}

/**
 * TPM2_NV_Read(authHandle, nvIndex, size, offset) with a password on `authHandle` (the index itself
 * for AUTHREAD indices such as EK certificates, or TPM_RH_OWNER for OWNERREAD).
 */
export function nvReadCommand(
  authHandle: number,
  nvIndex: number,
  size: number,
  offset: number,
  password: Uint8Array = new Uint8Array(0),
): TpmCommandSpec<Uint8Array> {
  return commandSpec({
    code: TPM_CC.NV_Read,
    handles: [authHandle, nvIndex],
    auths: [passwordAuth(password)],
    params: params((w) => w.u16(size).u16(offset)),
    responseHandles: 0,
    parse: (r) => r.tpm2b('data', 0xffff).slice(),
  });
}
