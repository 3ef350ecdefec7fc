/**
 * EVM in the emulator (security/integrity/evm/evm_main.c, evm_crypto.c; formats.md §4):
 * evm_verify_hmac() verdicts, the HMAC the kernel (re)writes after metadata changes
 * (evm_update_evmxattr), and the metadata-change gate (evm_inode_setattr / evm_protect_xattr).
 * The HMAC/digest input is H2's `evmInput()`, so the emulator and `imakit evm` hash the same bytes.
 */
import { evmHmac, evmInput, evmDigest, type EvmInputKind } from '../core/evm/evm-input.ts';
import type { EvmConfig } from '../core/evm/evm-config.ts';
import { parseUuid } from '../core/bytes/uuid.ts';
import { bytesEqual } from '../core/bytes/bytes.ts';
import { parseSignatureV2 } from '../core/labels/signature-header.ts';
import { verifySignatureValue, type Keyring } from '../core/labels/ima-signature.ts';
import { hashAlgoById } from '../core/hash/hash-algo.ts';
import type { Inode, IntegrityStatus } from './inode-state.ts';

/** EVM runtime state (`evm_initialized` and the loaded keys). */
export interface EvmState {
  /** EVM_INIT_HMAC: the HMAC key is loaded */
  hmacKey: Uint8Array | null;
  /** EVM_INIT_X509: signature verification enabled */
  x509: boolean;
  /** EVM_ALLOW_METADATA_WRITES */
  allowMetadataWrites: boolean;
  /** evm=fix */
  fixMode: boolean;
  readonly config: EvmConfig;
  /** keys for 0x03/0x05 signatures (`.evm` / `_evm`), null when the keyring does not exist */
  keyring: Keyring | null;
}

/** evm_key_loaded() */
export function evmKeyLoaded(s: EvmState): boolean {
  return s.hmacKey !== null || s.x509;
}

const ZERO_UUID = new Uint8Array(16);

function input(
  s: EvmState,
  inode: Inode,
  kind: EvmInputKind,
  override?: { name: string; value: Uint8Array },
): Uint8Array {
  const xattrs = new Map(inode.xattrs);
  if (override) xattrs.set(override.name, override.value);
  return evmInput({
    kind,
    xattrs,
    meta: {
      ino: BigInt(inode.ino),
      generation: inode.generation >>> 0,
      uid: inode.uid,
      gid: inode.gid,
      mode: inode.mode,
    },
    // the kernel hashes sb->s_uuid, all zero for a filesystem without one
    fsUuid: inode.fs.uuid ? parseUuid(inode.fs.uuid) : ZERO_UUID,
    config: s.config,
  });
}

/** The protected xattrs present (evm_find_protected_xattrs counts enabled names). */
export function protectedPresent(s: EvmState, inode: Inode): number {
  return s.config.enabled.filter((n) => inode.xattrs.has(n)).length;
}

/** The HMAC value (`0x02 ‖ HMAC-SHA1`) the kernel would store now, or null without key / protected xattrs. */
export function computeHmacXattr(s: EvmState, inode: Inode): Uint8Array | null {
  if (s.hmacKey === null || protectedPresent(s, inode) === 0) return null;
  return Uint8Array.of(0x02, ...evmHmac(s.hmacKey, input(s, inode, 'hmac')));
}

/** An EVM verdict and what it rests on. */
export interface EvmVerdict {
  readonly status: IntegrityStatus;
  readonly detail: string;
  /** after a successful 0x03 verification with an HMAC key, the kernel converts it to an HMAC */
  readonly convertToHmac: boolean;
}

/**
 * evm_verify_hmac() for the current on-disk state (`value` overrides the named xattr, as when IMA
 * verifies the security.ima value it just read).
 */
export function evmVerify(
  s: EvmState,
  inode: Inode,
  override?: { name: string; value: Uint8Array },
): EvmVerdict {
  const evm = inode.xattrs.get('security.evm');
  if (evm === undefined || evm.length === 0) {
    if (!inode.fs.xattrs)
      return { status: 'unknown', detail: 'filesystem without xattrs', convertToHmac: false };
    const n =
      protectedPresent(s, inode) +
      (override && !inode.xattrs.has(override.name) && s.config.enabled.includes(override.name) ? 1 : 0);
    return n > 0
      ? { status: 'no_label', detail: 'protected xattrs but no security.evm', convertToHmac: false }
      : { status: 'no_xattrs', detail: 'no protected xattrs', convertToHmac: false };
  }
  const type = evm[0];
  if (type === 0x02) {
    if (evm.length !== 21)
      return { status: 'fail', detail: 'HMAC value is not 21 bytes', convertToHmac: false };
    if (s.hmacKey === null) return { status: 'fail', detail: 'no HMAC key loaded', convertToHmac: false };
    const mac = evmHmac(s.hmacKey, input(s, inode, 'hmac', override));
    return bytesEqual(mac, evm.subarray(1))
      ? { status: 'pass', detail: 'HMAC matches', convertToHmac: false }
      : { status: 'fail', detail: 'HMAC does not match the current metadata', convertToHmac: false };
  }
  if (type === 0x03 || type === 0x05) {
    const portable = type === 0x05;
    const bad = (detail: string): EvmVerdict => ({
      status: portable ? 'fail_immutable' : 'fail',
      detail,
      convertToHmac: false,
    });
    if (evm.length <= 9) return { status: 'fail', detail: 'signature value too short', convertToHmac: false };
    if (s.keyring === null) return bad('no EVM keyring');
    let sig;
    try {
      sig = parseSignatureV2(evm);
    } catch {
      return bad('malformed signature');
    }
    const algo = hashAlgoById(sig.hashAlgo);
    if (!algo) return bad('unknown hash algorithm');
    let data: Uint8Array;
    try {
      data = input(s, inode, portable ? 'portable' : 'signature', override);
    } catch (e) {
      return bad(`cannot build EVM input: ${e instanceof Error ? e.message : String(e)}`);
    }
    const v = verifySignatureValue(sig, (a) => evmDigest(a, data), s.keyring);
    if (v.status !== 'pass') return bad(v.detail);
    if (portable) return { status: 'pass_immutable', detail: v.detail, convertToHmac: false };
    return { status: 'pass', detail: v.detail, convertToHmac: s.hmacKey !== null };
  }
  return {
    status: 'fail',
    detail: `unknown security.evm type 0x${(type ?? 0).toString(16)}`,
    convertToHmac: false,
  };
}

/**
 * evm_update_evmxattr(): after the kernel changed protected metadata, store a fresh HMAC (never
 * replacing a portable signature), or remove security.evm when nothing protected is left.
 * @returns whether security.evm changed
 */
export function evmUpdate(s: EvmState, inode: Inode): boolean {
  if (s.hmacKey === null || !inode.fs.xattrs) return false;
  const cur = inode.xattrs.get('security.evm');
  if (cur !== undefined && cur[0] === 0x05) return false;
  const v = computeHmacXattr(s, inode);
  if (v === null) return inode.xattrs.delete('security.evm');
  inode.xattrs.set('security.evm', v);
  return true;
}
