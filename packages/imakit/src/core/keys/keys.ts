/**
 * Loading signing and verification keys in the forms evmctl and openssl use (formats.md §3.5,
 * dependencies.md §2b/§3): PEM or DER; PKCS#8, traditional RSA/EC, encrypted PEM / PKCS#8;
 * X.509 certificates or bare SubjectPublicKeyInfo; RSA, NIST P-192/256/384/521 and SM2.
 *
 * Node parses SM2 keys but reports no key type for them and cannot sign with them the way the
 * kernel verifies (pitfall 15), so for SM2 the private scalar `d` is pulled out of the PKCS#8 DER
 * and signing goes through ./sm2.ts.
 *
 * Pure: takes bytes, never reads files. Results are frozen.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { ImakitError } from '../../errors.ts';
import { assertBytes, bytesEqual, latin1 } from '../bytes/bytes.ts';
import { keyIdFromSubjectPublicKey, keyIdOfCertificate } from './keyid.ts';
import { sm2PublicFromPrivate } from './sm2.ts';
import {
  looksLikePem,
  parseCertificate,
  parseSpki,
  pemDecode,
  readDerTlv,
  type Certificate,
  type CurveName,
  type PemBlock,
} from './x509.ts';

/** Key algorithms imakit signs and verifies with. */
export type KeyAlgorithm = 'rsa' | 'ec' | 'sm2';

/** A verification key: from a certificate (preferred: carries the SKID the kernel matches) or an SPKI. */
export interface PublicKey {
  readonly alg: KeyAlgorithm;
  readonly curve?: CurveName;
  /** modulus bits for RSA, field size for EC/SM2 */
  readonly bits: number;
  /** the v2 key id the kernel would match: last 4 bytes of the cert's SKID, else of SHA-1(subjectPublicKey) */
  readonly keyid: number;
  readonly spkiDer: Uint8Array;
  /** subjectPublicKey BIT STRING contents (RSAPublicKey DER or `04‖X‖Y`) */
  readonly subjectPublicKey: Uint8Array;
  readonly cert?: Certificate;
  /** Node key object (RSA and NIST EC only; Node cannot use SM2 keys correctly) */
  readonly keyObject?: KeyObject;
}

/** A signing key. */
export interface PrivateKey {
  readonly alg: KeyAlgorithm;
  readonly curve?: CurveName;
  readonly bits: number;
  /** default key id for signatures (SKID of a certificate in the same PEM file, else SPKI hash) */
  readonly keyid: number;
  readonly publicKey: PublicKey;
  /** Node key object (RSA, EC) */
  readonly keyObject?: KeyObject;
  /** EC/SM2 private scalar, big-endian, curve-size bytes */
  readonly d?: Uint8Array;
}

export interface LoadPrivateKeyOptions {
  /** passphrase for an encrypted PEM / PKCS#8 key */
  readonly passphrase?: string;
}

const PRIVATE_LABELS = new Set(['PRIVATE KEY', 'ENCRYPTED PRIVATE KEY', 'RSA PRIVATE KEY', 'EC PRIVATE KEY']);
const CURVE_BITS: Readonly<Record<CurveName, number>> = Object.freeze({
  'P-192': 192,
  'P-256': 256,
  'P-384': 384,
  'P-521': 521,
  SM2: 256,
});

/**
 * Load a private key (PEM or DER). If the PEM text also holds a CERTIFICATE for the same key,
 * its SKID becomes the default keyid (evmctl 1.4+, e.g. `rsa2048_skid_keycert.pem`).
 * @throws ImakitError E_KEY_PASSPHRASE (encrypted key, passphrase missing or wrong), E_KEY_PARSE,
 *   E_KEY_TYPE (RSA-PSS, Ed25519, unknown curves...), E_KEY_MISMATCH (bundled cert is for another key)
 * @example const key = loadPrivateKey(readFileSync('rsa2048.key'))
 */
export function loadPrivateKey(data: Uint8Array, opts: LoadPrivateKeyOptions = {}): PrivateKey {
  assertBytes(data, undefined, 'key data');
  let keyObject: KeyObject;
  let certs: Certificate[] = [];
  if (looksLikePem(data)) {
    const blocks = pemDecode(data);
    const keyBlock = blocks.find((b) => PRIVATE_LABELS.has(b.label));
    if (!keyBlock) {
      const found = [...new Set(blocks.map((b) => b.label))].join(', ');
      throw new ImakitError(
        'E_KEY_PARSE',
        `no private key PEM block found${found ? ` (the file holds: ${found}; a certificate or public key cannot sign)` : ''}`,
      );
    }
    certs = blocks.filter((b) => b.label === 'CERTIFICATE').map((b) => parseCertificate(b.der));
    const encrypted = keyBlock.label === 'ENCRYPTED PRIVATE KEY' || isProcTypeEncrypted(keyBlock);
    keyObject = nodePrivateKey(
      () => createPrivateKey(pemArgs(keyBlock, encrypted, opts.passphrase)),
      encrypted,
      opts,
    );
  } else {
    keyObject = loadDerPrivate(data, opts);
  }
  const spkiDer = new Uint8Array(createPublicKey(keyObject).export({ format: 'der', type: 'spki' }));
  const pub = publicFromSpki(spkiDer);
  let d: Uint8Array | undefined;
  if (pub.alg === 'sm2' || pub.alg === 'ec') {
    d = ecScalarFromPkcs8(new Uint8Array(keyObject.export({ format: 'der', type: 'pkcs8' })), pub.bits);
    if (pub.alg === 'sm2' && !bytesEqual(sm2PublicFromPrivate(d), pub.subjectPublicKey))
      throw new ImakitError('E_KEY_PARSE', 'SM2 private scalar does not match its public key');
  }
  let keyid = pub.keyid;
  let publicKey: PublicKey = pub;
  const cert = certs[0];
  if (cert) {
    if (!bytesEqual(cert.subjectPublicKey, pub.subjectPublicKey))
      throw new ImakitError('E_KEY_MISMATCH', 'the certificate in the key file is for a different key');
    keyid = keyIdOfCertificate(cert);
    publicKey = Object.freeze({ ...pub, keyid, cert });
  }
  return Object.freeze({
    alg: pub.alg,
    ...(pub.curve ? { curve: pub.curve } : {}),
    bits: pub.bits,
    keyid,
    publicKey,
    ...(pub.alg === 'sm2' ? {} : { keyObject }),
    ...(d ? { d } : {}),
  });
}

/**
 * Load one verification key: an X.509 certificate (PEM or DER) or a SubjectPublicKeyInfo
 * (`PUBLIC KEY` PEM or DER), or a PKCS#1 `RSA PUBLIC KEY`. The first usable PEM block wins.
 * @throws ImakitError E_KEY_PARSE, E_KEY_TYPE
 */
export function loadPublicKey(data: Uint8Array): PublicKey {
  const keys = loadPublicKeys(data);
  return keys[0]!;
}

/**
 * Load every verification key in the data (a PEM bundle can hold several certificates).
 * @throws ImakitError E_KEY_PARSE when there is none, E_KEY_TYPE for an unusable key algorithm
 */
export function loadPublicKeys(data: Uint8Array): PublicKey[] {
  assertBytes(data, undefined, 'key data');
  const out: PublicKey[] = [];
  if (looksLikePem(data)) {
    for (const b of pemDecode(data)) {
      if (b.label === 'CERTIFICATE' || b.label === 'X509 CERTIFICATE')
        out.push(publicFromCertificate(parseCertificate(b.der)));
      else if (b.label === 'PUBLIC KEY') out.push(publicFromSpki(parseSpki(b.der).spkiDer));
      else if (b.label === 'RSA PUBLIC KEY') out.push(publicFromSpki(pkcs1ToSpki(b.der)));
    }
    if (out.length === 0)
      throw new ImakitError('E_KEY_PARSE', 'no certificate or public key PEM block found');
    return out;
  }
  // DER: a certificate is SEQUENCE { SEQUENCE tbs, ... }; an SPKI is SEQUENCE { SEQUENCE algId, BIT STRING }.
  let cert: Certificate | undefined;
  try {
    cert = parseCertificate(data);
  } catch {
    cert = undefined;
  }
  if (cert) return [publicFromCertificate(cert)];
  try {
    return [publicFromSpki(parseSpki(data).spkiDer)];
  } catch (e) {
    if (e instanceof ImakitError && e.code === 'E_KEY_TYPE') throw e;
  }
  return [publicFromSpki(pkcs1ToSpki(data))];
}

/** The verification key of a parsed certificate (keyid from its SKID, pitfall 13). */
export function publicFromCertificate(cert: Certificate): PublicKey {
  const base = publicFromSpki(cert.spkiDer);
  return Object.freeze({ ...base, keyid: keyIdOfCertificate(cert), cert });
}

/** The verification key of an SPKI (keyid = SPKI-hash id, as evmctl computes without a SKID). */
export function publicFromSpki(spkiDer: Uint8Array): PublicKey {
  const s = parseSpki(spkiDer);
  if (s.keyAlg === 'unknown') throw new ImakitError('E_KEY_TYPE', 'unsupported public key algorithm');
  const keyid = keyIdFromSubjectPublicKey(s.subjectPublicKey);
  const bits = s.keyAlg === 'rsa' ? s.rsaBits! : CURVE_BITS[s.curve!];
  let keyObject: KeyObject | undefined;
  if (s.keyAlg !== 'sm2') {
    try {
      keyObject = createPublicKey({ key: Buffer.from(spkiDer), format: 'der', type: 'spki' });
    } catch (e) {
      throw new ImakitError('E_KEY_PARSE', `cannot load public key: ${errText(e)}`, {}, { cause: e });
    }
  }
  return Object.freeze({
    alg: s.keyAlg,
    ...(s.curve ? { curve: s.curve } : {}),
    bits,
    keyid,
    spkiDer: s.spkiDer,
    subjectPublicKey: s.subjectPublicKey,
    ...(keyObject ? { keyObject } : {}),
  });
}

// --- helpers

function isProcTypeEncrypted(b: PemBlock): boolean {
  return (b.headers?.['Proc-Type'] ?? '').includes('ENCRYPTED');
}

/** Re-create the PEM text of one block (headers included) for Node. */
function pemArgs(
  b: PemBlock,
  encrypted: boolean,
  passphrase: string | undefined,
): { key: string; format: 'pem'; passphrase?: string } {
  const hdr = b.headers
    ? Object.entries(b.headers)
        .map(([k, v]) => `${k}: ${v}\n`)
        .join('') + '\n'
    : '';
  const b64 = (
    Buffer.from(b.der)
      .toString('base64')
      .match(/.{1,64}/g) ?? []
  ).join('\n');
  const key = `-----BEGIN ${b.label}-----\n${hdr}${b64}\n-----END ${b.label}-----\n`;
  return encrypted ? { key, format: 'pem', passphrase: passphrase ?? '' } : { key, format: 'pem' };
}

function loadDerPrivate(data: Uint8Array, opts: LoadPrivateKeyOptions): KeyObject {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.length);
  // EncryptedPrivateKeyInfo starts SEQUENCE { SEQUENCE algId, ...}; PrivateKeyInfo SEQUENCE { INTEGER 0, ...}.
  let kind: DerKind;
  try {
    kind = derKind(data);
  } catch (e) {
    throw new ImakitError('E_KEY_PARSE', `not a DER private key: ${errText(e)}`, {}, { cause: e });
  }
  // A certificate or a public key given as the signing key used to look "encrypted" (it also
  // starts SEQUENCE { SEQUENCE ...}) and was reported as a missing passphrase: say what it is.
  if (kind === 'certificate' || kind === 'public-key')
    throw new ImakitError(
      'E_KEY_PARSE',
      `this is a DER ${kind === 'certificate' ? 'X.509 certificate' : 'public key (SubjectPublicKeyInfo)'}, not a private key`,
    );
  const encrypted = kind === 'encrypted';
  if (encrypted)
    return nodePrivateKey(
      () => createPrivateKey({ key: buf, format: 'der', type: 'pkcs8', passphrase: opts.passphrase ?? '' }),
      true,
      opts,
    );
  let last: unknown;
  for (const type of ['pkcs8', 'pkcs1', 'sec1'] as const) {
    try {
      return createPrivateKey({ key: buf, format: 'der', type });
    } catch (e) {
      last = e;
    }
  }
  throw new ImakitError('E_KEY_PARSE', `cannot parse DER private key: ${errText(last)}`, {}, { cause: last });
}

type DerKind = 'encrypted' | 'certificate' | 'public-key' | 'other';

/**
 * Classify a DER blob by its outer shape, enough to tell keys from certificates:
 * EncryptedPrivateKeyInfo = SEQUENCE { SEQUENCE { OID, ...}, OCTET STRING },
 * SubjectPublicKeyInfo = SEQUENCE { SEQUENCE algId, BIT STRING },
 * Certificate = SEQUENCE { SEQUENCE tbs, SEQUENCE sigAlg, BIT STRING } (RFC 5208, 5280).
 */
function derKind(data: Uint8Array): DerKind {
  const top = readDerTlv(data, 0);
  if (top.tag !== 0x30 || top.contentStart >= top.end || data[top.contentStart] !== 0x30) return 'other';
  const first = readDerTlv(data, top.contentStart);
  if (first.end >= top.end) return 'other';
  const second = readDerTlv(data, first.end);
  if (second.tag === 0x04 && data[first.contentStart] === 0x06) return 'encrypted';
  if (second.tag === 0x03) return 'public-key';
  if (second.tag === 0x30 && second.end < top.end && data[second.end] === 0x03) return 'certificate';
  return 'other';
}

/** Call Node, mapping passphrase failures to E_KEY_PASSPHRASE and never letting OpenSSL prompt. */
function nodePrivateKey(load: () => KeyObject, encrypted: boolean, opts: LoadPrivateKeyOptions): KeyObject {
  if (encrypted && opts.passphrase === undefined)
    throw new ImakitError('E_KEY_PASSPHRASE', 'the private key is encrypted and no passphrase was given');
  try {
    return load();
  } catch (e) {
    const code = (e as { code?: string }).code ?? '';
    if (encrypted || /BAD_DECRYPT|PASSPHRASE|INTERRUPTED/.test(code))
      throw new ImakitError(
        'E_KEY_PASSPHRASE',
        `cannot decrypt the private key (wrong passphrase?): ${errText(e)}`,
        {},
        {
          cause: e,
        },
      );
    throw new ImakitError('E_KEY_PARSE', `cannot parse private key: ${errText(e)}`, {}, { cause: e });
  }
}

/**
 * The private scalar of an EC/SM2 key from its PKCS#8 DER:
 * PrivateKeyInfo { INTEGER 0, AlgId, OCTET STRING { ECPrivateKey { INTEGER 1, OCTET STRING d, ... } } }.
 */
function ecScalarFromPkcs8(der: Uint8Array, bits: number): Uint8Array {
  try {
    const top = readDerTlv(der, 0);
    const ver = readDerTlv(der, top.contentStart);
    const alg = readDerTlv(der, ver.end);
    const oct = readDerTlv(der, alg.end);
    if (oct.tag !== 0x04) throw new Error('no privateKey OCTET STRING');
    const ecpk = readDerTlv(der, oct.contentStart);
    const v1 = readDerTlv(der, ecpk.contentStart);
    const dTlv = readDerTlv(der, v1.end);
    if (ecpk.tag !== 0x30 || v1.tag !== 0x02 || dTlv.tag !== 0x04) throw new Error('malformed ECPrivateKey');
    const raw = der.subarray(dTlv.contentStart, dTlv.end);
    const size = Math.ceil(bits / 8);
    if (raw.length > size) throw new Error('private scalar longer than the curve size');
    const d = new Uint8Array(size);
    d.set(raw, size - raw.length);
    return d;
  } catch (e) {
    throw new ImakitError(
      'E_KEY_PARSE',
      `cannot extract the EC private scalar: ${errText(e)}`,
      {},
      { cause: e },
    );
  }
}

function pkcs1ToSpki(der: Uint8Array): Uint8Array {
  try {
    const k = createPublicKey({ key: Buffer.from(der), format: 'der', type: 'pkcs1' });
    return new Uint8Array(k.export({ format: 'der', type: 'spki' }));
  } catch (e) {
    throw new ImakitError('E_KEY_PARSE', `not a certificate or public key: ${errText(e)}`, {}, { cause: e });
  }
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** For diagnostics: does this data look like it holds a private key? */
export function containsPrivateKey(data: Uint8Array): boolean {
  if (looksLikePem(data))
    return /-----BEGIN (ENCRYPTED |RSA |EC )?PRIVATE KEY-----/.test(latin1(data.subarray(0, 1 << 16)));
  // DER: EncryptedPrivateKeyInfo, or a private key whose first element is a small version INTEGER
  // (PKCS#8 and PKCS#1 version 0, SEC1 version 1); a PKCS#1 public key starts with its modulus.
  try {
    if (derKind(data) === 'encrypted') return true;
    const top = readDerTlv(data, 0);
    if (top.tag !== 0x30 || top.contentStart >= top.end) return false;
    const ver = readDerTlv(data, top.contentStart);
    return ver.tag === 0x02 && ver.end - ver.contentStart === 1 && data[ver.contentStart]! <= 1;
  } catch {
    return false;
  }
}
