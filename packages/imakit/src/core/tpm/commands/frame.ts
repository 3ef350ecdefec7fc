/**
 * TPM 2.0 command and response framing (TPM 2.0 Library Part 1 §18, Part 3 §4-§5), pure:
 *
 *   command  = tag u16 ‖ commandSize u32 ‖ commandCode u32 ‖ handles (u32 each)
 *              ‖ [authorizationSize u32 ‖ TPMS_AUTH_COMMAND…]  (tag TPM_ST_SESSIONS)
 *              ‖ parameters
 *   response = tag u16 ‖ responseSize u32 ‖ responseCode u32 ‖ handles (u32 each)
 *              ‖ [parameterSize u32] ‖ parameters ‖ [TPMS_AUTH_RESPONSE…]
 *
 *   TPMS_AUTH_COMMAND  = sessionHandle u32 ‖ TPM2B nonceCaller ‖ u8 sessionAttributes ‖ TPM2B hmac
 *   TPMS_AUTH_RESPONSE = TPM2B nonceTPM ‖ u8 sessionAttributes ‖ TPM2B hmac
 *
 * Each command family (`startup.ts`, `pcr.ts`, ...) builds a `TpmCommandSpec` whose `parse` reads the
 * response parameters; `encodeCommand` and `decodeResponse` do the rest. A non-zero response code
 * becomes a `TpmError` naming the command and the decoded code.
 */
import { ImakitError } from '../../../errors.ts';
import { TPM_RS_PW, TPM_ST, TPMA_SESSION, tpmCcName } from '../constants.ts';
import { TpmReader, TpmWriter } from '../marshal.ts';
import { decodeResponseCode } from '../response-code.ts';

/** One authorization in a command's authorization area. */
export interface TpmAuth {
  /** TPM_RS_PW for a password, or a session handle (HMAC 0x02…, policy 0x03…) */
  readonly sessionHandle: number;
  readonly nonceCaller: Uint8Array;
  readonly attributes: number;
  /** the password itself for TPM_RS_PW; the HMAC for an HMAC session; empty for a plain policy session */
  readonly hmac: Uint8Array;
}

/** A password authorization (Part 1 §19.8.4); the empty password by default. */
export function passwordAuth(password: Uint8Array = new Uint8Array(0)): TpmAuth {
  return Object.freeze({
    sessionHandle: TPM_RS_PW,
    nonceCaller: new Uint8Array(0),
    attributes: TPMA_SESSION.continueSession,
    hmac: password,
  });
}

/**
 * A policy-session authorization without an HMAC (the policy holds no PolicyAuthValue/PolicyPassword).
 * continueSession is clear: the TPM flushes the session after the command, so nothing is left behind.
 */
export function policyAuth(sessionHandle: number): TpmAuth {
  return Object.freeze({
    sessionHandle,
    nonceCaller: new Uint8Array(0),
    attributes: 0,
    hmac: new Uint8Array(0),
  });
}

/** What one command sends and how its response parameters are read. */
export interface TpmCommandSpec<T> {
  readonly code: number;
  /** the handle area, in order */
  readonly handles: readonly number[];
  /** one per handle that needs authorization (tag TPM_ST_SESSIONS when non-empty) */
  readonly auths: readonly TpmAuth[];
  readonly params: Uint8Array;
  /** handles the response returns before its parameters (CreatePrimary, Load, StartAuthSession: 1) */
  readonly responseHandles: number;
  /** read the response parameters (exactly: trailing bytes are an error) */
  readonly parse: (r: TpmReader, handles: readonly number[]) => T;
}

/** A command spec with frozen parts. */
export function commandSpec<T>(spec: TpmCommandSpec<T>): TpmCommandSpec<T> {
  return Object.freeze({
    ...spec,
    handles: Object.freeze([...spec.handles]),
    auths: Object.freeze([...spec.auths]),
  });
}

/** Parameters built with a writer. */
export function params(fn: (w: TpmWriter) => void): Uint8Array {
  const w = new TpmWriter(64);
  fn(w);
  return w.finish();
}

/** Encode a command's bytes. */
export function encodeCommand(spec: TpmCommandSpec<unknown>): Uint8Array {
  const w = new TpmWriter(64 + spec.params.length);
  const sessions = spec.auths.length > 0;
  w.u16(sessions ? TPM_ST.SESSIONS : TPM_ST.NO_SESSIONS);
  w.u32(0);
  w.u32(spec.code);
  for (const h of spec.handles) w.u32(h >>> 0);
  if (sessions) {
    const at = w.length;
    w.u32(0);
    for (const a of spec.auths)
      w.u32(a.sessionHandle >>> 0)
        .tpm2b(a.nonceCaller)
        .u8(a.attributes)
        .tpm2b(a.hmac);
    w.patchU32(at, w.length - at - 4);
  }
  w.bytes(spec.params);
  w.patchU32(2, w.length);
  return w.finish();
}

/** A TPM that answered with a non-zero response code. */
export class TpmError extends ImakitError {
  /** the raw TPM_RC */
  readonly rc: number;
  /** the command's name (`Quote`) */
  readonly command: string;
  constructor(command: string, rc: number) {
    super('E_TPM_RC', `TPM2_${command}: ${decodeResponseCode(rc).text}`);
    this.name = 'TpmError';
    this.rc = rc;
    this.command = command;
  }
  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), rc: this.rc, command: this.command };
  }
}

/** Longest response the framing accepts: the transports cap it too. */
const MAX_RESPONSE = 64 * 1024;

/**
 * Decode the response to `spec`: check the header against the bytes, raise a `TpmError` for a
 * non-zero code, read the handles, the parameters (through `spec.parse`, which must consume them
 * exactly) and one TPMS_AUTH_RESPONSE per authorization.
 * @throws TpmError (E_TPM_RC) for a non-zero response code; ImakitError E_TPM_RESPONSE when the bytes
 *   do not frame (wrong size, truncated, trailing), with the offset
 */
export function decodeResponse<T>(spec: TpmCommandSpec<T>, bytes: Uint8Array): T {
  const name = tpmCcName(spec.code);
  try {
    const r = new TpmReader(bytes);
    const tag = r.u16('tag');
    const size = r.u32('responseSize');
    if (size !== bytes.length || size > MAX_RESPONSE)
      r.fail('E_CODEC_BAD_LENGTH', `responseSize ${size} but ${bytes.length} bytes`, 'responseSize', 2);
    const rc = r.u32('responseCode');
    if (rc !== 0) {
      r.end('error response');
      throw new TpmError(name, rc);
    }
    const sessions = spec.auths.length > 0;
    if (tag !== (sessions ? TPM_ST.SESSIONS : TPM_ST.NO_SESSIONS))
      r.fail('E_CODEC_BAD_VALUE', `tag 0x${tag.toString(16)} does not fit the command's sessions`, 'tag', 0);
    const handles: number[] = [];
    for (let i = 0; i < spec.responseHandles; i++) handles.push(r.u32(`handle[${i}]`));
    let pr: TpmReader;
    if (sessions) {
      const at = r.offset;
      const n = r.u32('parameterSize');
      if (n > r.remaining)
        r.fail('E_CODEC_TRUNCATED', `parameterSize ${n} > ${r.remaining} bytes left`, 'parameterSize', at);
      pr = new TpmReader(r.bytesView(n, 'parameters'), at + 4);
    } else {
      pr = new TpmReader(r.bytesView(r.remaining, 'parameters'), r.offset);
    }
    const value = spec.parse(pr, handles);
    pr.end(`${name} response parameters`);
    for (let i = 0; i < spec.auths.length; i++) {
      r.tpm2b(`authResponse[${i}].nonceTPM`, 64);
      r.u8(`authResponse[${i}].sessionAttributes`);
      r.tpm2b(`authResponse[${i}].hmac`, 64);
    }
    r.end(`${name} response`);
    return value;
  } catch (e) {
    if (e instanceof TpmError) throw e;
    if (e instanceof ImakitError && e.code.startsWith('E_CODEC_'))
      throw new ImakitError('E_TPM_RESPONSE', `TPM2_${name}: ${e.detail}`, e.context, { cause: e });
    throw e;
  }
}

/**
 * Warnings after which the same command is simply sent again (Part 2 §6.6.3): TPM_RC_RETRY (libtpms
 * answers it to the first Quote after key creation while it refills its RNG), TPM_RC_YIELDED,
 * TPM_RC_TESTING.
 */
export const RETRY_RCS: ReadonlySet<number> = new Set([0x922, 0x908, 0x90a]);

/** The response code of a response, without decoding the rest (0 = success). */
export function responseCodeOf(bytes: Uint8Array): number {
  if (bytes.length < 10) return -1;
  return ((bytes[6]! << 24) | (bytes[7]! << 16) | (bytes[8]! << 8) | bytes[9]!) >>> 0;
}
