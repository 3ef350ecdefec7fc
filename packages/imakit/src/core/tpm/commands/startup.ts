/**
 * TPM2_Startup, TPM2_Shutdown (Part 3 §9.3, §9.4) and TPM2_GetRandom (§16.1).
 */
import { TPM_CC, TPM_SU } from '../constants.ts';
import { commandSpec, params, type TpmCommandSpec } from './frame.ts';

/** TPM_RC_INITIALIZE: Startup on a TPM that is already started; the client treats it as success. */
export const TPM_RC_INITIALIZE = 0x100;

/** TPM2_Startup(startupType). */
export function startupCommand(type: number = TPM_SU.CLEAR): TpmCommandSpec<void> {
  return commandSpec({
    code: TPM_CC.Startup,
    handles: [],
    auths: [],
    params: params((w) => w.u16(type)),
    responseHandles: 0,
    parse: () => undefined,
  });
}

/** TPM2_Shutdown(shutdownType). */
export function shutdownCommand(type: number = TPM_SU.CLEAR): TpmCommandSpec<void> {
  return commandSpec({
    code: TPM_CC.Shutdown,
    handles: [],
    auths: [],
    params: params((w) => w.u16(type)),
    responseHandles: 0,
    parse: () => undefined,
  });
}

/** TPM2_GetRandom(bytesRequested): the TPM may return fewer bytes than asked (at most its digest size). */
export function getRandomCommand(bytes: number): TpmCommandSpec<Uint8Array> {
  if (!Number.isInteger(bytes) || bytes < 0 || bytes > 0xffff) throw new RangeError('bytes out of range');
  return commandSpec({
    code: TPM_CC.GetRandom,
    handles: [],
    auths: [],
    params: params((w) => w.u16(bytes)),
    responseHandles: 0,
    parse: (r) => r.tpm2b('randomBytes', 64).slice(),
  });
}
