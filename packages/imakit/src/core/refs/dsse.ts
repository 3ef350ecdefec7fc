/**
 * DSSE envelopes (Dead Simple Signing Envelope, secure-systems-lab/dsse protocol.md), the form a
 * Keylime signed runtime policy takes (keylime/dsse/dsse.py, keylime/signing.py, 7.14):
 *
 *   {"payload": base64(policy JSON), "payloadType": "application/vnd.keylime+json",
 *    "signatures": [{"keyid": "...", "sig": base64(signature)}]}
 *
 * Each signature is over PAE(payloadType, payload) = "DSSEv1 " len(type) " " type " " len(payload)
 * " " payload (lengths in ASCII decimal, byte counts). Keylime signs with ECDSA over SHA-256 (DER
 * r,s); its two backends name the signer in `keyid`:
 *  - `ecdsa`: lowercase hex SHA-256 of the public key's SubjectPublicKeyInfo PEM text;
 *  - `x509`: base64 of the signing certificate's PEM text (Keylime then verifies with that very
 *    certificate when no key is given: a signature anyone can make with their own certificate).
 *
 * Where imakit differs: base64 is decoded strictly (standard or URL-safe alphabet, per the DSSE
 * spec; Keylime's `b64dec` first tries *hex*, so a payload of hex digits is read as hex); a
 * signature is only ever checked against keys the caller trusts, never against a certificate the
 * envelope brings; any key imakit verifies with is accepted (RSA PKCS#1 v1.5 and ECDSA over
 * SHA-256, SM2 over SM3), Keylime takes EC keys only.
 *
 * Pure: no I/O. Verification returns a structured verdict.
 */
import { createHash } from 'node:crypto';
import { ImakitError } from '../../errors.ts';
import { hash, hashAlgoByName } from '../hash/hash-algo.ts';
import type { PrivateKey, PublicKey } from '../keys/keys.ts';
import { signDigest, verifyDigest } from '../keys/sign-digest.ts';
import { pemEncode } from '../keys/x509.ts';

/** The payload type Keylime gives signed runtime policies (`KEYLIME_PAYLOAD_TYPE`). */
export const KEYLIME_PAYLOAD_TYPE = 'application/vnd.keylime+json';
/** Caps (style.md practice 2): envelope text, signatures per envelope, one signature's bytes. */
export const MAX_DSSE_BYTES = 768 * 1024 * 1024;
export const MAX_DSSE_SIGNATURES = 64;
export const MAX_DSSE_SIG_BYTES = 16 * 1024;
export const MAX_DSSE_KEYID_LENGTH = 64 * 1024;

export interface DsseSignature {
  readonly keyid?: string;
  readonly sig: Uint8Array;
}

export interface DsseEnvelope {
  readonly payloadType: string;
  readonly payload: Uint8Array;
  readonly signatures: readonly DsseSignature[];
}

/** PAE(type, body) = `DSSEv1 SP LEN(type) SP type SP LEN(body) SP body`. */
export function dssePae(payloadType: string, payload: Uint8Array): Uint8Array {
  const type = Buffer.from(payloadType, 'utf8');
  const head = Buffer.from(`DSSEv1 ${type.length} `, 'ascii');
  const mid = Buffer.from(` ${payload.length} `, 'ascii');
  const out = new Uint8Array(head.length + type.length + mid.length + payload.length);
  out.set(head, 0);
  out.set(type, head.length);
  out.set(mid, head.length + type.length);
  out.set(payload, head.length + type.length + mid.length);
  return out;
}

const fail = (field: string, detail: string): ImakitError =>
  new ImakitError('E_REFS_FORMAT', `${field}: ${detail}`, { field });

const B64 = /^[A-Za-z0-9+/]*={0,2}$/;
const B64URL = /^[A-Za-z0-9_-]*={0,2}$/;

/** Strict base64 (standard or URL-safe, padding optional as the DSSE spec allows). */
export function decodeBase64Strict(s: string, field: string): Uint8Array {
  const std = B64.test(s);
  if (!std && !B64URL.test(s)) throw fail(field, 'not base64');
  const body = s.replace(/=+$/, '');
  if (body.length % 4 === 1) throw fail(field, 'base64 of impossible length');
  if (s.length !== body.length && s.length % 4 !== 0) throw fail(field, 'base64 padding is wrong');
  const out = Buffer.from(s, std ? 'base64' : 'base64url');
  // canonical: re-encoding gives the same text (no stray bits in the last character)
  const again = out.toString(std ? 'base64' : 'base64url').replace(/=+$/, '');
  if (again !== body) throw fail(field, 'non-canonical base64 (stray bits in the last character)');
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** True when parsed JSON has an envelope's shape (`payload` string and `payloadType`). */
export function looksLikeDsse(doc: unknown): boolean {
  return isObject(doc) && typeof doc.payload === 'string' && 'payloadType' in doc;
}

/**
 * Parse an envelope from its JSON text (or already-parsed JSON). Parsing never verifies.
 * @throws ImakitError E_REFS_FORMAT naming the JSON path; E_CODEC_TOO_LARGE past the caps
 */
export function parseDsseEnvelope(input: string | unknown): DsseEnvelope {
  let doc: unknown = input;
  if (typeof input === 'string') {
    if (input.length > MAX_DSSE_BYTES)
      throw new ImakitError('E_CODEC_TOO_LARGE', `DSSE envelope larger than ${MAX_DSSE_BYTES} bytes`);
    try {
      doc = JSON.parse(input);
    } catch (e) {
      throw fail('$', `not JSON: ${(e as Error).message}`);
    }
  }
  if (!isObject(doc)) throw fail('$', 'expected a JSON object');
  if (typeof doc.payloadType !== 'string') throw fail('$.payloadType', 'expected a string');
  if (typeof doc.payload !== 'string') throw fail('$.payload', 'expected a base64 string');
  const sigs = doc.signatures;
  if (!Array.isArray(sigs)) throw fail('$.signatures', 'expected an array');
  if (sigs.length > MAX_DSSE_SIGNATURES)
    throw new ImakitError('E_CODEC_TOO_LARGE', `more than ${MAX_DSSE_SIGNATURES} signatures`, {
      field: '$.signatures',
    });
  const signatures = sigs.map((s: unknown, i): DsseSignature => {
    const at = `$.signatures[${i}]`;
    if (!isObject(s)) throw fail(at, 'expected an object');
    if (typeof s.sig !== 'string') throw fail(`${at}.sig`, 'expected a base64 string');
    if (s.sig.length > (MAX_DSSE_SIG_BYTES * 4) / 3 + 4)
      throw new ImakitError('E_CODEC_TOO_LARGE', `signature longer than ${MAX_DSSE_SIG_BYTES} bytes`, {
        field: `${at}.sig`,
      });
    const sig = decodeBase64Strict(s.sig, `${at}.sig`);
    if (s.keyid === undefined || s.keyid === null) return Object.freeze({ sig });
    if (typeof s.keyid !== 'string') throw fail(`${at}.keyid`, 'expected a string');
    if (s.keyid.length > MAX_DSSE_KEYID_LENGTH) throw fail(`${at}.keyid`, 'longer than the cap');
    return Object.freeze({ keyid: s.keyid, sig });
  });
  return Object.freeze({
    payloadType: doc.payloadType,
    payload: decodeBase64Strict(doc.payload, '$.payload'),
    signatures: Object.freeze(signatures),
  });
}

/** Envelope JSON text, in Keylime's key order (`payload`, `payloadType`, `signatures`). */
export function encodeDsseEnvelope(env: DsseEnvelope): string {
  return JSON.stringify({
    payload: Buffer.from(env.payload).toString('base64'),
    payloadType: env.payloadType,
    signatures: env.signatures.map((s) =>
      s.keyid === undefined
        ? { sig: Buffer.from(s.sig).toString('base64') }
        : { keyid: s.keyid, sig: Buffer.from(s.sig).toString('base64') },
    ),
  });
}

/** The hash a key signs PAE with: SHA-256, or SM3 for SM2 keys (the only pairing SM2 allows). */
function paeHash(alg: PublicKey['alg']): ReturnType<typeof hashAlgoByName> {
  return hashAlgoByName(alg === 'sm2' ? 'sm3' : 'sha256');
}

function digestOf(alg: PublicKey['alg'], data: Uint8Array): Uint8Array {
  return hash(paeHash(alg), data);
}

/** Keylime's `ecdsa` backend key id: hex SHA-256 of the SPKI PEM text. */
export function keylimeEcdsaKeyId(pub: PublicKey): string {
  return createHash('sha256').update(pemEncode('PUBLIC KEY', pub.spkiDer)).digest('hex');
}

/** Keylime's `x509` backend key id: base64 of the certificate's PEM text. */
export function keylimeX509KeyId(certDer: Uint8Array): string {
  return Buffer.from(pemEncode('CERTIFICATE', certDer)).toString('base64');
}

/**
 * Sign `payload` into a one-signature envelope. `keyid` defaults to Keylime's x509 form when the
 * key carries a certificate, else its ecdsa form (so Keylime can match either).
 * @throws ImakitError E_KEY_TYPE / E_SIG_UNSUPPORTED from the key
 */
export function signDsse(
  payloadType: string,
  payload: Uint8Array,
  key: PrivateKey,
  opts: { keyid?: string } = {},
): DsseEnvelope {
  const pae = dssePae(payloadType, payload);
  const algo = paeHash(key.alg);
  const sig = signDigest(key, algo, digestOf(key.alg, pae));
  const cert = key.publicKey.cert;
  const keyid = opts.keyid ?? (cert ? keylimeX509KeyId(cert.der) : keylimeEcdsaKeyId(key.publicKey));
  return Object.freeze({
    payloadType,
    payload,
    signatures: Object.freeze([Object.freeze({ keyid, sig })]),
  });
}

/** What {@link verifyDsseEnvelope} found. */
export interface DsseVerdict {
  /** pass: at least one signature verifies under a given key; fail: none does; unsigned: no signatures */
  readonly status: 'pass' | 'fail' | 'unsigned';
  readonly payloadType: string;
  readonly signatures: number;
  /** for each signature: its keyid and the index of the key it verified under (-1: none) */
  readonly checked: readonly { readonly keyid?: string; readonly key: number }[];
  readonly detail: string;
  readonly notEstablished: readonly string[];
}

/**
 * Verify an envelope's signatures under `keys` (the caller's trusted keys; certificates named in
 * the envelope are never used). Any one valid signature passes, as in DSSE and Keylime.
 * Does NOT establish: that the payload is a valid policy, or that the key is the right one for
 * this machine.
 */
export function verifyDsseEnvelope(env: DsseEnvelope, keys: readonly PublicKey[]): DsseVerdict {
  const pae = dssePae(env.payloadType, env.payload);
  const digests = new Map<string, Uint8Array>();
  const checked = env.signatures.map((s) => {
    const key = keys.findIndex((k) => {
      let d = digests.get(k.alg);
      if (!d) digests.set(k.alg, (d = digestOf(k.alg, pae)));
      try {
        return verifyDigest(k, paeHash(k.alg), d, s.sig);
      } catch {
        return false;
      }
    });
    return Object.freeze(s.keyid === undefined ? { key } : { keyid: s.keyid, key });
  });
  const ok = checked.some((c) => c.key >= 0);
  const status = env.signatures.length === 0 ? 'unsigned' : ok ? 'pass' : 'fail';
  return Object.freeze({
    status,
    payloadType: env.payloadType,
    signatures: env.signatures.length,
    checked: Object.freeze(checked),
    detail:
      status === 'pass'
        ? `signature ${checked.findIndex((c) => c.key >= 0)} verifies under key ${checked.find((c) => c.key >= 0)!.key}`
        : status === 'unsigned'
          ? 'the envelope has no signatures'
          : `none of ${env.signatures.length} signature(s) verifies under the ${keys.length} key(s) given`,
    notEstablished: Object.freeze([
      'that the payload is a valid reference set or policy (parse it)',
      'that the key given is the right one for this machine',
    ]),
  });
}
