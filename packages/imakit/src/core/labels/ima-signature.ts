/**
 * IMA/EVM signatures end to end: build a complete v2/v3 signature value from a digest, and
 * verify a parsed one against a set of keys with a structured verdict (formats.md §3.2-§3.5).
 *
 * This is the layer the CLI calls. It owns no I/O: callers hash files (or EVM metadata) and pass
 * digests in, and load keys with ./keys.ts.
 */
import { ImakitError, isImakitError } from '../../errors.ts';
import { assertBytes, bytesEqual, concatBytes } from '../bytes/bytes.ts';
import { hash, hashAlgoById, type HashAlgo } from '../hash/hash-algo.ts';
import { formatKeyId, keyIdFromSubjectPublicKey } from '../keys/keyid.ts';
import type { PrivateKey, PublicKey } from '../keys/keys.ts';
import { signDigest, verifyDigest } from '../keys/sign-digest.ts';
import { encodeSignatureV2, type SignatureV2 } from './signature-header.ts';

/** Options for {@link signImaDigest}. */
export interface SignImaDigestOptions {
  readonly key: PrivateKey;
  /** the algorithm `digest` was computed with; becomes the header's hash_algo */
  readonly algo: HashAlgo;
  readonly digest: Uint8Array;
  /** override the key id (evmctl `--keyid`); default: the key's own id. Not covered by the signature. */
  readonly keyid?: number;
  /** 0x03 (security.ima, or non-portable security.evm) by default; 0x05 for portable EVM */
  readonly xattrType?: 0x03 | 0x05;
}

/**
 * A complete v2 signature value `type 02 algo keyid size sig` over `digest` (the file digest for
 * security.ima, the EVM metadata digest for security.evm). RSA results are byte-identical to
 * `evmctl ima_sign` / `evmctl sign`.
 * @throws ImakitError E_SIG_UNSUPPORTED, E_KEY_TYPE, E_KEY_MISMATCH (see signDigest)
 * @example signImaDigest({key, algo: hashAlgoByName('sha256'), digest}) // 03 02 04 4d0e4f4d 0100 …
 */
export function signImaDigest(o: SignImaDigestOptions): Uint8Array {
  const xattrType = o.xattrType ?? 0x03;
  if (xattrType !== 0x03 && xattrType !== 0x05) throw new RangeError('xattrType must be 0x03 or 0x05');
  return encodeSignatureV2({
    version: 2,
    xattrType,
    hashAlgo: o.algo.id,
    keyid: checkKeyId(o.keyid ?? o.key.keyid),
    sig: signDigest(o.key, o.algo, o.digest),
  });
}

/**
 * The digest a v3 signature signs: `H_algo(type ‖ algo id ‖ digest)` over only the used
 * `2 + digest_size` bytes of `struct ima_file_id` (formats.md §3.3, pitfall 16). `xattrType` is
 * 0x06 for fs-verity, 0x03/0x05 in the development series; `algo` is the KERNEL id (sha256 = 4),
 * not fs-verity's own numbering.
 * @throws ImakitError E_HASH_UNSUPPORTED
 * @example sigv3Digest(0x06, sha256, verityDigest) // 47869ba4… for hello.txt
 */
export function sigv3Digest(xattrType: number, algo: HashAlgo, digest: Uint8Array): Uint8Array {
  assertBytes(digest, algo.size, `${algo.name} digest`);
  if (!Number.isInteger(xattrType) || xattrType < 0 || xattrType > 0xff)
    throw new RangeError('xattrType must be a u8');
  return hash(algo, concatBytes(new Uint8Array([xattrType, algo.id]), digest));
}

/** Options for {@link signVerityDigest}. */
export interface SignVerityDigestOptions {
  readonly key: PrivateKey;
  /** the signature's hash algorithm (header hash_algo, and the hash over ima_file_id) */
  readonly algo: HashAlgo;
  /**
   * the fs-verity digest's algorithm (default: `algo`). The kernel requires it to equal `algo`
   * (ima_appraise.c takes both from the header), so a different one is refused.
   */
  readonly verityAlgo?: HashAlgo;
  /** the fs-verity file digest (`fsverity digest`, FS_IOC_MEASURE_VERITY) */
  readonly verityDigest: Uint8Array;
  readonly keyid?: number;
}

/**
 * A type 0x06, version 3 signature value over an fs-verity digest, as `evmctl sign_hash
 * --veritysig` writes it.
 * @throws ImakitError E_SIG_UNSUPPORTED when verityAlgo differs from algo
 */
export function signVerityDigest(o: SignVerityDigestOptions): Uint8Array {
  const verityAlgo = o.verityAlgo ?? o.algo;
  if (verityAlgo.id !== o.algo.id)
    throw new ImakitError(
      'E_SIG_UNSUPPORTED',
      `the kernel verifies sigv3 with the fs-verity digest algorithm: signature algorithm ${o.algo.name} must equal ${verityAlgo.name}`,
    );
  const signed = sigv3Digest(0x06, verityAlgo, o.verityDigest);
  return encodeSignatureV2({
    version: 3,
    xattrType: 0x06,
    hashAlgo: o.algo.id,
    keyid: checkKeyId(o.keyid ?? o.key.keyid),
    sig: signDigest(o.key, o.algo, signed),
  });
}

function checkKeyId(k: number): number {
  if (!Number.isInteger(k) || k < 0 || k > 0xffffffff) throw new RangeError('keyid must be a u32');
  return k;
}

/** How a keyring entry matched a signature's key id. */
export type KeyMatch = 'skid' | 'spki-hash' | 'issuer-serial';

/**
 * A set of verification keys looked up by 32-bit key id the way the kernel does
 * (`request_asymmetric_key` with `id:%08x`, a partial match on the tail of the key's ids):
 *  - a key from a certificate with a SKID matches the last 4 bytes of the SKID;
 *  - the kernel's other id (serial ‖ issuer) is matched on its last 4 bytes too (rarely relevant);
 *  - a key without a certificate SKID (bare SPKI, or a cert lacking the extension) matches the
 *    evmctl-computed SHA-1(subjectPublicKey) id — the kernel could not load such a key at all,
 *    so that match is evmctl behaviour, reported as `spki-hash`.
 * The first key added wins when several match. Immutable once built.
 */
export class Keyring {
  readonly keys: readonly PublicKey[];
  constructor(pubs: readonly PublicKey[]) {
    this.keys = Object.freeze([...pubs]);
    Object.freeze(this);
  }
  /** The first key matching `keyid`, or undefined. */
  find(keyid: number): PublicKey | undefined {
    return this.match(keyid)?.key;
  }
  /** The first matching key and how it matched. */
  match(keyid: number): { key: PublicKey; by: KeyMatch } | undefined {
    const id = keyid >>> 0;
    for (const key of this.keys) {
      const skid = key.cert?.skid;
      if (skid && skid.length > 0) {
        if (tail4(skid) === id) return { key, by: 'skid' };
      } else if (keyIdFromSubjectPublicKey(key.subjectPublicKey) === id) return { key, by: 'spki-hash' };
    }
    for (const key of this.keys) {
      if (key.cert && tail4(concatBytes(hexBytes(key.cert.serialHex), key.cert.issuerDer)) === id)
        return { key, by: 'issuer-serial' };
    }
    return undefined;
  }
  /**
   * The first key whose certificate has exactly this issuer Name DER and serial number (INTEGER
   * contents): the kernel's `id[0]` = serial ‖ issuer (x509_public_key.c), which a PKCS#7
   * signer identified by issuerAndSerialNumber must match in full (pkcs7_trust.c,
   * find_asymmetric_key with partial=false). Keys without a certificate never match.
   */
  findByIssuerSerial(issuerDer: Uint8Array, serial: Uint8Array): PublicKey | undefined {
    const serialHex = Buffer.from(serial.buffer, serial.byteOffset, serial.byteLength).toString('hex');
    return this.keys.find(
      (k) =>
        k.cert !== undefined && k.cert.serialHex === serialHex && bytesEqual(k.cert.issuerDer, issuerDer),
    );
  }
  /**
   * The first key whose certificate's subjectKeyIdentifier equals `skid` in full (the kernel's
   * `id[1]`; a PKCS#7 signer identified by SKID, sign-file `-k`). Keys without a SKID never match.
   */
  findBySkid(skid: Uint8Array): PublicKey | undefined {
    return this.keys.find((k) => k.cert?.skid !== undefined && bytesEqual(k.cert.skid, skid));
  }
}

function tail4(b: Uint8Array): number {
  const p = new Uint8Array(4);
  p.set(b.subarray(Math.max(0, b.length - 4)), 4 - Math.min(4, b.length));
  return ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0;
}

function hexBytes(h: string): Uint8Array {
  return Uint8Array.from(Buffer.from(h, 'hex'));
}

/**
 * The outcome of checking one signature value.
 *  - `pass`: the signature is valid for the digest under the key with that key id. It proves that
 *    the holder of that private key signed this digest. It does NOT establish that the key is
 *    trusted (loaded into the kernel's .ima/.evm keyring, chained to a CA, not revoked or
 *    blacklisted), that the certificate is valid today or allowed for code signing, or that the
 *    digest matches any file unless the caller computed it from that file.
 *  - `fail`: the signature does not verify (wrong digest, tampered bytes, or a key/hash pairing
 *    the kernel refuses, e.g. SM2 with a non-SM3 hash).
 *  - `unknown-key`: no key in the keyring has this key id (the kernel: -ENOKEY).
 *  - `unsupported`: this runtime cannot compute the hash or use the key type (nothing decided).
 */
export interface SigVerdict {
  readonly status: 'pass' | 'fail' | 'unknown-key' | 'unsupported';
  /** the header's key id, `%08x` as the kernel prints it */
  readonly keyid: string;
  /** the header's hash algorithm name (or `id N`) */
  readonly algo: string;
  /** the matched key's algorithm, e.g. `rsa-2048`, `ec-P-256`, `sm2` */
  readonly keyAlg?: string;
  /** how the key id matched */
  readonly matchedBy?: KeyMatch;
  /** catalogue code for non-pass outcomes */
  readonly code?:
    'E_SIG_INVALID' | 'E_KEY_NOT_FOUND' | 'E_HASH_UNSUPPORTED' | 'E_SIG_UNSUPPORTED' | 'E_KEY_TYPE';
  readonly detail: string;
}

/**
 * Verify a parsed v2/v3 signature against a keyring.
 * @param sig the parsed header and body
 * @param signedDigestFor returns the digest that was signed, computed with the given algorithm
 *   (the file digest for security.ima v2; the fs-verity digest for v3 type 0x06; the EVM metadata
 *   digest for security.evm). For v3 the ima_file_id hash is applied here, not by the callback.
 *   It may throw ImakitError E_HASH_UNSUPPORTED (→ `unsupported`).
 * @param keyring the candidate keys
 * @returns a frozen verdict; never throws for bad signature bytes
 */
export function verifySignatureValue(
  sig: SignatureV2,
  signedDigestFor: (algo: HashAlgo) => Uint8Array,
  keyring: Keyring,
): SigVerdict {
  const keyid = formatKeyId(sig.keyid);
  const algo = hashAlgoById(sig.hashAlgo);
  const algoName = algo?.name ?? `id ${sig.hashAlgo}`;
  const verdict = (v: Omit<SigVerdict, 'keyid' | 'algo'>): SigVerdict =>
    Object.freeze({ keyid, algo: algoName, ...v });
  if (!algo || algo.node === null)
    return verdict({
      status: 'unsupported',
      code: 'E_HASH_UNSUPPORTED',
      detail: `hash algorithm ${algoName} cannot be computed by this runtime`,
    });
  const m = keyring.match(sig.keyid);
  if (!m)
    return verdict({ status: 'unknown-key', code: 'E_KEY_NOT_FOUND', detail: `no key with id ${keyid}` });
  const pub = m.key;
  const keyAlg = pub.alg === 'rsa' ? `rsa-${pub.bits}` : pub.alg === 'ec' ? `ec-${pub.curve ?? '?'}` : 'sm2';
  const base = { keyAlg, matchedBy: m.by };
  let digest: Uint8Array;
  try {
    digest = signedDigestFor(algo);
    if (sig.version === 3) digest = sigv3Digest(sig.xattrType, algo, digest);
  } catch (e) {
    if (isImakitError(e, 'E_HASH_UNSUPPORTED'))
      return verdict({ ...base, status: 'unsupported', code: 'E_HASH_UNSUPPORTED', detail: e.message });
    throw e;
  }
  if (pub.alg === 'sm2' && algo.name !== 'sm3')
    return verdict({
      ...base,
      status: 'fail',
      code: 'E_SIG_INVALID',
      detail: `SM2 key with ${algo.name}: the kernel only verifies SM2 over SM3 digests`,
    });
  let ok: boolean;
  try {
    ok = verifyDigest(pub, algo, digest, sig.sig);
  } catch (e) {
    if (e instanceof ImakitError && (e.code === 'E_SIG_UNSUPPORTED' || e.code === 'E_KEY_TYPE'))
      return verdict({ ...base, status: 'unsupported', code: e.code, detail: e.message });
    throw e;
  }
  return ok
    ? verdict({
        ...base,
        status: 'pass',
        detail: `valid ${keyAlg} signature over the ${algo.name} digest by key ${keyid} (key trust not established)`,
      })
    : verdict({
        ...base,
        status: 'fail',
        code: 'E_SIG_INVALID',
        detail: `${keyAlg} signature does not verify`,
      });
}
