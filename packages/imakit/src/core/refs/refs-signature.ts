/**
 * Detached signatures over a reference-set file (the compact form, imakit JSON or a Keylime
 * policy: whatever bytes were written). The signature file is an IMA v2 signature value
 * (`03 02 hash_algo keyid[4] sig_size[2] sig`, formats.md §3.2) over the hash of the file's bytes,
 * the same bytes `evmctl ima_sign --sigfile` writes next to a file, so `evmctl ima_verify --sigfile`
 * checks it too. Keys: RSA (PKCS#1 v1.5), ECDSA, SM2 (over SM3), through `core/keys`.
 *
 * Does NOT establish: that the signing key is trusted for reference sets (the caller picks the
 * keys), nor anything about the set's content (parse it; a signed set can still be malformed).
 */
import { CodecError } from '../../errors.ts';
import { hash, hashAlgoByName, type HashAlgo } from '../hash/hash-algo.ts';
import type { PrivateKey, PublicKey } from '../keys/keys.ts';
import { Keyring, signImaDigest, verifySignatureValue, type SigVerdict } from '../labels/ima-signature.ts';
import { parseSignatureV2 } from '../labels/signature-header.ts';

/** Default hash for a key: SHA-256, SM3 for SM2 keys (the only pairing the kernel allows). */
export function refsSignatureAlgo(key: Pick<PrivateKey, 'alg'>): HashAlgo {
  return hashAlgoByName(key.alg === 'sm2' ? 'sm3' : 'sha256');
}

/**
 * Sign a set file's bytes.
 * @param opts.algo hash algorithm (default {@link refsSignatureAlgo}); opts.keyid overrides the key id
 * @throws ImakitError E_SIG_UNSUPPORTED, E_KEY_TYPE, E_KEY_MISMATCH (see signDigest)
 * @example writeFileSync('set.imr.sig', signRefsBytes(readFileSync('set.imr'), loadPrivateKey(pem)))
 */
export function signRefsBytes(
  bytes: Uint8Array,
  key: PrivateKey,
  opts: { algo?: HashAlgo; keyid?: number } = {},
): Uint8Array {
  const algo = opts.algo ?? refsSignatureAlgo(key);
  return signImaDigest({
    key,
    algo,
    digest: hash(algo, bytes),
    ...(opts.keyid !== undefined ? { keyid: opts.keyid } : {}),
  });
}

/** A detached signature's verdict: the signature verdict, or a malformed signature file. */
export interface RefsSignatureVerdict extends SigVerdict {
  /** `malformed` when the signature file is not an IMA v2 signature value */
  readonly form: 'ima-v2' | 'malformed';
  readonly notEstablished: readonly string[];
}

const NOT_ESTABLISHED = Object.freeze([
  'that the key is trusted for reference sets (the caller chose it)',
  "that the set's content is well-formed (decode it)",
]);

/**
 * Verify a detached signature over `bytes` with `keys`. Never throws for bad signature bytes.
 * `pass` only when a key with the signature's key id verifies it.
 */
export function verifyRefsSignature(
  bytes: Uint8Array,
  sig: Uint8Array,
  keys: readonly PublicKey[],
): RefsSignatureVerdict {
  let parsed;
  try {
    parsed = parseSignatureV2(sig);
  } catch (e) {
    if (!(e instanceof CodecError)) throw e;
    return Object.freeze({
      status: 'fail',
      form: 'malformed',
      keyid: '',
      algo: '',
      code: 'E_SIG_INVALID',
      detail: `the signature file is not an IMA v2 signature value: ${e.message}`,
      notEstablished: NOT_ESTABLISHED,
    });
  }
  const v = verifySignatureValue(parsed, (a) => hash(a, bytes), new Keyring([...keys]));
  return Object.freeze({ ...v, form: 'ima-v2', notEstablished: NOT_ESTABLISHED });
}
