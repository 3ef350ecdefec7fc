/**
 * `security.evm` values (formats.md §4.1): HMAC-SHA1 (0x02), signatures (0x03, v2 or legacy v1)
 * and portable signatures (0x05, v2 header; version 3 only in the 2026 development series).
 *
 * Structure only: nothing here computes or checks an HMAC or a signature.
 */
import { CodecError } from '../../errors.ts';
import { assertBytes, concatBytes } from '../bytes/bytes.ts';
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

/** HMAC-SHA1 length: EVM HMACs are always SHA-1 (pitfall 19). */
export const EVM_HMAC_LEN = 20;

/** A decoded security.evm value. */
export type EvmXattr =
  | { readonly kind: 'hmac'; readonly mac: Uint8Array }
  | {
      readonly kind: 'signature';
      /** true for type 0x05 (immutable, signed without inode number, generation and fs UUID) */
      readonly portable: boolean;
      readonly sig: SignatureV2;
    }
  | { readonly kind: 'signature-v1'; readonly sig: SignatureV1 };

/**
 * Decode a security.evm value.
 *  - 0x02: exactly 21 bytes (the kernel's evm_verify_hmac requires `xattr_len == 21`).
 *  - 0x03: v1 header when the version byte is 1, else a v2/v3 header.
 *  - 0x05: v2/v3 header.
 * @throws CodecError E_CODEC_TRUNCATED, E_CODEC_BAD_LENGTH, E_CODEC_UNKNOWN_TYPE (+ header codes)
 * @example parseEvmXattr(hex('02debcd8…7d18')) // {kind:'hmac', mac}
 */
export function parseEvmXattr(bytes: Uint8Array): EvmXattr {
  assertBytes(bytes, undefined, 'security.evm value');
  if (bytes.length === 0)
    throw new CodecError('E_CODEC_TRUNCATED', 'empty security.evm value', { offset: 0, field: 'type' });
  const type = bytes[0]!;
  switch (type) {
    case XATTR_TYPE.EVM_HMAC:
      if (bytes.length !== 1 + EVM_HMAC_LEN)
        throw new CodecError('E_CODEC_BAD_LENGTH', `HMAC value of ${bytes.length} bytes (must be 21)`, {
          offset: 1,
          field: 'hmac',
        });
      return Object.freeze({ kind: 'hmac', mac: bytes.subarray(1) });
    case XATTR_TYPE.DIGSIG:
      return signatureVersionOf(bytes) === 1
        ? Object.freeze({ kind: 'signature-v1', sig: parseSignatureV1(bytes) })
        : Object.freeze({ kind: 'signature', portable: false, sig: parseSignatureV2(bytes) });
    case XATTR_TYPE.EVM_PORTABLE_DIGSIG:
      return Object.freeze({ kind: 'signature', portable: true, sig: parseSignatureV2(bytes) });
    default:
      throw new CodecError(
        'E_CODEC_UNKNOWN_TYPE',
        `type 0x${type.toString(16).padStart(2, '0')} is not a security.evm type (0x02, 0x03, 0x05)`,
        { offset: 0, field: 'type' },
      );
  }
}

/** Encode a security.evm value (inverse of {@link parseEvmXattr}). Misuse throws RangeError. */
export function encodeEvmXattr(v: EvmXattr): Uint8Array {
  switch (v.kind) {
    case 'hmac':
      assertBytes(v.mac, EVM_HMAC_LEN, 'EVM HMAC');
      return concatBytes(new Uint8Array([XATTR_TYPE.EVM_HMAC]), v.mac);
    case 'signature': {
      const want = v.portable ? 0x05 : 0x03;
      if (v.sig.xattrType !== want)
        throw new RangeError(
          `portable=${v.portable} requires xattrType 0x0${want}, got 0x0${v.sig.xattrType}`,
        );
      return encodeSignatureV2(v.sig);
    }
    case 'signature-v1':
      return encodeSignatureV1(v.sig);
  }
}
