/**
 * Labelling one file: read it once, compute its security.ima value (hash or signature), and check
 * an existing value against a key set. Shared by `imakit label`, `imakit hash|sign|verify` and the
 * evmctl drop-in so they produce the same bytes.
 *
 * Signatures are v2 headers over a precomputed digest (formats.md §3.2); the key id is the one the
 * kernel matches (pitfall 13) unless overridden. Verification returns a verdict, never a boolean:
 * `unknown-key` (no key with that id) is kept apart from `fail` (bad signature).
 */
import { readFileSync } from 'node:fs';
import { ImakitError, fromSystemError } from '../errors.ts';
import { hashFileSync } from './file-hash.ts';
import { bytesEqual, concatBytes } from '../core/bytes.ts';
import { hashAlgoById, hash, type HashAlgo } from '../core/hash-algo.ts';
import { loadPrivateKey, loadPublicKeys, type PrivateKey, type PublicKey } from '../core/keys.ts';
import { signDigest, verifyDigest } from '../core/sign-digest.ts';
import { encodeSignatureV2, parseSignatureV2, type SignatureV2 } from '../core/signature-header.ts';
import { imaDigestXattr, parseImaXattr } from '../core/ima-xattr.ts';

/**
 * Hash a regular file in one pass (host/file-hash.ts: one reused buffer, O_NOFOLLOW, change
 * detection); several algorithms share the pass.
 * @throws ImakitError E_IO_READ, E_IO_NOT_REGULAR, E_IO_CHANGED, E_HASH_UNSUPPORTED
 */
export function digestFile(path: string, algos: readonly HashAlgo[], buffer?: Buffer): Uint8Array[] {
  const r = hashFileSync(path, algos, buffer === undefined ? {} : { buffer });
  return algos.map((a) => r.digests.get(a.name)!);
}

/** Options for {@link signatureValue}. */
export interface SignatureValueOptions {
  /** override the key id (evmctl `--keyid`); default: the key's own id */
  readonly keyid?: number;
  /** 0x03 (security.ima or non-portable EVM), 0x05 (portable EVM), 0x06 (fs-verity sigv3) */
  readonly xattrType?: 0x03 | 0x05 | 0x06;
}

/**
 * The complete v2 (or v3 for 0x06) signature xattr value over a precomputed digest.
 * @throws ImakitError E_KEY_TYPE / E_SIG_UNSUPPORTED from the signer
 */
export function signatureValue(
  key: PrivateKey,
  algo: HashAlgo,
  digest: Uint8Array,
  opts: SignatureValueOptions = {},
): Uint8Array {
  const xattrType = opts.xattrType ?? 0x03;
  const sig = signDigest(key, algo, digest);
  return encodeSignatureV2({
    version: xattrType === 0x06 ? 3 : 2,
    xattrType,
    hashAlgo: algo.id,
    keyid: opts.keyid ?? key.keyid,
    sig,
  });
}

/** The sigv3 signed digest: H_algo(type ‖ algo id ‖ digest) (formats.md §3.3, pitfall 16). */
export function sigv3Digest(xattrType: number, algo: HashAlgo, digest: Uint8Array): Uint8Array {
  return hash(algo, concatBytes(new Uint8Array([xattrType, algo.id]), digest));
}

/** Outcome of checking one signature value. */
export interface SignatureVerdict {
  readonly status: 'pass' | 'fail' | 'unknown-key' | 'unsupported' | 'error';
  /** the key id in the header (when it parsed) */
  readonly keyid?: number;
  readonly algo?: string;
  readonly detail: string;
}

/**
 * Check a v2/v3 signature value with the keys whose id matches its header (the kernel's partial id
 * match, §3.5). `digestFor(algo)` supplies the signed digest for the header's algorithm (the file
 * digest for IMA, H(ima_file_id) for sigv3, the EVM digest for EVM). Does not establish that the
 * key is trusted by any kernel keyring; only that one of `keys` made the signature.
 */
export function verifySignatureValue(
  value: Uint8Array,
  digestFor: (algo: HashAlgo, sig: SignatureV2) => Uint8Array,
  keys: readonly PublicKey[],
): SignatureVerdict {
  let sig: SignatureV2;
  try {
    sig = parseSignatureV2(value);
  } catch (e) {
    return { status: 'error', detail: `malformed signature: ${(e as Error).message}` };
  }
  const algo = hashAlgoById(sig.hashAlgo);
  if (algo === undefined || algo.node === null)
    return {
      status: 'unsupported',
      keyid: sig.keyid,
      detail: `hash algorithm id ${sig.hashAlgo} unsupported`,
    };
  const candidates = keys.filter((k) => k.keyid === sig.keyid);
  if (candidates.length === 0)
    return { status: 'unknown-key', keyid: sig.keyid, algo: algo.name, detail: 'unknown keyid' };
  let digest: Uint8Array;
  try {
    digest = digestFor(algo, sig);
  } catch (e) {
    return { status: 'error', keyid: sig.keyid, algo: algo.name, detail: (e as Error).message };
  }
  for (const k of candidates) {
    try {
      if (verifyDigest(k, algo, digest, sig.sig))
        return { status: 'pass', keyid: sig.keyid, algo: algo.name, detail: 'signature verified' };
    } catch {
      // a key of the wrong type for this signature: try the next candidate
    }
  }
  return { status: 'fail', keyid: sig.keyid, algo: algo.name, detail: 'bad signature' };
}

/**
 * Whether `existing` is already the right security.ima value for the wanted label, so a re-run
 * can skip the write (resume). For hashes and RSA signatures (deterministic) the bytes must be
 * equal; for ECDSA/SM2 a value with the same algorithm and key id that verifies is accepted.
 */
export function imaLabelIsCurrent(
  existing: Uint8Array | null,
  want: { readonly kind: 'hash' | 'signature'; readonly value: Uint8Array; readonly digest: Uint8Array },
  algo: HashAlgo,
  key?: PrivateKey,
): boolean {
  if (existing === null) return false;
  if (bytesEqual(existing, want.value)) return true;
  if (want.kind !== 'signature' || key === undefined || key.alg === 'rsa') return false;
  try {
    const cur = parseSignatureV2(existing);
    const wanted = parseSignatureV2(want.value);
    if (cur.xattrType !== wanted.xattrType || cur.hashAlgo !== algo.id || cur.keyid !== wanted.keyid)
      return false;
    return verifyDigest(key.publicKey, algo, want.digest, cur.sig);
  } catch {
    return false;
  }
}

/** The security.ima hash value (0x01 / 0x04) for a digest. */
export function hashValue(algo: HashAlgo, digest: Uint8Array): Uint8Array {
  return imaDigestXattr(algo, digest);
}

/** Whether a security.ima value is a hash that equals `digest` for its own algorithm. */
export function hashValueMatches(value: Uint8Array, digestFor: (algo: HashAlgo) => Uint8Array): boolean {
  try {
    const v = parseImaXattr(value);
    return v.kind === 'digest' && bytesEqual(v.digest, digestFor(v.algo));
  } catch {
    return false;
  }
}

/**
 * Load a signing key file (PEM/DER, encrypted with `passphrase`).
 * @throws ImakitError E_IO_READ (missing), E_KEY_PARSE, E_KEY_PASSPHRASE, E_KEY_TYPE
 */
export function loadSigningKeyFile(path: string, passphrase?: string): PrivateKey {
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch (e) {
    throw fromSystemError(e, 'E_IO_READ', path);
  }
  try {
    return loadPrivateKey(new Uint8Array(data), passphrase === undefined ? {} : { passphrase });
  } catch (e) {
    if (e instanceof ImakitError && e.context.path === undefined)
      throw new ImakitError(e.code, e.message, { ...e.context, path }, { cause: e });
    throw e;
  }
}

/**
 * Load verification keys (certificates or public keys) from files.
 * @throws ImakitError E_IO_READ, E_KEY_PARSE, E_KEY_TYPE (naming the file)
 */
export function loadVerifyKeyFile(path: string): PublicKey[] {
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch (e) {
    throw fromSystemError(e, 'E_IO_READ', path);
  }
  try {
    return loadPublicKeys(new Uint8Array(data));
  } catch (e) {
    if (e instanceof ImakitError && e.context.path === undefined)
      throw new ImakitError(e.code, e.message, { ...e.context, path }, { cause: e });
    throw e;
  }
}
