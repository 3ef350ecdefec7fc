/**
 * IMA appraisal of `security.ima` (security/integrity/ima/ima_appraise.c, formats.md §3.6):
 * ima_get_hash_algo(), xattr_verify() and the decision part of ima_appraise_measurement(), working
 * on the raw xattr bytes the way the kernel does (type byte, lengths), not on a strict decode.
 */
import { findHashAlgo, hashAlgoById } from '../core/hash/hash-algo.ts';
import { bytesEqual, isAllZero } from '../core/bytes/bytes.ts';
import { parseSignatureV2 } from '../core/labels/signature-header.ts';
import { verifySignatureValue, type Keyring } from '../core/labels/ima-signature.ts';
import type { IntegrityStatus } from './inode-state.ts';

/** xattr type bytes (enum evm_ima_xattr_type). */
export const XT = Object.freeze({
  DIGEST: 0x01,
  EVM_HMAC: 0x02,
  DIGSIG: 0x03,
  DIGEST_NG: 0x04,
  EVM_PORTABLE: 0x05,
  VERITY_DIGSIG: 0x06,
  LAST: 0x07,
});

/**
 * ima_get_hash_algo(): the algorithm the file is hashed with for this xattr value. Falls back to
 * `imaHash` for no value, short values, unknown ids (>= `hashAlgoLast`) and unrecognised types.
 * This is why the xattr's algorithm decides the MEASURED algorithm (real-kernel.md §7).
 */
export function imaGetHashAlgo(xattr: Uint8Array | null, imaHash: string, hashAlgoLast: number): string {
  if (!xattr || xattr.length < 2) return imaHash;
  const type = xattr[0];
  const byId = (id: number): string => (id < hashAlgoLast ? (hashAlgoById(id)?.name ?? imaHash) : imaHash);
  switch (type) {
    case XT.VERITY_DIGSIG:
      if (xattr[1] !== 3 || xattr.length <= 9 || (xattr[2] ?? 0xff) >= hashAlgoLast) return imaHash;
      return byId(xattr[2] ?? 0);
    case XT.DIGSIG:
      if (xattr[1] !== 2 || xattr.length <= 9 || (xattr[2] ?? 0xff) >= hashAlgoLast) return imaHash;
      return byId(xattr[2] ?? 0);
    case XT.DIGEST_NG:
      return (xattr[1] ?? 0xff) < hashAlgoLast ? byId(xattr[1] ?? 0) : imaHash;
    case XT.DIGEST:
      if (xattr.length === 21) return isAllZero(xattr.subarray(17, 21)) ? 'md5' : 'sha1';
      if (xattr.length === 17) return 'md5';
      return imaHash;
    default:
      return imaHash;
  }
}

/** Flags of the matched appraise rule that appraisal reads (iint->flags). */
export interface AppraiseFlags {
  readonly digsigRequired: boolean;
  readonly verityRequired: boolean;
  readonly modsigAllowed: boolean;
}

/** What the kernel can verify (from the profile). */
export interface VerifyCaps {
  readonly ecdsa: boolean;
  readonly sm2: boolean;
  readonly v1: boolean;
  readonly hashAlgoLast: number;
}

/** Result of xattr_verify(). */
export interface XattrVerdict {
  readonly status: IntegrityStatus;
  /** audit cause when not pass */
  readonly cause: string;
  /** the value is a signature (sets IMA_DIGSIG) */
  readonly digsig: boolean;
  /** how a signature check went, for explanations */
  readonly detail?: string;
}

/**
 * xattr_verify(): check a security.ima value against the collected file digest.
 *
 * @param evmStatus the EVM verdict on security.ima (pass_immutable lets a plain hash stand in for a
 *   signature: a valid portable EVM signature covers it)
 */
export function xattrVerify(
  xattr: Uint8Array,
  file: { algo: string; digest: Uint8Array },
  flags: AppraiseFlags,
  keyring: Keyring | null,
  caps: VerifyCaps,
  evmStatus: IntegrityStatus,
): XattrVerdict {
  const type = xattr[0];
  switch (type) {
    case XT.DIGEST_NG:
    case XT.DIGEST: {
      const start = type === XT.DIGEST_NG ? 1 : 0;
      let digsig = false;
      if (evmStatus !== 'pass_immutable') {
        if (flags.digsigRequired)
          return {
            status: 'fail',
            cause: flags.verityRequired ? 'verity-signature-required' : 'IMA-signature-required',
            digsig: false,
          };
      } else digsig = true;
      const data = xattr.subarray(1 + start);
      // the value may be longer (old md5 values occupied 20 bytes): compare the digest length only
      if (data.length < file.digest.length || !bytesEqual(data.subarray(0, file.digest.length), file.digest))
        return { status: 'fail', cause: 'invalid-hash', digsig };
      return { status: 'pass', cause: '', digsig };
    }
    case XT.DIGSIG: {
      if (flags.digsigRequired && flags.verityRequired)
        return { status: 'fail', cause: 'verity-signature-required', digsig: true };
      const version = xattr[1] ?? 0;
      if (version >= 3) return { status: 'fail', cause: 'invalid-signature-version', digsig: true };
      if (version === 1) {
        // digsig_verify() (v1 RSA "digsig"): not verifiable on the kernels we model (real-kernel.md §7)
        return caps.v1
          ? {
              status: 'fail',
              cause: 'invalid-signature',
              digsig: true,
              detail: 'v1 signatures are not modelled',
            }
          : {
              status: 'fail',
              cause: 'invalid-signature',
              digsig: true,
              detail: 'v1 signature: rejected by this kernel',
            };
      }
      if (version !== 2)
        return {
          status: 'unknown',
          cause: 'unknown',
          digsig: true,
          detail: `signature version ${version}: -EOPNOTSUPP`,
        };
      return verifyV2(xattr, file, keyring, caps);
    }
    case XT.VERITY_DIGSIG:
      if (flags.digsigRequired && !flags.verityRequired)
        return { status: 'fail', cause: 'IMA-signature-required', digsig: true };
      // fs-verity digests are not modelled: the file's verity digest is unknown here
      return {
        status: 'fail',
        cause: 'invalid-verity-signature',
        digsig: true,
        detail: 'fs-verity appraisal is not modelled',
      };
    default:
      return { status: 'unknown', cause: 'unknown-ima-data', digsig: false };
  }
}

function verifyV2(
  xattr: Uint8Array,
  file: { algo: string; digest: Uint8Array },
  keyring: Keyring | null,
  caps: VerifyCaps,
): XattrVerdict {
  const fail = (detail: string): XattrVerdict => ({
    status: 'fail',
    cause: 'invalid-signature',
    digsig: true,
    detail,
  });
  if (keyring === null) return fail('no IMA keyring (request_key failed: -ENOKEY)');
  // asymmetric_verify(): exact length, known algorithm
  if (xattr.length <= 9) return fail('-EBADMSG: no signature bytes');
  const sigSize = ((xattr[7] ?? 0) << 8) | (xattr[8] ?? 0);
  if (xattr.length - 9 !== sigSize) return fail('-EBADMSG: sig_size does not match the value length');
  const algoId = xattr[2] ?? 0xff;
  if (algoId >= caps.hashAlgoLast) return fail('-ENOPKG: unknown hash algorithm');
  let sig;
  try {
    sig = parseSignatureV2(xattr);
  } catch {
    return fail('-EBADMSG: malformed signature header');
  }
  const algo = hashAlgoById(algoId);
  // the collected digest used the header's algorithm (imaGetHashAlgo), so it is the signed digest
  const v = verifySignatureValue(
    sig,
    (a) => {
      if (a.name !== file.algo)
        throw new Error(`internal: signature algorithm ${a.name} but file hashed with ${file.algo}`);
      return file.digest;
    },
    keyring,
  );
  if (v.status === 'pass') return { status: 'pass', cause: '', digsig: true, detail: v.detail };
  if (v.status === 'unknown-key') return fail(`-ENOKEY: no key ${v.keyid} in the IMA keyring`);
  return fail(`${v.detail}${algo ? '' : ' (unknown algorithm)'}`);
}

/**
 * The value `ima_appraise=fix` writes (ima_fix_xattr): 0x01 ‖ digest for md4/md5/sha1, else
 * 0x04 ‖ algo ‖ digest.
 */
export function fixXattrValue(algo: string, digest: Uint8Array): Uint8Array {
  const a = findHashAlgo(algo);
  if (!a) throw new RangeError(`unknown algorithm ${algo}`);
  if (a.id <= 2) return Uint8Array.of(XT.DIGEST, ...digest);
  return Uint8Array.of(XT.DIGEST_NG, a.id, ...digest);
}
