/**
 * TPMT_PUBLIC / TPM2B_PUBLIC for RSA and ECC keys (TPM 2.0 Part 2 §12.2.4, §12.2.5):
 *
 *   u16 type ‖ u16 nameAlg ‖ u32 objectAttributes ‖ TPM2B_DIGEST authPolicy ‖
 *   parameters (TPMS_RSA_PARMS | TPMS_ECC_PARMS) ‖ unique (TPM2B_PUBLIC_KEY_RSA | TPMS_ECC_POINT)
 *
 *   TPMS_RSA_PARMS = TPMT_SYM_DEF_OBJECT ‖ TPMT_RSA_SCHEME ‖ u16 keyBits ‖ u32 exponent
 *   TPMS_ECC_PARMS = TPMT_SYM_DEF_OBJECT ‖ TPMT_ECC_SCHEME ‖ u16 curveID ‖ TPMT_KDF_SCHEME
 *
 * The object's Name (Part 1 §16) is nameAlg ‖ H_nameAlg(TPMT_PUBLIC bytes); because decoding keeps
 * every field, `encodeTpmtPublic(decodeTpmtPublic(b))` is `b` and the name is computed from it.
 * Parsing never decides whether a key is fit for a purpose: `isRestrictedSigningKey` and the
 * quote verifier do.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { CodecError } from '../../errors.ts';
import { concatBytes } from '../bytes/bytes.ts';
import { hash, hashAlgoByTpmAlg } from '../hash/hash-algo.ts';
import type { TpmReader, TpmWriter } from './marshal.ts';
import { decodeAll, encodeWith } from './marshal.ts';
import { TPM_ALG, TPM_ECC_CURVE, TPMA_OBJECT, tpmAlgName } from './constants.ts';

/** Largest digest (authPolicy, TPM2B_DIGEST): sha512. */
export const MAX_DIGEST_BYTES = 64;
/** Largest RSA modulus: 4096 bits (MAX_RSA_KEY_BYTES on big TPMs is 512). */
export const MAX_RSA_KEY_BYTES = 512;
/** Largest ECC coordinate: 66 bytes for P-521 (BN P638 needs 80). */
export const MAX_ECC_KEY_BYTES = 80;

/** TPMT_SYM_DEF_OBJECT: algorithm NULL means no symmetric part (keyBits and mode absent, 0 here). */
export interface SymDefObject {
  readonly algorithm: number;
  readonly keyBits: number;
  readonly mode: number;
}

/** A TPMT_*_SCHEME / TPMT_KDF_SCHEME: `scheme` NULL has no details; ECDAA also has `count`. */
export interface TpmScheme {
  readonly scheme: number;
  /** details.hashAlg, absent for NULL and RSAES */
  readonly hashAlg?: number;
  /** ECDAA only */
  readonly count?: number;
}

interface PublicCommon {
  readonly nameAlg: number;
  readonly objectAttributes: number;
  readonly authPolicy: Uint8Array;
  readonly symmetric: SymDefObject;
  readonly scheme: TpmScheme;
}
/** An RSA TPMT_PUBLIC. `exponent` 0 means 65537 (Part 2 §12.2.3.5). */
export interface TpmtPublicRsa extends PublicCommon {
  readonly type: 'rsa';
  readonly keyBits: number;
  readonly exponent: number;
  readonly modulus: Uint8Array;
}
/** An ECC TPMT_PUBLIC. */
export interface TpmtPublicEcc extends PublicCommon {
  readonly type: 'ecc';
  readonly curveId: number;
  readonly kdf: TpmScheme;
  readonly x: Uint8Array;
  readonly y: Uint8Array;
}
/** A decoded TPMT_PUBLIC (RSA or ECC; KEYEDHASH/SYMCIPHER objects are refused). */
export type TpmtPublic = TpmtPublicRsa | TpmtPublicEcc;

const SYM_BLOCK = new Set<number>([TPM_ALG.AES, TPM_ALG.SM4, TPM_ALG.CAMELLIA]);
/** Schemes whose details are TPMS_SCHEME_HASH (one u16 hashAlg). */
const HASH_SCHEMES = new Set<number>([
  TPM_ALG.RSASSA,
  TPM_ALG.RSAPSS,
  TPM_ALG.OAEP,
  TPM_ALG.ECDSA,
  TPM_ALG.ECDH,
  TPM_ALG.SM2,
  TPM_ALG.ECSCHNORR,
  TPM_ALG.ECMQV,
  TPM_ALG.HMAC,
]);
const RSA_SCHEMES = new Set<number>([
  TPM_ALG.NULL,
  TPM_ALG.RSASSA,
  TPM_ALG.RSAPSS,
  TPM_ALG.OAEP,
  TPM_ALG.RSAES,
]);
const ECC_SCHEMES = new Set<number>([
  TPM_ALG.NULL,
  TPM_ALG.ECDSA,
  TPM_ALG.ECDH,
  TPM_ALG.ECDAA,
  TPM_ALG.SM2,
  TPM_ALG.ECSCHNORR,
  TPM_ALG.ECMQV,
]);
const KDF_SCHEMES = new Set<number>([
  TPM_ALG.NULL,
  TPM_ALG.MGF1,
  TPM_ALG.KDF1_SP800_56A,
  TPM_ALG.KDF2,
  TPM_ALG.KDF1_SP800_108,
]);

function readSym(r: TpmReader, f: string): SymDefObject {
  const at = r.offset;
  const algorithm = r.u16(`${f}.algorithm`);
  if (algorithm === TPM_ALG.NULL) return Object.freeze({ algorithm, keyBits: 0, mode: 0 });
  if (!SYM_BLOCK.has(algorithm))
    r.fail('E_CODEC_UNKNOWN_ALGO', `symmetric algorithm ${tpmAlgName(algorithm)} not allowed`, f, at);
  const keyBits = r.u16(`${f}.keyBits`);
  const mode = r.u16(`${f}.mode`);
  return Object.freeze({ algorithm, keyBits, mode });
}

function writeSym(w: TpmWriter, s: SymDefObject): void {
  w.u16(s.algorithm);
  if (s.algorithm !== TPM_ALG.NULL) w.u16(s.keyBits).u16(s.mode);
}

function readScheme(r: TpmReader, f: string, allowed: ReadonlySet<number>): TpmScheme {
  const at = r.offset;
  const scheme = r.u16(`${f}.scheme`);
  if (!allowed.has(scheme))
    r.fail('E_CODEC_UNKNOWN_ALGO', `scheme ${tpmAlgName(scheme)} not allowed here`, f, at);
  if (scheme === TPM_ALG.NULL || scheme === TPM_ALG.RSAES) return Object.freeze({ scheme });
  const hashAlg = r.u16(`${f}.details.hashAlg`);
  if (scheme === TPM_ALG.ECDAA) return Object.freeze({ scheme, hashAlg, count: r.u16(`${f}.details.count`) });
  if (HASH_SCHEMES.has(scheme) || KDF_SCHEMES.has(scheme)) return Object.freeze({ scheme, hashAlg });
  return r.fail('E_CODEC_UNKNOWN_ALGO', `scheme ${tpmAlgName(scheme)} not supported`, f, at);
}

function writeScheme(w: TpmWriter, s: TpmScheme): void {
  w.u16(s.scheme);
  if (s.scheme === TPM_ALG.NULL || s.scheme === TPM_ALG.RSAES) return;
  w.u16(s.hashAlg ?? TPM_ALG.NULL);
  if (s.scheme === TPM_ALG.ECDAA) w.u16(s.count ?? 0);
}

/** Read a TPMT_PUBLIC. @throws CodecError E_CODEC_UNKNOWN_TYPE for a non-RSA/ECC object, E_CODEC_* otherwise */
export function readTpmtPublic(r: TpmReader): TpmtPublic {
  const at = r.offset;
  const type = r.u16('type');
  if (type !== TPM_ALG.RSA && type !== TPM_ALG.ECC)
    r.fail('E_CODEC_UNKNOWN_TYPE', `object type ${tpmAlgName(type)} is not RSA or ECC`, 'type', at);
  const nameAt = r.offset;
  const nameAlg = r.u16('nameAlg');
  if (nameAlg !== TPM_ALG.NULL && !hashAlgoByTpmAlg(nameAlg))
    r.fail('E_CODEC_UNKNOWN_ALGO', `nameAlg ${tpmAlgName(nameAlg)} is not a hash`, 'nameAlg', nameAt);
  const objectAttributes = r.u32('objectAttributes');
  const authPolicy = r.tpm2b('authPolicy', MAX_DIGEST_BYTES);
  const symmetric = readSym(r, 'parameters.symmetric');
  if (type === TPM_ALG.RSA) {
    const scheme = readScheme(r, 'parameters.scheme', RSA_SCHEMES);
    const keyBits = r.u16('parameters.keyBits');
    const exponent = r.u32('parameters.exponent');
    const modulus = r.tpm2b('unique.rsa', MAX_RSA_KEY_BYTES);
    return Object.freeze({
      type: 'rsa',
      nameAlg,
      objectAttributes,
      authPolicy,
      symmetric,
      scheme,
      keyBits,
      exponent,
      modulus,
    });
  }
  const scheme = readScheme(r, 'parameters.scheme', ECC_SCHEMES);
  const curveId = r.u16('parameters.curveID');
  const kdf = readScheme(r, 'parameters.kdf', KDF_SCHEMES);
  const x = r.tpm2b('unique.ecc.x', MAX_ECC_KEY_BYTES);
  const y = r.tpm2b('unique.ecc.y', MAX_ECC_KEY_BYTES);
  return Object.freeze({
    type: 'ecc',
    nameAlg,
    objectAttributes,
    authPolicy,
    symmetric,
    scheme,
    curveId,
    kdf,
    x,
    y,
  });
}

/** Write a TPMT_PUBLIC. */
export function writeTpmtPublic(w: TpmWriter, p: TpmtPublic): void {
  w.u16(p.type === 'rsa' ? TPM_ALG.RSA : TPM_ALG.ECC)
    .u16(p.nameAlg)
    .u32(p.objectAttributes >>> 0)
    .tpm2b(p.authPolicy);
  writeSym(w, p.symmetric);
  writeScheme(w, p.scheme);
  if (p.type === 'rsa') {
    w.u16(p.keyBits).u32(p.exponent).tpm2b(p.modulus);
  } else {
    w.u16(p.curveId);
    writeScheme(w, p.kdf);
    w.tpm2b(p.x).tpm2b(p.y);
  }
}

/** Decode a whole TPMT_PUBLIC (`tpm2_readpublic -f tpmt`). @throws CodecError */
export function decodeTpmtPublic(bytes: Uint8Array): TpmtPublic {
  return decodeAll(bytes, readTpmtPublic, 'TPMT_PUBLIC');
}
/** Encode a TPMT_PUBLIC. */
export function encodeTpmtPublic(p: TpmtPublic): Uint8Array {
  return encodeWith((w) => writeTpmtPublic(w, p));
}

/** Read a TPM2B_PUBLIC (u16 size ‖ TPMT_PUBLIC, the size must match exactly). */
export function readTpm2bPublic(r: TpmReader): TpmtPublic {
  const inner = r.sized('TPM2B_PUBLIC');
  if (inner.bytes.length === 0) inner.fail('E_CODEC_BAD_LENGTH', 'empty TPM2B_PUBLIC', 'TPM2B_PUBLIC.size');
  const p = readTpmtPublic(inner);
  inner.end('TPM2B_PUBLIC.publicArea');
  return p;
}
/** Write a TPM2B_PUBLIC. */
export function writeTpm2bPublic(w: TpmWriter, p: TpmtPublic): void {
  w.sized((w2) => writeTpmtPublic(w2, p));
}
/** Decode a whole TPM2B_PUBLIC (`tpm2_readpublic -o`, `tpm2_createak -u`). @throws CodecError */
export function decodeTpm2bPublic(bytes: Uint8Array): TpmtPublic {
  return decodeAll(bytes, readTpm2bPublic, 'TPM2B_PUBLIC');
}
/** Encode a TPM2B_PUBLIC. */
export function encodeTpm2bPublic(p: TpmtPublic): Uint8Array {
  return encodeWith((w) => writeTpm2bPublic(w, p));
}

/**
 * The object's Name: u16 nameAlg ‖ H_nameAlg(TPMT_PUBLIC) (Part 1 §16).
 * @throws CodecError E_CODEC_UNKNOWN_ALGO when nameAlg is NULL or not a supported hash
 * @example toHex(tpmPublicName(decodeTpm2bPublic(akPub))) // '000b…' as tpm2_readpublic prints
 */
export function tpmPublicName(p: TpmtPublic): Uint8Array {
  const algo = hashAlgoByTpmAlg(p.nameAlg);
  if (!algo)
    throw new CodecError('E_CODEC_UNKNOWN_ALGO', `nameAlg ${tpmAlgName(p.nameAlg)} has no name digest`, {
      offset: 2,
      field: 'nameAlg',
    });
  const alg = new Uint8Array([p.nameAlg >> 8, p.nameAlg & 0xff]);
  return concatBytes(alg, hash(algo, encodeTpmtPublic(p)));
}

/** True for a restricted signing key (an AK): restricted and sign set, decrypt clear. */
export function isRestrictedSigningKey(p: TpmtPublic): boolean {
  const a = p.objectAttributes;
  return (
    (a & TPMA_OBJECT.restricted) !== 0 && (a & TPMA_OBJECT.sign) !== 0 && (a & TPMA_OBJECT.decrypt) === 0
  );
}

/** JWK curve names of the TPM curves Node can use. */
const JWK_CURVES: ReadonlyMap<number, { crv: string; size: number }> = new Map([
  [TPM_ECC_CURVE.NIST_P256, { crv: 'P-256', size: 32 }],
  [TPM_ECC_CURVE.NIST_P384, { crv: 'P-384', size: 48 }],
  [TPM_ECC_CURVE.NIST_P521, { crv: 'P-521', size: 66 }],
]);

/** Coordinate size in bytes of a TPM curve Node supports, or undefined. */
export function eccCurveSize(curveId: number): number | undefined {
  return JWK_CURVES.get(curveId)?.size;
}

/**
 * The public key as a node:crypto KeyObject (RSA, or ECC on NIST P-256/384/521). Create it once per
 * key and reuse it: creating a KeyObject costs more than an RSA verification.
 * @throws CodecError E_KEY_TYPE for a curve Node cannot use (BN, SM2), E_KEY_PARSE for a bad point
 */
export function tpmPublicToKeyObject(p: TpmtPublic): KeyObject {
  try {
    if (p.type === 'rsa') {
      const e = p.exponent === 0 ? 65537 : p.exponent;
      const eb = Buffer.alloc(4);
      eb.writeUInt32BE(e >>> 0);
      let i = 0;
      while (i < 3 && eb[i] === 0) i++;
      return createPublicKey({
        key: { kty: 'RSA', n: b64u(p.modulus), e: b64u(eb.subarray(i)) },
        format: 'jwk',
      });
    }
    const c = JWK_CURVES.get(p.curveId);
    if (!c)
      throw new CodecError(
        'E_KEY_TYPE',
        `curve 0x${p.curveId.toString(16)} is not supported by node:crypto`,
        {
          offset: 0,
          field: 'parameters.curveID',
        },
      );
    return createPublicKey({
      key: { kty: 'EC', crv: c.crv, x: b64u(leftPad(p.x, c.size)), y: b64u(leftPad(p.y, c.size)) },
      format: 'jwk',
    });
  } catch (e) {
    if (e instanceof CodecError) throw e;
    throw new CodecError('E_KEY_PARSE', `unusable public key: ${(e as Error).message}`, {
      offset: 0,
      field: 'unique',
    });
  }
}

/** The public key as SPKI PEM (what `tpm2_readpublic -f pem` writes). */
export function tpmPublicToPem(p: TpmtPublic): string {
  return tpmPublicToKeyObject(p).export({ type: 'spki', format: 'pem' }) as string;
}

function leftPad(b: Uint8Array, n: number): Uint8Array {
  if (b.length > n)
    throw new CodecError('E_KEY_PARSE', `ECC coordinate of ${b.length} bytes exceeds ${n}`, {
      offset: 0,
      field: 'unique.ecc',
    });
  if (b.length === n) return b;
  const out = new Uint8Array(n);
  out.set(b, n - b.length);
  return out;
}

function b64u(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.length).toString('base64url');
}
