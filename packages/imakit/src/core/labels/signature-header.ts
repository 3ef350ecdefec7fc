/**
 * The digital-signature headers shared by `security.ima` and `security.evm` values.
 *
 *  - v2 / v3 (`struct signature_v2_hdr`, security/integrity/integrity.h; formats.md §3.2, §3.3):
 *    `type(1) ‖ version(1) ‖ hash_algo(1) ‖ keyid(4, BE) ‖ sig_size(2, BE) ‖ sig[sig_size]`.
 *  - v1 (legacy "digsig", lib/digsig.c; formats.md §3.4): parsed and re-encoded for reporting only.
 *
 * These codecs check structure only: they never verify a signature and never decide whether a
 * kernel would accept a (type, version) pair in a given policy context (that is appraisal's job,
 * formats.md §3.6). The one structural rule enforced for type/version is the kernel's own
 * "0x06 must be version 3" (ima_appraise.c), because such a value has no meaning otherwise.
 */
import { CodecError } from '../../errors.ts';
import { assertBytes, ByteReader, concatBytes, u16Bytes, u32Bytes } from '../bytes/bytes.ts';
import { HASH_ALGO_LAST } from '../hash/hash-algo.ts';

/** Xattr type bytes that carry a signature header (formats.md §0.2). */
export const XATTR_TYPE = Object.freeze({
  IMA_DIGEST: 0x01,
  EVM_HMAC: 0x02,
  DIGSIG: 0x03,
  IMA_DIGEST_NG: 0x04,
  EVM_PORTABLE_DIGSIG: 0x05,
  IMA_VERITY_DIGSIG: 0x06,
  /** IMA_XATTR_LAST: setxattr of security.ima with a type >= this is rejected */
  LAST: 0x07,
});

/** Header length in bytes, type byte included (evmctl's C struct omits the type byte: 8). */
export const SIG_V2_HEADER_LEN = 9;
/** v1 header length in bytes, type byte included, up to and including the MPI bit count. */
export const SIG_V1_HEADER_LEN = 19;

/** A parsed v2/v3 signature value (the whole xattr, type byte included). */
export interface SignatureV2 {
  /** 2 (signature_v2_hdr) or 3 (sigv3: the signed digest is H(ima_file_id), §3.3) */
  readonly version: 2 | 3;
  /** 0x03 digsig (IMA, or EVM non-portable), 0x05 portable EVM, 0x06 fs-verity (v3 only) */
  readonly xattrType: 0x03 | 0x05 | 0x06;
  /** kernel hash algorithm id (< HASH_ALGO_LAST; possibly one this runtime cannot compute) */
  readonly hashAlgo: number;
  /** the 32-bit key id, as the BE u32 (the kernel looks up `id:%08x`); NOT covered by the signature */
  readonly keyid: number;
  /** signature body: PKCS#1 v1.5 block for RSA, DER SEQUENCE{r,s} for ECDSA/SM2 */
  readonly sig: Uint8Array;
}

/** A parsed v1 ("digsig") signature value. Only reported; imakit never produces these. */
export interface SignatureV1 {
  /** u32 written by evmctl as time(NULL), in the signer's byte order (read here as LE; opaque) */
  readonly timestamp: number;
  /** 0 = RSA (PUBKEY_ALGO_RSA), the only algorithm lib/digsig.c accepts */
  readonly pubkeyAlgo: number;
  /** 0 = SHA1, 1 = SHA256: the FILE digest algorithm, informational only */
  readonly hashAlgo: number;
  /** the 8-byte v1 key id (bytes 12..19 of SHA-1 over the key2bin blob, §3.4) */
  readonly keyid8: Uint8Array;
  /** the MPI's bit count (u16 BE); the signature has ceil(sigBits / 8) bytes */
  readonly sigBits: number;
  /** big-endian RSA signature magnitude */
  readonly sig: Uint8Array;
}

function isSigType(t: number): t is 0x03 | 0x05 | 0x06 {
  return t === 0x03 || t === 0x05 || t === 0x06;
}

/**
 * Parse a complete v2/v3 signature value (type byte first).
 *
 * Rules (kernel: ima_appraise.c / digsig_asymmetric.c; pitfall 12): at least one signature byte,
 * `total_len - 9 == sig_size` exactly (trailing bytes rejected), `hash_algo < HASH_ALGO__LAST`,
 * type 0x06 only with version 3.
 * @param bytes the xattr value
 * @returns a frozen SignatureV2 whose `sig` is a view into `bytes`
 * @throws CodecError E_CODEC_TRUNCATED, E_CODEC_TRAILING, E_CODEC_BAD_LENGTH, E_CODEC_UNKNOWN_TYPE,
 *   E_CODEC_BAD_VERSION, E_CODEC_UNKNOWN_ALGO
 * @example parseSignatureV2(hex('0302044d0e4f4d0100…')).keyid === 0x4d0e4f4d
 */
export function parseSignatureV2(bytes: Uint8Array): SignatureV2 {
  assertBytes(bytes, undefined, 'signature');
  const r: ByteReader = new ByteReader(bytes);
  const type = r.u8('type');
  if (!isSigType(type))
    r.fail('E_CODEC_UNKNOWN_TYPE', `type 0x${hex2(type)} is not a signature type`, 'type', 0);
  const version = r.u8('version');
  if (version !== 2 && version !== 3)
    r.fail('E_CODEC_BAD_VERSION', `signature version ${version} (expected 2 or 3)`, 'version', 1);
  if (type === 0x06 && version !== 3)
    r.fail('E_CODEC_BAD_VERSION', 'type 0x06 (fs-verity) requires signature version 3', 'version', 1);
  const hashAlgo = r.u8('hash_algo');
  if (hashAlgo >= HASH_ALGO_LAST)
    r.fail(
      'E_CODEC_UNKNOWN_ALGO',
      `hash_algo ${hashAlgo} >= HASH_ALGO__LAST (${HASH_ALGO_LAST})`,
      'hash_algo',
      2,
    );
  const keyid = r.u32('keyid', 'be');
  const sigSize = r.u16('sig_size', 'be');
  if (sigSize === 0)
    r.fail('E_CODEC_BAD_LENGTH', 'sig_size is 0 (the kernel requires a signature)', 'sig_size', 7);
  if (sigSize > r.remaining)
    r.fail('E_CODEC_TRUNCATED', `sig_size ${sigSize} but only ${r.remaining} bytes follow`, 'sig_size', 7);
  const sig = r.bytesView(sigSize, 'sig');
  r.end('sig');
  return Object.freeze({ version, xattrType: type, hashAlgo, keyid, sig });
}

/**
 * Encode a v2/v3 signature value. Misuse (out-of-range fields) throws RangeError.
 * @example encodeSignatureV2({version: 2, xattrType: 3, hashAlgo: 4, keyid: 0x4d0e4f4d, sig})
 */
export function encodeSignatureV2(s: SignatureV2): Uint8Array {
  if (!isSigType(s.xattrType))
    throw new RangeError(`xattrType 0x${hex2(s.xattrType)} is not a signature type`);
  if (s.version !== 2 && s.version !== 3) throw new RangeError('version must be 2 or 3');
  if (s.xattrType === 0x06 && s.version !== 3) throw new RangeError('type 0x06 requires version 3');
  if (!Number.isInteger(s.hashAlgo) || s.hashAlgo < 0 || s.hashAlgo >= HASH_ALGO_LAST)
    throw new RangeError(`hashAlgo ${s.hashAlgo} out of range`);
  if (!Number.isInteger(s.keyid) || s.keyid < 0 || s.keyid > 0xffffffff)
    throw new RangeError('keyid must be a u32');
  assertBytes(s.sig, undefined, 'sig');
  if (s.sig.length === 0 || s.sig.length > 0xffff) throw new RangeError('sig must be 1..65535 bytes');
  return concatBytes(
    new Uint8Array([s.xattrType, s.version, s.hashAlgo]),
    u32Bytes(s.keyid, 'be'),
    u16Bytes(s.sig.length, 'be'),
    s.sig,
  );
}

/**
 * Parse a complete v1 signature value: `03 01 timestamp(4) algo(1) hash(1) keyid(8) nmpi(1)=1
 * bits(2, BE) sig[ceil(bits/8)]` (formats.md §3.4). Trailing bytes are rejected.
 * @throws CodecError E_CODEC_TRUNCATED, E_CODEC_TRAILING, E_CODEC_UNKNOWN_TYPE, E_CODEC_BAD_VERSION,
 *   E_CODEC_BAD_VALUE (nmpi != 1), E_CODEC_BAD_LENGTH (zero-length MPI)
 */
export function parseSignatureV1(bytes: Uint8Array): SignatureV1 {
  assertBytes(bytes, undefined, 'signature');
  const r: ByteReader = new ByteReader(bytes);
  const type = r.u8('type');
  if (type !== 0x03)
    r.fail('E_CODEC_UNKNOWN_TYPE', `type 0x${hex2(type)}: v1 signatures use type 0x03`, 'type', 0);
  const version = r.u8('version');
  if (version !== 1) r.fail('E_CODEC_BAD_VERSION', `signature version ${version} (expected 1)`, 'version', 1);
  const timestamp = r.u32('timestamp', 'le');
  const pubkeyAlgo = r.u8('pubkey_algo');
  const hashAlgo = r.u8('hash');
  const keyid8 = r.bytesView(8, 'keyid');
  const nmpi = r.u8('nmpi');
  if (nmpi !== 1) r.fail('E_CODEC_BAD_VALUE', `nmpi ${nmpi} (expected 1)`, 'nmpi', 16);
  const sigBits = r.u16('mpi_bits', 'be');
  if (sigBits === 0) r.fail('E_CODEC_BAD_LENGTH', 'MPI has 0 bits', 'mpi_bits', 17);
  const n = (sigBits + 7) >> 3;
  if (n > r.remaining)
    r.fail(
      'E_CODEC_TRUNCATED',
      `MPI of ${sigBits} bits needs ${n} bytes, ${r.remaining} left`,
      'sig',
      r.offset,
    );
  const sig = r.bytesView(n, 'sig');
  r.end('sig');
  return Object.freeze({ timestamp, pubkeyAlgo, hashAlgo, keyid8, sigBits, sig });
}

/** Encode a v1 signature value. Misuse throws RangeError. */
export function encodeSignatureV1(s: SignatureV1): Uint8Array {
  assertBytes(s.keyid8, 8, 'keyid8');
  assertBytes(s.sig, undefined, 'sig');
  if (!Number.isInteger(s.sigBits) || s.sigBits < 1 || s.sigBits > 0xffff)
    throw new RangeError('sigBits out of range');
  if (s.sig.length !== (s.sigBits + 7) >> 3) throw new RangeError('sig length must be ceil(sigBits / 8)');
  for (const [v, name] of [
    [s.pubkeyAlgo, 'pubkeyAlgo'],
    [s.hashAlgo, 'hashAlgo'],
  ] as const)
    if (!Number.isInteger(v) || v < 0 || v > 0xff) throw new RangeError(`${name} must be a u8`);
  if (!Number.isInteger(s.timestamp) || s.timestamp < 0 || s.timestamp > 0xffffffff)
    throw new RangeError('timestamp must be a u32');
  return concatBytes(
    new Uint8Array([0x03, 0x01]),
    u32Bytes(s.timestamp, 'le'),
    new Uint8Array([s.pubkeyAlgo, s.hashAlgo]),
    s.keyid8,
    new Uint8Array([1]),
    u16Bytes(s.sigBits, 'be'),
    s.sig,
  );
}

/**
 * Which header a type-0x03/0x05/0x06 value carries, judged from its version byte (offset 1),
 * without parsing the rest.
 * @throws CodecError E_CODEC_TRUNCATED when there is no version byte
 */
export function signatureVersionOf(bytes: Uint8Array): number {
  assertBytes(bytes, undefined, 'signature');
  if (bytes.length < 2)
    throw new CodecError('E_CODEC_TRUNCATED', 'no signature version byte', {
      offset: bytes.length,
      field: 'version',
    });
  return bytes[1]!;
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}
