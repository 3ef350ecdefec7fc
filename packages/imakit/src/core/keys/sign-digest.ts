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
import { p256, p384, p521 } from '@noble/curves/nist.js';
import { ecdsa, weierstrass, type ECDSA } from '@noble/curves/abstract/weierstrass.js';
import { sha256 } from '@noble/hashes/sha2.js';
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

// NIST P-192 (secp192r1) is not exported by noble 2.x; the kernel's ecdsa-nist-p192 accepts it.
const p192 = ecdsa(
  weierstrass({
    p: 0xfffffffffffffffffffffffffffffffeffffffffffffffffn,
    n: 0xffffffffffffffffffffffff99def836146bc9b1b4d22831n,
    h: 1n,
    a: 0xfffffffffffffffffffffffffffffffefffffffffffffffcn,
    b: 0x64210519e59c80e70fa7e9ab72243049feb8deecc146b9b1n,
    Gx: 0x188da80eb03090f67cbf20eb43a18800f4ff0afd82ff1012n,
    Gy: 0x07192b95ffc8da78631011ed6b24cdd573f977a11e794811n,
  }),
  sha256,
);

const ECDSA_CURVES: Readonly<Partial<Record<CurveName, ECDSA>>> = Object.freeze({
  'P-192': p192,
  'P-256': p256,
  'P-384': p384,
  'P-521': p521,
});

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
      const curve = key.curve ? ECDSA_CURVES[key.curve] : undefined;
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
      const curve = pub.curve ? ECDSA_CURVES[pub.curve] : undefined;
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
