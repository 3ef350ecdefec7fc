/**
 * Labelling one file: read it once, compute its security.ima value (hash, v2 signature or fs-verity
 * sigv3), and check an existing value. Shared by `imakit label`, `imakit hash|sign|verify` and the
 * evmctl drop-in so they produce the same bytes and the same verdicts.
 *
 * The values themselves come from core (ima-xattr.ts `imaDigestXattr`, ima-signature.ts
 * `signImaDigest` / `signVerityDigest` / `verifySignatureValue`); this file adds the file I/O:
 * regular-file checks, one-pass hashing (host/file-hash.ts), key files and xattr reads.
 */
import { closeSync, constants, openSync, writeSync } from 'node:fs';
import { ImakitError, fromSystemError, withPath } from '../../errors.ts';
import { bytesEqual } from '../../core/bytes/bytes.ts';
import type { HashAlgo } from '../../core/hash/hash-algo.ts';
import { loadPrivateKey, loadPublicKeys, type PrivateKey, type PublicKey } from '../../core/keys/keys.ts';
import { verifyDigest } from '../../core/keys/sign-digest.ts';
import { parseSignatureV2 } from '../../core/labels/signature-header.ts';
import { imaDigestXattr, parseImaXattr, type ImaXattr } from '../../core/labels/ima-xattr.ts';
import {
  type Keyring,
  signImaDigest,
  signVerityDigest,
  verifySignatureValue,
  type SigVerdict,
} from '../../core/labels/ima-signature.ts';
import { hashFileSync, type FileDigests } from '../fs/file-hash.ts';
import { readKeyFile } from '../keys/key-files.ts';
import { fsetXattr } from '../fs/xattr.ts';
import { requireRegularFile } from '../fs/regular-file.ts';
import { withOpenFile, type OpenFile } from '../fs/open-file.ts';
import {
  errorVerdict,
  fileVerdict,
  isFileVerdict,
  readParsedLabel,
  signatureFileVerdict,
  type FileVerdict,
} from './file-verdict.ts';

/**
 * Hash a regular file in one pass (host/file-hash.ts: one reused buffer, O_NOFOLLOW, change
 * detection); several algorithms share the pass.
 * @throws ImakitError E_IO_READ, E_IO_NOT_REGULAR, E_IO_CHANGED, E_HASH_UNSUPPORTED
 */
export function digestFile(
  path: string,
  algos: readonly HashAlgo[],
  buffer?: Buffer,
  file?: OpenFile,
): Uint8Array[] {
  const r = hashFileSync(path, algos, {
    ...(buffer === undefined ? {} : { buffer }),
    ...(file === undefined ? {} : { fd: file.fd }),
  });
  return algos.map((a) => r.digests.get(a.name)!);
}

/**
 * The fs-verity digest of a regular file (4 KiB blocks, no salt: what `fsverity digest` and
 * FS_IOC_ENABLE_VERITY defaults give). fs-verity only has sha256 and sha512.
 * @throws ImakitError E_HASH_UNSUPPORTED for other algorithms, plus digestFile's errors
 */
export function verityDigestFile(path: string, algo: HashAlgo, file?: OpenFile): Uint8Array {
  if (algo.name !== 'sha256' && algo.name !== 'sha512')
    throw new ImakitError('E_HASH_UNSUPPORTED', `fs-verity has no ${algo.name} digests (sha256, sha512)`, {
      path,
    });
  return hashFileSync(path, [], { verity: algo.name, ...(file === undefined ? {} : { fd: file.fd }) })
    .verity!;
}

/** What security.ima value to compute for a file. */
export interface ImaValueRequest {
  /** `hash` (0x01/0x04), `sign` (0x03 v2), `verity` (0x06 sigv3 over the fs-verity digest) */
  readonly kind: 'hash' | 'sign' | 'verity';
  readonly algo: HashAlgo;
  /** required for `sign` and `verity` */
  readonly key?: PrivateKey;
  /** key id written in the header (default: the key's own) */
  readonly keyid?: number;
}

/** A computed security.ima value and the digest it was made from. */
export interface ImaValue {
  readonly value: Uint8Array;
  /** the file digest (or fs-verity digest for `verity`) */
  readonly digest: Uint8Array;
}

/**
 * The security.ima value for an already computed digest (pure apart from the key).
 * @throws ImakitError E_USAGE (no key for a signature), E_KEY_TYPE / E_SIG_UNSUPPORTED (signer)
 */
export function imaValueFromDigest(req: ImaValueRequest, digest: Uint8Array): Uint8Array {
  if (req.kind === 'hash') return imaDigestXattr(req.algo, digest);
  if (req.key === undefined) throw new ImakitError('E_USAGE', 'signing needs a private key (--key)');
  const keyid = req.keyid === undefined ? {} : { keyid: req.keyid };
  return req.kind === 'sign'
    ? signImaDigest({ key: req.key, algo: req.algo, digest, ...keyid })
    : signVerityDigest({ key: req.key, algo: req.algo, verityDigest: digest, ...keyid });
}

/**
 * Read `path` (or `file`, already open on it) once and compute its security.ima value. Nothing is
 * written.
 * @throws ImakitError E_IO_READ, E_IO_NOT_REGULAR, E_IO_CHANGED, E_HASH_UNSUPPORTED, E_USAGE, E_KEY_TYPE
 */
export function computeImaValue(path: string, req: ImaValueRequest, file?: OpenFile): ImaValue {
  if (file === undefined) requireRegularFile(path);
  const digest =
    req.kind === 'verity'
      ? verityDigestFile(path, req.algo, file)
      : digestFile(path, [req.algo], undefined, file)[0]!;
  return Object.freeze({ value: withPath(path, () => imaValueFromDigest(req, digest)), digest });
}

/** Where and whether {@link labelImaFile} writes. */
export interface LabelImaFileOptions {
  /** xattr to write (default security.ima; `user.ima` for unprivileged tests) */
  readonly xattrName?: string;
  /** false: compute only (`--print`) */
  readonly write?: boolean;
  /** also write the value to `PATH.sig` (evmctl `--sigfile`) */
  readonly sigfile?: boolean;
  /** test seam: called after the value is computed, before anything is written */
  readonly beforeWrite?: (path: string) => void;
}

/** What {@link labelImaFile} produced. */
export interface LabelImaFileResult extends ImaValue {
  readonly path: string;
  /** the xattr was written */
  readonly written: boolean;
  /** the `.sig` file written, if any */
  readonly sigfile?: string;
}

/**
 * Compute a file's security.ima value and (by default) write it: `imakit hash` / `imakit sign`.
 * The value is fully computed before anything is written, so a failure leaves the labels as they were.
 * @throws ImakitError computeImaValue's errors, E_IO_WRITE (`.sig`), E_XATTR_WRITE,
 *   E_XATTR_UNSUPPORTED, E_PERMISSION
 */
export function labelImaFile(
  path: string,
  req: ImaValueRequest,
  opts: LabelImaFileOptions = {},
): LabelImaFileResult {
  // hash and write through one descriptor: a symlink swapped in after hashing cannot redirect
  // the signature to its target (issue 10 item 15)
  return withOpenFile(path, (file) => {
    const r = computeImaValue(path, req, file);
    const write = opts.write ?? true;
    opts.beforeWrite?.(path);
    let sigfile: string | undefined;
    if (opts.sigfile) {
      sigfile = `${path}.sig`;
      try {
        // O_NOFOLLOW: a symlink planted at PATH.sig must not redirect the write to its target
        const fd = openSync(
          sigfile,
          constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW,
          0o644,
        );
        try {
          writeSync(fd, r.value);
        } finally {
          closeSync(fd);
        }
      } catch (e) {
        throw fromSystemError(e, 'E_IO_WRITE', sigfile);
      }
    }
    if (write) fsetXattr(file.fd, opts.xattrName ?? 'security.ima', r.value, path);
    return Object.freeze({ path, ...r, written: write, ...(sigfile ? { sigfile } : {}) });
  });
}

/**
 * Whether `existing` is already the right security.ima value for the wanted label, so a re-run
 * can skip the write (resume). For hashes and RSA signatures (deterministic) the bytes must be
 * equal; for ECDSA/SM2 a value with the same type, algorithm and key id that verifies is accepted.
 */
export function imaLabelIsCurrent(
  existing: Uint8Array | null,
  want: { readonly kind: 'hash' | 'signature'; readonly value: Uint8Array; readonly digest: Uint8Array },
  algo: HashAlgo,
  key?: PrivateKey,
): boolean {
  if (existing === null) return false;
  if (bytesEqual(existing, want.value)) return true;
  if (want.kind !== 'signature' || key === undefined) return false;
  return signatureIsCurrent(existing, want.value, algo, want.digest, key);
}

/**
 * For randomized signatures (ECDSA, SM2): whether `existing` has the header of `wanted` (type,
 * algorithm, key id) and verifies over `digest` with `key`. Always false for RSA, whose
 * signatures are deterministic, so byte equality already decided.
 */
export function signatureIsCurrent(
  existing: Uint8Array,
  wanted: Uint8Array,
  algo: HashAlgo,
  digest: Uint8Array,
  key: PrivateKey,
): boolean {
  if (key.alg === 'rsa') return false;
  try {
    const cur = parseSignatureV2(existing);
    const want = parseSignatureV2(wanted);
    if (cur.xattrType !== want.xattrType || cur.hashAlgo !== algo.id || cur.keyid !== want.keyid)
      return false;
    return verifyDigest(key.publicKey, algo, digest, cur.sig);
  } catch {
    return false;
  }
}

/**
 * Load a signing key file (PEM/DER, encrypted with `passphrase`).
 * @throws ImakitError E_IO_READ (missing), E_KEY_PARSE, E_KEY_PASSPHRASE, E_KEY_TYPE (naming the file)
 */
export function loadSigningKeyFile(path: string, passphrase?: string): PrivateKey {
  const data = readKeyFile(path);
  return withPath(path, () => loadPrivateKey(data, passphrase === undefined ? {} : { passphrase }));
}

/**
 * Load verification keys (certificates or public keys; a PEM bundle may hold several) from a file.
 * @throws ImakitError E_IO_READ, E_KEY_PARSE, E_KEY_TYPE (naming the file)
 */
export function loadVerifyKeyFile(path: string): PublicKey[] {
  const data = readKeyFile(path);
  return withPath(path, () => loadPublicKeys(data));
}

/** Kinds of security.ima content a verdict can be about. */
export type ImaLabelKind = 'hash' | 'signature' | 'verity-signature' | 'signature-v1';

/**
 * The verdict on one file's security.ima. `status`:
 *  - `pass`: a hash that equals the file's current digest, or a signature that verifies;
 *  - `fail`: wrong hash / bad signature (`code` E_VERIFY_HASH_MISMATCH / E_SIG_INVALID), or a
 *    malformed value (`code` a codec error);
 *  - `unknown-key`: signed by a key id not in the keyring;
 *  - `no-label`: the file has no such xattr;
 *  - `unsupported`: the algorithm or format cannot be checked here (v1 signatures, streebog...);
 *  - `error`: the file could not be read (code E_IO_*).
 * `notEstablished` lists what the check does not prove, for reports.
 */
export type ImaFileVerdict = FileVerdict<ImaLabelKind>;

/** Options of {@link verifyImaFile}. */
export interface VerifyImaFileOptions {
  /** keys for signatures (an empty keyring makes every signature `unknown-key`) */
  readonly keyring: Keyring;
  /** xattr to read (default security.ima; `user.ima` for --xattr-user) */
  readonly xattrName?: string;
  /** check this value instead of reading the xattr (evmctl `--sigfile`) */
  readonly value?: Uint8Array;
  /** read the label and content through this open file (tree verification) */
  readonly file?: OpenFile;
  /** digests already computed over `file` (by the hash pool); missing ones are computed here */
  readonly hashed?: FileDigests;
}

const NOT_ESTABLISHED_COMMON = [
  'that the kernel would appraise the file the same way (policy, keyrings, EVM state are not checked)',
  'that security.evm protects this label',
] as const;
const NOT_ESTABLISHED_HASH = [
  'authenticity: anyone who can write security.ima can write a matching hash',
  ...NOT_ESTABLISHED_COMMON,
] as const;
const NOT_ESTABLISHED_SIG = [
  'key trust: whether the key is in the kernel .ima keyring, chained to a CA, unexpired and unrevoked',
  ...NOT_ESTABLISHED_COMMON,
] as const;

/**
 * Verify one file's security.ima: hashes are recomputed with the value's own algorithm, v2
 * signatures over the file digest with the header's algorithm, sigv3 (0x06) over the fs-verity
 * digest (formats.md §3.1-§3.5). Reads the file once. Never throws for bad labels or unreadable
 * files: those are verdicts.
 */
export function verifyImaFile(path: string, opts: VerifyImaFileOptions): ImaFileVerdict {
  const name = opts.xattrName ?? 'security.ima';
  const out = (v: Omit<ImaFileVerdict, 'path' | 'notEstablished'>, ne: readonly string[] = []) =>
    fileVerdict<ImaLabelKind>(path, v, ne);
  const label = readParsedLabel<ImaLabelKind, ImaXattr>(path, name, parseImaXattr, opts.value, opts.file);
  if (isFileVerdict<ImaLabelKind>(label)) return label;
  const digestOf = (algo: HashAlgo): Uint8Array =>
    opts.hashed?.digests.get(algo.name) ?? digestFile(path, [algo], undefined, opts.file)[0]!;
  const verityOf = (algo: HashAlgo): Uint8Array =>
    opts.hashed?.verity !== undefined && opts.hashed.verityAlgo === algo.name
      ? opts.hashed.verity
      : verityDigestFile(path, algo, opts.file);
  if (label.kind === 'digest') {
    let digest: Uint8Array;
    try {
      digest = digestOf(label.algo);
    } catch (e) {
      return errorVerdict(path, e);
    }
    const algo = label.algo.name;
    return out(
      bytesEqual(digest, label.digest)
        ? { status: 'pass', kind: 'hash', algo, detail: `${algo} hash matches` }
        : {
            status: 'fail',
            kind: 'hash',
            algo,
            code: 'E_VERIFY_HASH_MISMATCH',
            detail: `${algo} hash does not match the content`,
          },
      NOT_ESTABLISHED_HASH,
    );
  }
  const verity = label.sig.xattrType === 0x06;
  let v: SigVerdict;
  try {
    v = verifySignatureValue(label.sig, (algo) => (verity ? verityOf(algo) : digestOf(algo)), opts.keyring);
  } catch (e) {
    return errorVerdict(path, e);
  }
  return signatureFileVerdict(path, verity ? 'verity-signature' : 'signature', v, NOT_ESTABLISHED_SIG);
}
