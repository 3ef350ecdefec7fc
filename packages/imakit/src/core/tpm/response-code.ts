/**
 * TPM_RC response codes decoded to their names (TPM 2.0 Part 2 §6.6). Two formats:
 *  - format 0 (bit 7 clear): bit 8 set = a TPM 2.0 code (RC_VER1 0x100 + n), bit 11 = warning
 *    (RC_WARN 0x900 + n), bit 10 = vendor defined; bit 8 clear = a TPM 1.2 code.
 *  - format 1 (bit 7 set): error number in bits 0-5 (RC_FMT1 0x080 + n); bit 6 set = bits 8-11
 *    name the parameter; otherwise bits 8-10 name a handle (bit 11 clear) or a session (bit 11 set).
 * Bits 16-23 are the TSS layer (0 for the TPM itself; tpm2-tss's own layers otherwise).
 *
 * @example decodeResponseCode(0x1df) // { name: 'TPM_RC_INTEGRITY', parameter: 1, ... }
 */
import { hex } from './hex.ts';

const FMT1 = Object.freeze({
  0x081: 'ASYMMETRIC',
  0x082: 'ATTRIBUTES',
  0x083: 'HASH',
  0x084: 'VALUE',
  0x085: 'HIERARCHY',
  0x087: 'KEY_SIZE',
  0x088: 'MGF',
  0x089: 'MODE',
  0x08a: 'TYPE',
  0x08b: 'HANDLE',
  0x08c: 'KDF',
  0x08d: 'RANGE',
  0x08e: 'AUTH_FAIL',
  0x08f: 'NONCE',
  0x090: 'PP',
  0x092: 'SCHEME',
  0x095: 'SIZE',
  0x096: 'SYMMETRIC',
  0x097: 'TAG',
  0x098: 'SELECTOR',
  0x09a: 'INSUFFICIENT',
  0x09b: 'SIGNATURE',
  0x09c: 'KEY',
  0x09d: 'POLICY_FAIL',
  0x09f: 'INTEGRITY',
  0x0a0: 'TICKET',
  0x0a1: 'RESERVED_BITS',
  0x0a2: 'BAD_AUTH',
  0x0a3: 'EXPIRED',
  0x0a4: 'POLICY_CC',
  0x0a5: 'BINDING',
  0x0a6: 'CURVE',
  0x0a7: 'ECC_POINT',
  0x0a8: 'FW_LIMITED',
  0x0a9: 'SVN_LIMITED',
} as Record<number, string>);

const VER1 = Object.freeze({
  0x100: 'INITIALIZE',
  0x101: 'FAILURE',
  0x103: 'SEQUENCE',
  0x10b: 'PRIVATE',
  0x119: 'HMAC',
  0x120: 'DISABLED',
  0x121: 'EXCLUSIVE',
  0x124: 'AUTH_TYPE',
  0x125: 'AUTH_MISSING',
  0x126: 'POLICY',
  0x127: 'PCR',
  0x128: 'PCR_CHANGED',
  0x12d: 'UPGRADE',
  0x12e: 'TOO_MANY_CONTEXTS',
  0x12f: 'AUTH_UNAVAILABLE',
  0x130: 'REBOOT',
  0x131: 'UNBALANCED',
  0x142: 'COMMAND_SIZE',
  0x143: 'COMMAND_CODE',
  0x144: 'AUTHSIZE',
  0x145: 'AUTH_CONTEXT',
  0x146: 'NV_RANGE',
  0x147: 'NV_SIZE',
  0x148: 'NV_LOCKED',
  0x149: 'NV_AUTHORIZATION',
  0x14a: 'NV_UNINITIALIZED',
  0x14b: 'NV_SPACE',
  0x14c: 'NV_DEFINED',
  0x150: 'BAD_CONTEXT',
  0x151: 'CPHASH',
  0x152: 'PARENT',
  0x153: 'NEEDS_TEST',
  0x154: 'NO_RESULT',
  0x155: 'SENSITIVE',
} as Record<number, string>);

const WARN = Object.freeze({
  0x901: 'CONTEXT_GAP',
  0x902: 'OBJECT_MEMORY',
  0x903: 'SESSION_MEMORY',
  0x904: 'MEMORY',
  0x905: 'SESSION_HANDLES',
  0x906: 'OBJECT_HANDLES',
  0x907: 'LOCALITY',
  0x908: 'YIELDED',
  0x909: 'CANCELED',
  0x90a: 'TESTING',
  0x910: 'REFERENCE_H0',
  0x911: 'REFERENCE_H1',
  0x912: 'REFERENCE_H2',
  0x913: 'REFERENCE_H3',
  0x914: 'REFERENCE_H4',
  0x915: 'REFERENCE_H5',
  0x916: 'REFERENCE_H6',
  0x918: 'REFERENCE_S0',
  0x919: 'REFERENCE_S1',
  0x91a: 'REFERENCE_S2',
  0x91b: 'REFERENCE_S3',
  0x91c: 'REFERENCE_S4',
  0x91d: 'REFERENCE_S5',
  0x91e: 'REFERENCE_S6',
  0x920: 'NV_RATE',
  0x921: 'LOCKOUT',
  0x922: 'RETRY',
  0x923: 'NV_UNAVAILABLE',
} as Record<number, string>);

/** A decoded response code. */
export interface ResponseCode {
  /** the raw value */
  readonly rc: number;
  /** `TPM_RC_SUCCESS`, `TPM_RC_INTEGRITY`, `TPM_RC_OBJECT_MEMORY`, or `TPM_RC_0x...` when unlisted */
  readonly name: string;
  /** the base code without handle/parameter/session number and layer (e.g. 0x09f) */
  readonly base: number;
  readonly format: 0 | 1;
  readonly kind: 'success' | 'error' | 'warning' | 'vendor' | 'tpm12';
  /** TSS layer (bits 16-23); 0 for the TPM */
  readonly layer: number;
  /** format 1: the 1-based parameter, handle or session it concerns */
  readonly parameter?: number;
  readonly handle?: number;
  readonly session?: number;
  /** e.g. `TPM_RC_INTEGRITY (parameter 1)` */
  readonly text: string;
}

/** Decode a TPM_RC. @throws RangeError when rc is not a u32 */
export function decodeResponseCode(rc: number): ResponseCode {
  if (!Number.isInteger(rc) || rc < 0 || rc > 0xffffffff) throw new RangeError(`rc out of range: ${rc}`);
  const layer = (rc >>> 16) & 0xff;
  const v = rc & 0xffff;
  const done = (r: Omit<ResponseCode, 'rc' | 'layer' | 'text'>): ResponseCode => {
    const where =
      r.parameter !== undefined
        ? ` (parameter ${r.parameter})`
        : r.handle !== undefined
          ? ` (handle ${r.handle})`
          : r.session !== undefined
            ? ` (session ${r.session})`
            : '';
    const lay = layer !== 0 ? ` [layer ${layer}]` : '';
    return Object.freeze({ rc, layer, ...r, text: `${r.name}${where}${lay} ${hex(rc)}` });
  };
  if (v === 0) return done({ name: 'TPM_RC_SUCCESS', base: 0, format: 0, kind: 'success' });
  if (v & 0x80) {
    const base = 0x080 + (v & 0x3f);
    const name = `TPM_RC_${FMT1[base] ?? hex(base)}`;
    const n = (v >>> 8) & 0xf;
    if (v & 0x40) return done({ name, base, format: 1, kind: 'error', parameter: n });
    if (v & 0x800) return done({ name, base, format: 1, kind: 'error', session: n & 7 });
    return done({ name, base, format: 1, kind: 'error', ...(n !== 0 ? { handle: n & 7 } : {}) });
  }
  if (!(v & 0x100)) return done({ name: `TPM_RC_TPM12_${hex(v)}`, base: v, format: 0, kind: 'tpm12' });
  if (v & 0x400) return done({ name: `TPM_RC_VENDOR_${hex(v)}`, base: v, format: 0, kind: 'vendor' });
  const base = v & 0x97f;
  if (v & 0x800) return done({ name: `TPM_RC_${WARN[base] ?? hex(base)}`, base, format: 0, kind: 'warning' });
  return done({ name: `TPM_RC_${VER1[base] ?? hex(base)}`, base, format: 0, kind: 'error' });
}
