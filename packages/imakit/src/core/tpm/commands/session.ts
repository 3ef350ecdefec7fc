/**
 * Sessions (Part 3 §11, §23): TPM2_StartAuthSession for an unsalted, unbound policy session,
 * TPM2_PolicySecret (the TCG EK policy A is PolicySecret(TPM_RH_ENDORSEMENT)), TPM2_PolicyGetDigest
 * and TPM2_FlushContext (handles of objects and sessions this client loaded).
 */
import { TPM_ALG, TPM_CC, TPM_RH, TPM_SE } from '../constants.ts';
import { commandSpec, params, passwordAuth, type TpmCommandSpec } from './frame.ts';

export interface StartedSession {
  readonly handle: number;
  readonly nonceTPM: Uint8Array;
}

/**
 * TPM2_StartAuthSession(tpmKey = NULL, bind = NULL, nonceCaller, encryptedSalt = empty, sessionType,
 * symmetric = NULL, authHash). `nonceCaller` must be 16 bytes up to the digest size (Part 3 §11.1);
 * it comes from the caller because core draws no randomness.
 */
export function startAuthSessionCommand(
  nonceCaller: Uint8Array,
  sessionType: number = TPM_SE.POLICY,
  authHash: number = TPM_ALG.SHA256,
): TpmCommandSpec<StartedSession> {
  if (nonceCaller.length < 16 || nonceCaller.length > 64)
    throw new RangeError('nonceCaller must be 16-64 bytes');
  return commandSpec({
    code: TPM_CC.StartAuthSession,
    handles: [TPM_RH.NULL, TPM_RH.NULL],
    auths: [],
    params: params((w) => w.tpm2b(nonceCaller).u16(0).u8(sessionType).u16(TPM_ALG.NULL).u16(authHash)),
    responseHandles: 1,
    parse: (r, h) => Object.freeze({ handle: h[0]!, nonceTPM: r.tpm2b('nonceTPM', 64).slice() }),
  });
}

/**
 * TPM2_PolicySecret(authHandle, policySession, nonceTPM = empty, cpHashA = empty, policyRef = empty,
 * expiration = 0), authorized by `authHandle`'s password (empty for a default endorsement hierarchy).
 * The response (timeout, ticket) is read and dropped: nothing here uses tickets.
 */
export function policySecretCommand(
  authHandle: number,
  policySession: number,
  password: Uint8Array = new Uint8Array(0),
): TpmCommandSpec<void> {
  return commandSpec({
    code: TPM_CC.PolicySecret,
    handles: [authHandle, policySession],
    auths: [passwordAuth(password)],
    params: params((w) => w.u16(0).u16(0).u16(0).u32(0)),
    responseHandles: 0,
    parse: (r) => {
      r.tpm2b('timeout', 64);
      r.u16('policyTicket.tag');
      r.u32('policyTicket.hierarchy');
      r.tpm2b('policyTicket.digest', 64);
    },
  });
}

/** TPM2_PolicyGetDigest(policySession). */
export function policyGetDigestCommand(policySession: number): TpmCommandSpec<Uint8Array> {
  return commandSpec({
    code: TPM_CC.PolicyGetDigest,
    handles: [policySession],
    auths: [],
    params: new Uint8Array(0),
    responseHandles: 0,
    parse: (r) => r.tpm2b('policyDigest', 64).slice(),
  });
}

/** TPM2_FlushContext(flushHandle): the handle is a parameter, not in the handle area (Part 3 §28.4). */
export function flushContextCommand(handle: number): TpmCommandSpec<void> {
  return commandSpec({
    code: TPM_CC.FlushContext,
    handles: [],
    auths: [],
    params: params((w) => w.u32(handle >>> 0)),
    responseHandles: 0,
    parse: () => undefined,
  });
}
