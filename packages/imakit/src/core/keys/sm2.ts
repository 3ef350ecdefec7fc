/**
 * SM2 digital signatures (GB/T 32918.2, GM/T 0003) on @noble/curves point arithmetic, with SM3
 * from node:crypto (dependencies.md §2b/§2c: Node's own SM2 cannot sign a precomputed digest and
 * cannot set the distinguishing ID, so it is unusable for kernel-compatible signatures).
 *
 * Two ways of choosing `e`, the integer that is signed:
 *  - IMA/EVM signatures (formats.md §3.2, pitfall 15): `e` is the SM3 file/metadata digest used
 *    DIRECTLY, no Z_A step. That is what evmctl's `EVP_PKEY_sign` produces and what the kernel's
 *    `public_key_verify_signature()` checks (it only runs the Z step when `sig->data_size != 0`,
 *    i.e. for certificate signatures). Use {@link sm2SignDigest} / {@link sm2VerifyDigest}.
 *  - X.509 certificate signatures (SM2-with-SM3, OID 1.2.156.10197.1.501): `e = SM3(Z_A ‖ msg)` with
 *    the default distinguishing ID `1234567812345678`. Use {@link sm2SignMessage} /
 *    {@link sm2VerifyMessage}.
 *
 * Signatures are DER `SEQUENCE { r INTEGER, s INTEGER }`, so their length varies (pitfall 14).
 * Not constant time (noble's scalar multiplication with a secret scalar is, but the bigint
 * arithmetic around it is not): fine for a signing tool, not for an HSM.
 */
import { createHash, randomBytes } from 'node:crypto';
import { weierstrass, DER, type WeierstrassPointCons } from '@noble/curves/abstract/weierstrass.js';
import { assertBytes, toHex, utf8 } from '../bytes/bytes.ts';

/** OID of the SM2 curve (namedCurve in an id-ecPublicKey SPKI). */
export const SM2_CURVE_OID = '1.2.156.10197.1.301';
/** OID of the SM2-with-SM3 signature algorithm (X.509 signatureAlgorithm). */
export const SM2_SM3_SIG_OID = '1.2.156.10197.1.501';
/** The default distinguishing ID (GM/T 0009), used by the kernel for certificate signatures. */
export const SM2_DEFAULT_ID = '1234567812345678';

// Recommended curve parameters, GB/T 32918.5 / GM/T 0003.5.
const CURVE = Object.freeze({
  p: 0xfffffffeffffffffffffffffffffffffffffffff00000000ffffffffffffffffn,
  n: 0xfffffffeffffffffffffffffffffffff7203df6b21c6052b53bbf40939d54123n,
  h: 1n,
  a: 0xfffffffeffffffffffffffffffffffffffffffff00000000fffffffffffffffcn,
  b: 0x28e9fa9e9d9f5e344d5a9e4bcf6509a7f39789f515ab8f92ddbcbd414d940e93n,
  Gx: 0x32c4ae2c1f1981195f9904466a39c9948fe30bbff2660be1715a4589334c74c7n,
  Gy: 0xbc3736a2f4f6779c59bdcee36b692153d0a9877cc62a474002df32e52139f0a0n,
});
const N = CURVE.n;

type Sm2PointCons = WeierstrassPointCons<bigint>;

/**
 * Lazily-initialised memo of the SM2 point class (immutable; the only module-level state here).
 * Built on first use rather than at import: every command that loads keys imports this module, and
 * building a curve cost start-up time even for RSA-only work (issue 10 item 11).
 */
const memo: { point?: Sm2PointCons } = {};

/** The SM2 curve's point class (noble projective points), built on first use. */
export function sm2Point(): Sm2PointCons {
  const point = (memo.point ??= weierstrass<bigint>(CURVE));
  return point;
}

const mod = (a: bigint, m: bigint): bigint => {
  const r = a % m;
  return r >= 0n ? r : r + m;
};

function invN(a: bigint): bigint {
  // Fermat: n is prime.
  return sm2Point().Fn.inv(mod(a, N));
}

function bytesToBig(b: Uint8Array): bigint {
  return b.length === 0 ? 0n : BigInt('0x' + toHex(b));
}

function bigTo32(v: bigint): Uint8Array {
  const out = new Uint8Array(32);
  let x = v;
  for (let i = 31; i >= 0; i--) {
    out[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  return out;
}

function sm3(...parts: readonly Uint8Array[]): Uint8Array {
  const h = createHash('sm3');
  for (const p of parts) h.update(p);
  const d = h.digest();
  return new Uint8Array(d.buffer, d.byteOffset, d.length);
}

/** Normalize a private scalar given as bytes (big-endian, up to 32) or bigint; must be in [1, n-2]. */
function privScalar(d: Uint8Array | bigint): bigint {
  let v: bigint;
  if (typeof d === 'bigint') v = d;
  else {
    assertBytes(d, undefined, 'SM2 private key');
    if (d.length === 0 || d.length > 32) throw new RangeError('SM2 private key must be 1..32 bytes');
    v = bytesToBig(d);
  }
  // d = n-1 is excluded by the standard because (1 + d) must be invertible mod n.
  if (v < 1n || v > N - 2n) throw new RangeError('SM2 private key out of range [1, n-2]');
  return v;
}

/** `e` as the standard uses it: the digest bytes as a big-endian integer (OpenSSL: BN_bin2bn). */
function digestToE(e: Uint8Array): bigint {
  assertBytes(e, undefined, 'SM2 digest');
  return bytesToBig(e);
}

/**
 * The public key `04 ‖ X ‖ Y` (65 bytes) for a private scalar.
 * @param d private key as 32 big-endian bytes or a bigint in [1, n-2]
 * @throws RangeError when d is out of range
 * @example sm2PublicFromPrivate(1n) // 04 32c4ae2c… (the generator)
 */
export function sm2PublicFromPrivate(d: Uint8Array | bigint): Uint8Array {
  return sm2Point().BASE.multiply(privScalar(d)).toBytes(false);
}

/**
 * Sign the integer `e` given as bytes, with no Z_A pre-hash: exactly what evmctl and the kernel
 * use for IMA/EVM SM2 signatures (pitfall 15). `k` is drawn from crypto.randomBytes, so every
 * call produces a different signature.
 * @param d private key (32 bytes or bigint)
 * @param e the digest to sign (for IMA: SM3 of the file, 32 bytes)
 * @returns DER `SEQUENCE { r, s }` (70..72 bytes usually)
 * @example const sig = sm2SignDigest(d, createHash('sm3').update(data).digest())
 */
export function sm2SignDigest(d: Uint8Array | bigint, e: Uint8Array): Uint8Array {
  const dv = privScalar(d);
  const ev = digestToE(e);
  const dInv = invN(1n + dv);
  const Point = sm2Point();
  for (;;) {
    const k = mod(bytesToBig(randomBytes(40)), N - 1n) + 1n; // 320 random bits: negligible bias
    const x1 = Point.BASE.multiply(k).toAffine().x;
    const r = mod(ev + x1, N);
    if (r === 0n || r + k === N) continue;
    const s = mod(dInv * (k - r * dv), N);
    if (s === 0n) continue;
    return derFromRS(r, s);
  }
}

/**
 * Verify an SM2 signature over the integer `e` (no Z_A). Never throws for malformed signatures
 * or public keys: returns false.
 * @param pub uncompressed point `04 ‖ X ‖ Y` (compressed `02/03 ‖ X` also accepted)
 * @param e the signed digest
 * @param derSig DER `SEQUENCE { r, s }`
 */
export function sm2VerifyDigest(pub: Uint8Array, e: Uint8Array, derSig: Uint8Array): boolean {
  assertBytes(pub, undefined, 'SM2 public key');
  assertBytes(derSig, undefined, 'SM2 signature');
  const ev = digestToE(e);
  const Point = sm2Point();
  let P: InstanceType<Sm2PointCons>;
  let r: bigint;
  let s: bigint;
  try {
    P = Point.fromBytes(pub);
    P.assertValidity();
    ({ r, s } = DER.toSig(derSig));
  } catch {
    return false;
  }
  if (r < 1n || r >= N || s < 1n || s >= N) return false;
  const t = mod(r + s, N);
  if (t === 0n) return false;
  let Q: InstanceType<Sm2PointCons>;
  try {
    Q = Point.BASE.multiplyUnsafe(s).add(P.multiplyUnsafe(t));
  } catch {
    return false;
  }
  if (Q.equals(Point.ZERO)) return false;
  return mod(ev + Q.toAffine().x, N) === r;
}

/**
 * Z_A = SM3(ENTL ‖ ID ‖ a ‖ b ‖ Gx ‖ Gy ‖ Px ‖ Py) (GB/T 32918.2 §5.5), ENTL = bit length of ID as u16 BE.
 * @param pub uncompressed public point
 * @param id distinguishing ID (default `1234567812345678`)
 */
export function sm2ZDigest(pub: Uint8Array, id: string | Uint8Array = SM2_DEFAULT_ID): Uint8Array {
  assertBytes(pub, undefined, 'SM2 public key');
  const idb = typeof id === 'string' ? utf8(id) : id;
  if (idb.length * 8 > 0xffff) throw new RangeError('SM2 ID too long');
  const P = sm2Point().fromBytes(pub).toAffine();
  const entl = new Uint8Array([(idb.length * 8) >> 8, (idb.length * 8) & 0xff]);
  return sm3(
    entl,
    idb,
    bigTo32(CURVE.a),
    bigTo32(CURVE.b),
    bigTo32(CURVE.Gx),
    bigTo32(CURVE.Gy),
    bigTo32(P.x),
    bigTo32(P.y),
  );
}

/**
 * Sign a message the standard way: e = SM3(Z_A ‖ msg). Used for X.509 certificate signatures
 * (SM2-with-SM3), which the kernel checks with the default ID.
 * @param d private key
 * @param pub the matching public key (needed for Z_A)
 * @param msg the message (e.g. the DER tbsCertificate)
 * @param id distinguishing ID
 */
export function sm2SignMessage(
  d: Uint8Array | bigint,
  pub: Uint8Array,
  msg: Uint8Array,
  id: string | Uint8Array = SM2_DEFAULT_ID,
): Uint8Array {
  assertBytes(msg, undefined, 'message');
  return sm2SignDigest(d, sm3(sm2ZDigest(pub, id), msg));
}

/**
 * Verify a standard SM2 signature: e = SM3(Z_A ‖ msg). Returns false on any malformed input.
 */
export function sm2VerifyMessage(
  pub: Uint8Array,
  msg: Uint8Array,
  derSig: Uint8Array,
  id: string | Uint8Array = SM2_DEFAULT_ID,
): boolean {
  assertBytes(msg, undefined, 'message');
  let z: Uint8Array;
  try {
    z = sm2ZDigest(pub, id);
  } catch {
    return false;
  }
  return sm2VerifyDigest(pub, sm3(z, msg), derSig);
}

function derFromRS(r: bigint, s: bigint): Uint8Array {
  const hex = DER.hexFromSig({ r, s });
  return Uint8Array.from(Buffer.from(hex, 'hex'));
}

/** The curve parameters (p, n, h, a, b, Gx, Gy). */
export const SM2_CURVE_PARAMS = CURVE;
