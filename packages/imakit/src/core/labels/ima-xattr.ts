/**
 * `security.ima` values (formats.md §3.1-§3.4, §0.2): bare digests (0x01), digests with an
 * algorithm byte (0x04), v1/v2/v3 signatures (0x03) and fs-verity signatures (0x06).
 *
 * Parsing is strict and byte-exact (`encodeImaXattr(parseImaXattr(b))` equals `b`). Where the
 * kernel is more lenient, the difference is documented on the function; the codec never guesses.
 */
import { CodecError } from '../../errors.ts';
import { assertBytes, concatBytes, isAllZero } from '../bytes/bytes.ts';
import { HASH_ALGO_LAST, hashAlgoById, hashAlgoByName, type HashAlgo } from '../hash/hash-algo.ts';
import {
  encodeSignatureV1,
  encodeSignatureV2,
  parseSignatureV1,
  parseSignatureV2,
  signatureVersionOf,
  XATTR_TYPE,
  type SignatureV1,
  type SignatureV2,
} from './signature-header.ts';

/** A decoded security.ima value. */
export type ImaXattr =
  | {
      readonly kind: 'digest';
      /** 0x01 IMA_XATTR_DIGEST (no algo byte) or 0x04 IMA_XATTR_DIGEST_NG */
      readonly type: 0x01 | 0x04;
      readonly algo: HashAlgo;
      /** exactly `algo.size` bytes */
      readonly digest: Uint8Array;
      /**
       * Type 0x01 only: an MD5 digest zero-padded to 20 bytes (old kernels wrote these; the kernel
       * recognizes them by zero bytes 16..19, pitfall 17). Encoding re-adds the 4 zero bytes.
       */
      readonly md5Padded?: boolean;
    }
  | { readonly kind: 'signature'; readonly sig: SignatureV2 }
  | { readonly kind: 'signature-v1'; readonly sig: SignatureV1 };

const MD5 = hashAlgoByName('md5');
const SHA1 = hashAlgoByName('sha1');

/**
 * Decode a security.ima value.
 *
 * Type 0x01 is interpreted like the kernel's `ima_get_hash_algo()`: 21 bytes → SHA-1, unless
 * digest bytes 16..19 are zero → MD5 padded to 20; 17 bytes → MD5. The kernel falls back to its
 * default `ima_hash` for any other 0x01 length; this codec rejects those (E_CODEC_BAD_LENGTH)
 * since the algorithm cannot be known from the value.
 * Type 0x04 must carry exactly the algorithm's digest size: the kernel compares only the first
 * digest-size bytes (longer values pass appraisal), this codec rejects the extra bytes.
 * Type 0x03 with version byte 1 is a v1 signature, with 2 (or 3, 2026 development series) a v2
 * header; 0x06 needs version 3. Types 0x02 and 0x05 are EVM-only, 0x00 and >= 0x07 invalid (the
 * kernel refuses to set type >= 7).
 * @throws CodecError E_CODEC_TRUNCATED, E_CODEC_UNKNOWN_TYPE, E_CODEC_UNKNOWN_ALGO,
 *   E_CODEC_BAD_LENGTH, E_CODEC_TRAILING, E_CODEC_BAD_VERSION (+ the signature header's codes)
 * @example parseImaXattr(hex('0404a948…a447')) // {kind:'digest', type:4, algo: sha256, digest}
 */
export function parseImaXattr(bytes: Uint8Array): ImaXattr {
  assertBytes(bytes, undefined, 'security.ima value');
  if (bytes.length === 0)
    throw new CodecError('E_CODEC_TRUNCATED', 'empty security.ima value', { offset: 0, field: 'type' });
  const type = bytes[0]!;
  switch (type) {
    case XATTR_TYPE.IMA_DIGEST:
      return parseDigest01(bytes);
    case XATTR_TYPE.IMA_DIGEST_NG:
      return parseDigest04(bytes);
    case XATTR_TYPE.DIGSIG:
      return signatureVersionOf(bytes) === 1
        ? Object.freeze({ kind: 'signature-v1', sig: parseSignatureV1(bytes) })
        : Object.freeze({ kind: 'signature', sig: parseSignatureV2(bytes) });
    case XATTR_TYPE.IMA_VERITY_DIGSIG:
      return Object.freeze({ kind: 'signature', sig: parseSignatureV2(bytes) });
    case XATTR_TYPE.EVM_HMAC:
    case XATTR_TYPE.EVM_PORTABLE_DIGSIG:
      throw new CodecError(
        'E_CODEC_UNKNOWN_TYPE',
        `type 0x0${type} is an EVM type, not valid in security.ima`,
        {
          offset: 0,
          field: 'type',
        },
      );
    default:
      throw new CodecError(
        'E_CODEC_UNKNOWN_TYPE',
        type >= XATTR_TYPE.LAST
          ? `type 0x${type.toString(16).padStart(2, '0')} >= IMA_XATTR_LAST (0x07)`
          : `unknown security.ima type 0x${type.toString(16).padStart(2, '0')}`,
        { offset: 0, field: 'type' },
      );
  }
}

function parseDigest01(bytes: Uint8Array): ImaXattr {
  const body = bytes.subarray(1);
  if (body.length === SHA1.size) {
    if (isAllZero(body.subarray(16, 20)))
      return Object.freeze({
        kind: 'digest',
        type: 0x01,
        algo: MD5,
        digest: body.subarray(0, 16),
        md5Padded: true,
      });
    return Object.freeze({ kind: 'digest', type: 0x01, algo: SHA1, digest: body });
  }
  if (body.length === MD5.size) return Object.freeze({ kind: 'digest', type: 0x01, algo: MD5, digest: body });
  throw new CodecError(
    'E_CODEC_BAD_LENGTH',
    `type 0x01 digest of ${body.length} bytes (expected 16 for md5 or 20 for sha1)`,
    { offset: 1, field: 'digest' },
  );
}

function parseDigest04(bytes: Uint8Array): ImaXattr {
  if (bytes.length < 2)
    throw new CodecError('E_CODEC_TRUNCATED', 'type 0x04 value without an algorithm byte', {
      offset: 1,
      field: 'hash_algo',
    });
  const id = bytes[1]!;
  const algo = id < HASH_ALGO_LAST ? hashAlgoById(id) : undefined;
  if (!algo)
    throw new CodecError(
      'E_CODEC_UNKNOWN_ALGO',
      `hash algorithm id ${id} >= HASH_ALGO__LAST (${HASH_ALGO_LAST})`,
      {
        offset: 1,
        field: 'hash_algo',
      },
    );
  const body = bytes.subarray(2);
  if (body.length < algo.size)
    throw new CodecError(
      'E_CODEC_TRUNCATED',
      `${algo.name} digest needs ${algo.size} bytes, ${body.length} present`,
      {
        offset: bytes.length,
        field: 'digest',
      },
    );
  if (body.length > algo.size)
    throw new CodecError(
      'E_CODEC_TRAILING',
      `${body.length - algo.size} bytes after the ${algo.name} digest`,
      {
        offset: 2 + algo.size,
        field: 'digest',
      },
    );
  return Object.freeze({ kind: 'digest', type: 0x04, algo, digest: body });
}

/**
 * Encode a security.ima value (inverse of {@link parseImaXattr}). Misuse throws RangeError
 * (digest of the wrong size, type 0x01 with an algorithm other than md4/md5/sha1...).
 */
export function encodeImaXattr(v: ImaXattr): Uint8Array {
  switch (v.kind) {
    case 'digest': {
      assertBytes(v.digest, v.algo.size, `${v.algo.name} digest`);
      if (v.type === 0x04) return concatBytes(new Uint8Array([0x04, v.algo.id]), v.digest);
      if (v.type !== 0x01) throw new RangeError('digest type must be 0x01 or 0x04');
      if (v.md5Padded) {
        if (v.algo.id !== MD5.id) throw new RangeError('md5Padded requires md5');
        return concatBytes(new Uint8Array([0x01]), v.digest, new Uint8Array(4));
      }
      // The kernel can only tell md5 (17 bytes) and sha1 (21 bytes) apart by length; md4 (16
      // bytes) written by evmctl reads back as md5 — the kernel itself can't do better.
      if (v.algo.id > SHA1.id) throw new RangeError(`type 0x01 cannot carry ${v.algo.name}; use 0x04`);
      if (v.algo.id === SHA1.id && isAllZero(v.digest.subarray(16, 20)))
        throw new RangeError('a sha1 digest ending in 4 zero bytes reads back as padded md5 in type 0x01');
      return concatBytes(new Uint8Array([0x01]), v.digest);
    }
    case 'signature':
      if (v.sig.xattrType === 0x05) throw new RangeError('type 0x05 is not valid in security.ima');
      return encodeSignatureV2(v.sig);
    case 'signature-v1':
      return encodeSignatureV1(v.sig);
  }
}

/**
 * The digest value evmctl `ima_hash` writes (and the kernel writes in fix mode): type 0x01 for
 * md4/md5/sha1 (ids <= 2), otherwise `04 ‖ id ‖ digest` (formats.md §3.1, pitfall 17).
 * @example imaDigestXattr(hashAlgoByName('sha256'), d) // 04 04 ‖ d
 */
export function imaDigestXattr(algo: HashAlgo, digest: Uint8Array): Uint8Array {
  assertBytes(digest, algo.size, `${algo.name} digest`);
  return algo.id <= SHA1.id
    ? concatBytes(new Uint8Array([0x01]), digest)
    : concatBytes(new Uint8Array([0x04, algo.id]), digest);
}
