/**
 * Signing and verifying a precomputed digest, the way IMA/EVM signatures work (formats.md §3.2
 * table "Signature body per public-key type"; dependencies.md §2d):
 *  - RSA: RSASSA-PKCS1-v1_5 = private-key operation on `00 01 FF.. 00 ‖ DigestInfo(algo) ‖ digest`.
 *    `crypto.privateEncrypt` with RSA_PKCS1_PADDING builds exactly that block, so signatures are
 *    byte-identical to evmctl's (deterministic) for any modulus size.
 *  - ECDSA (P-192/256/384/521): DER SEQUENCE{r, s} over the digest with standard truncation, via
 *    @noble/curves with `prehash: false` (Node has no prehashed ECDSA).
 *  - SM2: DER SEQUENCE{r, s} over the bare digest, no Z_A (pitfall 15), via ./sm2.ts.
 */
import { constants, privateEncrypt, publicDecrypt } from 'node:crypto';
import { ecdsa, weierstrass, type ECDSA } from '@noble/curves/abstract/weierstrass.js';
import { sha256, sha384, sha512 } from '@noble/hashes/sha2.js';
import { ImakitError } from '../../errors.ts';
import { assertBytes, bytesEqual, concatBytes, fromHex } from '../bytes/bytes.ts';
import type { HashAlgo } from '../hash/hash-algo.ts';
import type { PrivateKey, PublicKey } from './keys.ts';
import { sm2SignDigest, sm2VerifyDigest } from './sm2.ts';
import type { CurveName } from './x509.ts';

/**
 * DER DigestInfo prefixes (`SEQUENCE { AlgorithmIdentifier { oid, NULL }, OCTET STRING(len) }`)
 * as OpenSSL encodes them for RSA PKCS#1 v1.5, keyed by kernel hash name. Only the hashes the
 * kernel's RSA PKCS#1 template knows (crypto/rsa-pkcs1pad.c, now rsassa-pkcs1.c): md4 and sm3
 * have no entry there (and OpenSSL 3.0 / evmctl 1.4 refuse RSA with SM3), so an RSA signature
 * with them could never be verified by a kernel; they are refused rather than produced.
 * sha3-* needs a kernel with the sha3 prefixes (6.x).
 */
export const DIGEST_INFO_PREFIX: Readonly<Record<string, Uint8Array>> = Object.freeze({
  md5: fromHex('3020300c06082a864886f70d020505000410'),
  sha1: fromHex('3021300906052b0e03021a05000414'),
  rmd160: fromHex('3021300906052b2403020105000414'),
  sha224: fromHex('302d300d06096086480165030402040500041c'),
  sha256: fromHex('3031300d060960864801650304020105000420'),
  sha384: fromHex('3041300d060960864801650304020205000430'),
  sha512: fromHex('3051300d060960864801650304020305000440'),
  'sha3-256': fromHex('3031300d060960864801650304020805000420'),
  'sha3-384': fromHex('3041300d060960864801650304020905000430'),
  'sha3-512': fromHex('3051300d060960864801650304020a05000440'),
});

/**
 * Weierstrass parameters of the NIST curves ECDSA is done with, and the hash of each curve's RFC 6979
 * nonce. P-256/384/521 are exactly what @noble/curves/nist.js builds (`ecdsa(weierstrass(params),
 * hash)`), so signatures are unchanged; they are built here, one curve at a time, because importing
 * nist.js builds all three (plus hash-to-curve, OPRF and FROST objects) at start-up, which every
 * command paid even when it only verified an RSA signature (issue 10 item 11). P-192 (secp192r1) is
 * not exported by noble 2.x; the kernel's ecdsa-nist-p192 accepts it.
 */
const NIST_CURVES = Object.freeze({
  'P-192': {
    hash: sha256,
    p: 0xfffffffffffffffffffffffffffffffeffffffffffffffffn,
    n: 0xffffffffffffffffffffffff99def836146bc9b1b4d22831n,
    h: 1n,
    a: 0xfffffffffffffffffffffffffffffffefffffffffffffffcn,
    b: 0x64210519e59c80e70fa7e9ab72243049feb8deecc146b9b1n,
    Gx: 0x188da80eb03090f67cbf20eb43a18800f4ff0afd82ff1012n,
    Gy: 0x07192b95ffc8da78631011ed6b24cdd573f977a11e794811n,
  },
  'P-256': {
    hash: sha256,
    p: 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn,
    n: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
    h: 1n,
    a: 0xffffffff00000001000000000000000000000000fffffffffffffffffffffffcn,
    b: 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn,
    Gx: 0x6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296n,
    Gy: 0x4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5n,
  },
  'P-384': {
    hash: sha384,
    p: 0xfffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffffn,
    n: 0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
    h: 1n,
    a: 0xfffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000fffffffcn,
    b: 0xb3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aefn,
    Gx: 0xaa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7n,
    Gy: 0x3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5fn,
  },
  'P-521': {
    hash: sha512,
    p: 0x1ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffn,
    n: 0x01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409n,
    h: 1n,
    a: 0x1fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffcn,
    b: 0x0051953eb9618e1c9a1f929a21a0b68540eea2da725b99b315f3b8b489918ef109e156193951ec7e937b1652c0bd3bb1bf073573df883d2c34f1ef451fd46b503f00n,
    Gx: 0x00c6858e06b70404e9cd9e3ecb662395b4429c648139053fb521f828af606b4d3dbaa14b5e77efe75928fe1dc127a2ffa8de3348b3c1856a429bf97e7e31c2e5bd66n,
    Gy: 0x011839296a789a3bc0045c8a5fb42c7d1bd998f54449579b446817afbd17273e662c97ee72995ef42640c550b9013fad0761353c7086a272c24088be94769fd16650n,
  },
});
type NistCurve = keyof typeof NIST_CURVES;

/**
 * Lazily-initialised memo of the immutable curve objects (the only module-level state here): a curve
 * is built on its first use and reused by later signatures in the same process (a tree of files).
 */
const builtCurves = new Map<NistCurve, ECDSA>();

/** The ECDSA object of a NIST curve, built on first use; undefined for other curves. */
function ecdsaCurve(name: CurveName | undefined): ECDSA | undefined {
  if (name === undefined || !Object.hasOwn(NIST_CURVES, name)) return undefined;
  const n = name as NistCurve;
  let c = builtCurves.get(n);
  if (c === undefined) {
    const { hash, ...params } = NIST_CURVES[n];
    c = ecdsa(weierstrass(params), hash);
    builtCurves.set(n, c);
  }
  return c;
}

/** The EMSA-PKCS1-v1_5 payload `DigestInfo(algo) ‖ digest`. @throws ImakitError E_SIG_UNSUPPORTED */
export function digestInfo(algo: HashAlgo, digest: Uint8Array): Uint8Array {
  const prefix = DIGEST_INFO_PREFIX[algo.name];
  if (!prefix)
    throw new ImakitError('E_SIG_UNSUPPORTED', `no PKCS#1 DigestInfo for hash algorithm '${algo.name}'`, {
      token: algo.name,
    });
  return concatBytes(prefix, digest);
}

/**
 * Sign a precomputed digest: the signature body of a v2/v3 header (no header).
 * @param key a loaded private key
 * @param algo the algorithm `digest` was computed with (goes into the DigestInfo for RSA)
 * @param digest exactly `algo.size` bytes
 * @throws ImakitError E_SIG_UNSUPPORTED (no DigestInfo), E_KEY_TYPE (curve), E_KEY_MISMATCH (SM2 needs sm3)
 * @example signDigest(loadPrivateKey(pem), hashAlgoByName('sha256'), digest)
 */
export function signDigest(key: PrivateKey, algo: HashAlgo, digest: Uint8Array): Uint8Array {
  assertBytes(digest, algo.size, `${algo.name} digest`);
  switch (key.alg) {
    case 'rsa': {
      if (!key.keyObject) throw new ImakitError('E_KEY_TYPE', 'RSA key without a key object');
      const sig = privateEncrypt(
        { key: key.keyObject, padding: constants.RSA_PKCS1_PADDING },
        digestInfo(algo, digest),
      );
      return new Uint8Array(sig.buffer, sig.byteOffset, sig.length);
    }
    case 'ec': {
      const curve = ecdsaCurve(key.curve);
      if (!curve || !key.d) throw new ImakitError('E_KEY_TYPE', `unsupported EC curve '${key.curve ?? '?'}'`);
      return curve.sign(digest, key.d, { prehash: false, format: 'der', lowS: false });
    }
    case 'sm2':
      // The kernel only pairs SM2 keys with SM3 (crypto/asymmetric_keys/public_key.c).
      if (algo.name !== 'sm3')
        throw new ImakitError('E_KEY_MISMATCH', `SM2 keys sign SM3 digests only, not ${algo.name}`, {
          token: algo.name,
        });
      if (!key.d) throw new ImakitError('E_KEY_TYPE', 'SM2 key without its private scalar');
      return sm2SignDigest(key.d, digest);
  }
}

/**
 * Verify a signature body over a precomputed digest. Never throws on malformed signature bytes
 * (returns false); throws only for an algorithm that cannot be checked at all.
 * @throws ImakitError E_SIG_UNSUPPORTED (RSA with a hash that has no DigestInfo), E_KEY_TYPE
 */
export function verifyDigest(
  pub: PublicKey,
  algo: HashAlgo,
  digest: Uint8Array,
  sigBody: Uint8Array,
): boolean {
  assertBytes(digest, undefined, 'digest');
  assertBytes(sigBody, undefined, 'signature');
  switch (pub.alg) {
    case 'rsa': {
      const expected = digestInfo(algo, digest);
      if (!pub.keyObject) throw new ImakitError('E_KEY_TYPE', 'RSA key without a key object');
      // The kernel rejects a signature longer than the modulus; shorter ones are left-padded.
      if (sigBody.length === 0 || sigBody.length > Math.ceil(pub.bits / 8)) return false;
      try {
        const got = publicDecrypt({ key: pub.keyObject, padding: constants.RSA_PKCS1_PADDING }, sigBody);
        return bytesEqual(new Uint8Array(got.buffer, got.byteOffset, got.length), expected);
      } catch {
        return false;
      }
    }
    case 'ec': {
      const curve = ecdsaCurve(pub.curve);
      if (!curve) throw new ImakitError('E_KEY_TYPE', `unsupported EC curve '${pub.curve ?? '?'}'`);
      try {
        return curve.verify(sigBody, digest, pub.subjectPublicKey, {
          prehash: false,
          format: 'der',
          lowS: false,
        });
      } catch {
        return false;
      }
    }
    case 'sm2':
      if (algo.name !== 'sm3') return false;
      return sm2VerifyDigest(pub.subjectPublicKey, digest, sigBody);
  }
}
