/**
 * The exact bytes the kernel hashes for `security.evm` (formats.md §4.3; security/integrity/evm/
 * evm_crypto.c `evm_calc_hmac_or_hash()` and `hmac_add_misc()`):
 *
 * ```
 * input = value(x1) ‖ value(x2) ‖ …   present protected xattrs in list order; raw values only
 *       ‖ h_misc                      padded C struct, host byte order (LE), pitfall 20
 *       ‖ fs_uuid[16]                 CONFIG_EVM_ATTR_FSUUID, not for portable 0x05
 * ```
 *
 * HMACs (0x02) are HMAC-SHA1 over `input` keyed by the evm-key zero-padded to 128 bytes
 * (pitfall 19); signatures (0x03/0x05) sign H_alg(input).
 */
import { createHmac } from 'node:crypto';
import { ImakitError } from '../../errors.ts';
import { assertBytes, concatBytes } from '../bytes/bytes.ts';
import { XATTR_NAME_IMA, type EvmConfig } from './evm-config.ts';
import { hash, type HashAlgoLike } from '../hash/hash-algo.ts';
import { UUID_SIZE } from '../bytes/uuid.ts';

/** Inode metadata covered by `h_misc`. */
export interface InodeMeta {
  /** inode number (`i_ino`, `unsigned long`) */
  readonly ino: bigint;
  /** inode generation (`i_generation`, u32; FS_IOC_GETVERSION) */
  readonly generation: number;
  /** owner uid in the initial user namespace */
  readonly uid: number;
  /** owner gid in the initial user namespace */
  readonly gid: number;
  /** full `i_mode` including the file type bits (S_IFREG = 0o100000) */
  readonly mode: number;
}

/** Kind of EVM value whose input is built. */
export type EvmInputKind = 'hmac' | 'signature' | 'portable';

/** `MAX_KEY_SIZE` in evm_crypto.c: the evm-key buffer that is the HMAC key. */
export const EVM_HMAC_KEY_BUFFER = 128;
/** Size of an EVM HMAC (SHA-1). */
export const EVM_HMAC_SIZE = 20;

const U32_MAX = 0xffffffff;

function assertU32(v: number, label: string): void {
  if (!Number.isInteger(v) || v < 0 || v > U32_MAX) throw new RangeError(`${label} must be a u32, got ${v}`);
}

/**
 * The `h_misc` struct bytes (pitfall 20): 64-bit layout `<QIIIH2x` (24 bytes), 32-bit layout
 * `<IIIIH2x` (20 bytes), padding zero. Portable values zero `ino` and `generation`.
 *
 * On the 32-bit layout `ino` is truncated to its low 32 bits, as evmctl `--m32` does when it copies
 * a 64-bit `st_ino` into the 32-bit field (a 32-bit kernel's `i_ino` cannot be wider).
 *
 * @param meta inode metadata
 * @param layout 64 or 32 (`unsigned long` width of the verifying kernel)
 * @param portable zero ino and generation (0x05 signatures)
 * @throws RangeError for out-of-range fields (uid/gid/generation must be u32, mode u16, ino u64)
 * @example toHex(hMisc({ino: 1000n, generation: 12345, uid: 0, gid: 0, mode: 0o100644}, 64, false))
 *   // 'e803000000000000393000000000000000000000a4810000'
 */
export function hMisc(meta: InodeMeta, layout: 64 | 32, portable: boolean): Uint8Array {
  if (layout !== 64 && layout !== 32) throw new RangeError(`layout must be 64 or 32, got ${String(layout)}`);
  if (typeof meta.ino !== 'bigint' || meta.ino < 0n || meta.ino > 0xffffffffffffffffn)
    throw new RangeError('ino must be a bigint in u64 range');
  assertU32(meta.generation, 'generation');
  assertU32(meta.uid, 'uid');
  assertU32(meta.gid, 'gid');
  if (!Number.isInteger(meta.mode) || meta.mode < 0 || meta.mode > 0xffff)
    throw new RangeError(`mode must be a u16, got ${meta.mode}`);
  const out = new Uint8Array(layout === 64 ? 24 : 20);
  const dv = new DataView(out.buffer);
  const ino = portable ? 0n : meta.ino;
  const gen = portable ? 0 : meta.generation;
  let o = 0;
  if (layout === 64) {
    dv.setBigUint64(0, ino, true);
    o = 8;
  } else {
    dv.setUint32(0, Number(ino & 0xffffffffn), true);
    o = 4;
  }
  dv.setUint32(o, gen, true);
  dv.setUint32(o + 4, meta.uid, true);
  dv.setUint32(o + 8, meta.gid, true);
  dv.setUint16(o + 12, meta.mode, true);
  // the 2 trailing padding bytes stay zero: the kernel memsets the struct before filling it
  return out;
}

/** Arguments of {@link evmInput}. */
export interface EvmInputArgs {
  readonly kind: EvmInputKind;
  /** present xattr values by name (absent names are simply missing); extra names are ignored */
  readonly xattrs: ReadonlyMap<string, Uint8Array>;
  readonly meta: InodeMeta;
  /**
   * the filesystem UUID (16 bytes) or null to omit it (evmctl `--uuid` without a value). Note the
   * kernel always hashes `sb->s_uuid` when CONFIG_EVM_ATTR_FSUUID is set, which is all zeros on
   * filesystems without a UUID: pass 16 zero bytes to model that.
   */
  readonly fsUuid: Uint8Array | null;
  readonly config: EvmConfig;
}

/**
 * The bytes hashed (or HMAC'ed) for an EVM value.
 *
 * `hmac` and `signature` use `config.enabled`, `portable` uses `config.all` (pitfall 21). The fs
 * UUID is appended only for `hmac`/`signature`, only when `config.fsUuid` and a UUID is given.
 *
 * @throws ImakitError E_XATTR_MISSING (field `security.ima`) for `portable` without security.ima:
 *   the kernel refuses such input with -EPERM
 * @throws RangeError for a UUID that is not 16 bytes or out-of-range metadata
 */
export function evmInput(args: EvmInputArgs): Uint8Array {
  const { kind, xattrs, meta, fsUuid, config } = args;
  if (kind !== 'hmac' && kind !== 'signature' && kind !== 'portable')
    throw new TypeError(`kind must be hmac, signature or portable, got ${String(kind)}`);
  if (fsUuid !== null) assertBytes(fsUuid, UUID_SIZE, 'fsUuid');
  const portable = kind === 'portable';
  const names = portable ? config.all : config.enabled;
  const parts: Uint8Array[] = [];
  let imaPresent = false;
  for (const name of names) {
    const v = xattrs.get(name);
    if (v === undefined) continue;
    assertBytes(v, undefined, `xattr ${name}`);
    if (name === XATTR_NAME_IMA) imaPresent = true;
    parts.push(v);
  }
  if (portable && !imaPresent)
    throw new ImakitError('E_XATTR_MISSING', 'a portable EVM signature must cover security.ima', {
      field: XATTR_NAME_IMA,
    });
  parts.push(hMisc(meta, config.layout, portable));
  if (!portable && config.fsUuid && fsUuid !== null) parts.push(fsUuid);
  return concatBytes(...parts);
}

/**
 * The EVM HMAC (type 0x02 payload): HMAC-SHA1 whose key is the evm-key copied into a zeroed
 * 128-byte buffer, ALL 128 bytes being the key (pitfall 19; evm_crypto.c `evm_set_key()` and
 * `init_desc()`). Since 128 > 64 (the SHA-1 block), HMAC pre-hashes that buffer, so the raw key
 * gives a different (wrong) MAC.
 * @param key decrypted evm-key, at most 128 bytes
 * @param input bytes from {@link evmInput} with kind `hmac`
 * @returns 20 bytes
 * @throws RangeError for a key longer than 128 bytes
 */
export function evmHmac(key: Uint8Array, input: Uint8Array): Uint8Array {
  assertBytes(key, undefined, 'key');
  assertBytes(input, undefined, 'input');
  if (key.length > EVM_HMAC_KEY_BUFFER)
    throw new RangeError(`EVM key must be at most ${EVM_HMAC_KEY_BUFFER} bytes, got ${key.length}`);
  const padded = new Uint8Array(EVM_HMAC_KEY_BUFFER);
  padded.set(key);
  const mac = createHmac('sha1', padded).update(input).digest();
  return new Uint8Array(mac.buffer, mac.byteOffset, mac.length);
}

/**
 * The digest an EVM signature (0x03/0x05) signs: H_algo(input), algo from the signature header.
 * @throws ImakitError E_HASH_UNKNOWN / E_HASH_UNSUPPORTED
 */
export function evmDigest(algo: HashAlgoLike, input: Uint8Array): Uint8Array {
  assertBytes(input, undefined, 'input');
  return hash(algo, input);
}
