/**
 * X.509 certificate parsing for IMA/EVM keys (dependencies.md §3).
 *
 * Node's `X509Certificate` gives neither the Subject Key Identifier (which the kernel matches
 * signature key ids against, formats.md §3.5) nor the raw subjectPublicKey, and it cannot handle
 * SM2 keys; so certificates are parsed with @peculiar/asn1-x509. Parsing never verifies the
 * certificate signature or chain: a parsed Certificate says what the bytes claim, nothing more.
 */
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  AuthorityKeyIdentifier,
  BasicConstraints,
  Certificate as AsnCertificate,
  ExtendedKeyUsage,
  KeyUsage,
  KeyUsageFlags,
  SubjectKeyIdentifier,
  type SubjectPublicKeyInfo,
  id_ce_authorityKeyIdentifier,
  id_ce_basicConstraints,
  id_ce_extKeyUsage,
  id_ce_keyUsage,
  id_ce_subjectKeyIdentifier,
  type Name,
} from '@peculiar/asn1-x509';
import { CodecError, ImakitError } from '../../errors.ts';
import { assertBytes, latin1, toHex } from '../bytes/bytes.ts';
import { SM2_CURVE_OID } from './sm2.ts';

/** Public key algorithms imakit can use for IMA/EVM signatures. */
export type KeyAlg = 'rsa' | 'ec' | 'sm2' | 'unknown';
/** Named curves (SM2 is reported as alg 'sm2' with curve 'SM2'). */
export type CurveName = 'P-192' | 'P-256' | 'P-384' | 'P-521' | 'SM2';

export const OID = Object.freeze({
  rsaEncryption: '1.2.840.113549.1.1.1',
  ecPublicKey: '1.2.840.10045.2.1',
  /** some SM2 SPKIs use this key OID instead of id-ecPublicKey + SM2 curve */
  sm2Key: '1.2.156.10197.1.301.1',
});

const CURVES: Readonly<Record<string, CurveName>> = Object.freeze({
  '1.2.840.10045.3.1.1': 'P-192',
  '1.2.840.10045.3.1.7': 'P-256',
  '1.3.132.0.34': 'P-384',
  '1.3.132.0.35': 'P-521',
  [SM2_CURVE_OID]: 'SM2',
});

/** Key usage bits (RFC 5280 §4.2.1.3). */
export interface KeyUsageBits {
  readonly digitalSignature: boolean;
  readonly nonRepudiation: boolean;
  readonly keyEncipherment: boolean;
  readonly dataEncipherment: boolean;
  readonly keyAgreement: boolean;
  readonly keyCertSign: boolean;
  readonly cRLSign: boolean;
  readonly encipherOnly: boolean;
  readonly decipherOnly: boolean;
}

/** A parsed (NOT verified) X.509 certificate. */
export interface Certificate {
  readonly der: Uint8Array;
  /** the exact tbsCertificate bytes (what the issuer signed) */
  readonly tbsDer: Uint8Array;
  /** serial number, lowercase hex of the DER INTEGER contents */
  readonly serialHex: string;
  /** OpenSSL-style one-line name, e.g. `CN=imakit test, O=example` */
  readonly subject: string;
  readonly issuer: string;
  /** the exact DER of the subject / issuer Name (used to match issuers) */
  readonly subjectDer: Uint8Array;
  readonly issuerDer: Uint8Array;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** signatureAlgorithm OID (e.g. 1.2.840.113549.1.1.11 sha256WithRSA, 1.2.156.10197.1.501 SM2-with-SM3) */
  readonly sigAlgOid: string;
  /** signatureValue BIT STRING contents */
  readonly signature: Uint8Array;
  /** exact DER of SubjectPublicKeyInfo */
  readonly spkiDer: Uint8Array;
  /** subjectPublicKey BIT STRING contents (unused-bits octet excluded): the keyid hash input */
  readonly subjectPublicKey: Uint8Array;
  readonly keyAlg: KeyAlg;
  /** SPKI algorithm OID */
  readonly keyAlgOid: string;
  readonly curve?: CurveName;
  readonly rsaBits?: number;
  readonly skid?: Uint8Array;
  readonly akid?: Uint8Array;
  readonly keyUsage?: KeyUsageBits;
  readonly basicConstraints?: { readonly ca: boolean; readonly pathLen?: number };
  /** extended key usage OIDs */
  readonly extKeyUsage?: readonly string[];
}

/**
 * Parse a DER certificate.
 * @throws ImakitError E_KEY_PARSE when the bytes are not an X.509 certificate
 * @example parseCertificate(readFileSync('rsa2048.cer')).skid
 */
export function parseCertificate(der: Uint8Array): Certificate {
  assertBytes(der, undefined, 'certificate');
  let cert: AsnCertificate;
  let raw: DerParts;
  try {
    raw = certificateParts(der);
    cert = AsnConvert.parse(der, AsnCertificate);
  } catch (e) {
    throw new ImakitError('E_KEY_PARSE', `not an X.509 certificate: ${errText(e)}`, {}, { cause: e });
  }
  const tbs = cert.tbsCertificate;
  let key: ReturnType<typeof spkiFields>;
  try {
    key = spkiFields(raw.spki);
  } catch (e) {
    throw new ImakitError('E_KEY_PARSE', `malformed subjectPublicKeyInfo: ${errText(e)}`, {}, { cause: e });
  }
  const out: {
    -readonly [K in keyof Certificate]: Certificate[K];
  } = {
    der,
    tbsDer: raw.tbs,
    serialHex: toHex(new Uint8Array(tbs.serialNumber)),
    subject: nameToString(tbs.subject),
    issuer: nameToString(tbs.issuer),
    subjectDer: raw.subject,
    issuerDer: raw.issuer,
    notBefore: tbs.validity.notBefore.getTime(),
    notAfter: tbs.validity.notAfter.getTime(),
    sigAlgOid: cert.signatureAlgorithm.algorithm,
    signature: new Uint8Array(cert.signatureValue),
    spkiDer: raw.spki,
    subjectPublicKey: key.subjectPublicKey,
    keyAlg: key.keyAlg,
    keyAlgOid: key.keyAlgOid,
  };
  if (key.curve) out.curve = key.curve;
  if (key.rsaBits) out.rsaBits = key.rsaBits;
  for (const ext of tbs.extensions ?? []) {
    const v = ext.extnValue.buffer;
    try {
      switch (ext.extnID) {
        case id_ce_subjectKeyIdentifier:
          out.skid = new Uint8Array(AsnConvert.parse(v, SubjectKeyIdentifier).buffer);
          break;
        case id_ce_authorityKeyIdentifier: {
          const a = AsnConvert.parse(v, AuthorityKeyIdentifier);
          if (a.keyIdentifier) out.akid = new Uint8Array(a.keyIdentifier.buffer);
          break;
        }
        case id_ce_keyUsage:
          out.keyUsage = keyUsageBits(AsnConvert.parse(v, KeyUsage).toNumber());
          break;
        case id_ce_basicConstraints: {
          const b = AsnConvert.parse(v, BasicConstraints);
          out.basicConstraints =
            b.pathLenConstraint === undefined ? { ca: b.cA } : { ca: b.cA, pathLen: b.pathLenConstraint };
          break;
        }
        case id_ce_extKeyUsage:
          out.extKeyUsage = Object.freeze([...AsnConvert.parse(v, ExtendedKeyUsage)]);
          break;
      }
    } catch (e) {
      throw new ImakitError('E_KEY_PARSE', `malformed certificate extension ${ext.extnID}: ${errText(e)}`, {
        field: ext.extnID,
      });
    }
  }
  return Object.freeze(out);
}

/** Algorithm, curve and size of a SubjectPublicKeyInfo (a parsed @peculiar object). */
export function describeSpki(spki: SubjectPublicKeyInfo): {
  keyAlg: KeyAlg;
  curve?: CurveName;
  rsaBits?: number;
} {
  const { keyAlg, curve, rsaBits } = spkiFields(new Uint8Array(AsnConvert.serialize(spki)));
  return { keyAlg, ...(curve ? { curve } : {}), ...(rsaBits ? { rsaBits } : {}) };
}

/** Parse a DER SubjectPublicKeyInfo. @throws ImakitError E_KEY_PARSE */
export function parseSpki(der: Uint8Array): {
  spkiDer: Uint8Array;
  subjectPublicKey: Uint8Array;
  keyAlg: KeyAlg;
  curve?: CurveName;
  rsaBits?: number;
} {
  try {
    const top = readDerTlv(der, 0, 'spki');
    if (top.end !== der.length) throw new Error('trailing bytes after SubjectPublicKeyInfo');
    const { subjectPublicKey, keyAlg, curve, rsaBits } = spkiFields(der);
    return {
      spkiDer: der,
      subjectPublicKey,
      keyAlg,
      ...(curve ? { curve } : {}),
      ...(rsaBits ? { rsaBits } : {}),
    };
  } catch (e) {
    throw new ImakitError('E_KEY_PARSE', `not a SubjectPublicKeyInfo: ${errText(e)}`, {}, { cause: e });
  }
}

/**
 * The fields of a DER SubjectPublicKeyInfo, read with the DER walker below (RFC 5280 §4.1,
 * RFC 3279 §2.3): `SEQUENCE { SEQUENCE { OID algorithm, ANY parameters OPTIONAL }, BIT STRING }`,
 * an RSA key being `SEQUENCE { INTEGER n, INTEGER e }` and EC parameters a namedCurve OID. Not
 * @peculiar: its RSA and EC schema modules cost start-up time on every key load, and
 * every command that verifies a signature loads a key (issue 10 item 11).
 * @throws CodecError E_CODEC_DER
 */
function spkiFields(der: Uint8Array): {
  subjectPublicKey: Uint8Array;
  keyAlgOid: string;
  keyAlg: KeyAlg;
  curve?: CurveName;
  rsaBits?: number;
} {
  const top = readDerTlv(der, 0, 'spki');
  const algId = readDerTlv(der, top.contentStart, 'spki.algorithm');
  const bits = readDerTlv(der, algId.end, 'spki.subjectPublicKey');
  if (top.tag !== 0x30 || algId.tag !== 0x30 || bits.tag !== 0x03 || bits.end !== top.end)
    throw new CodecError('E_CODEC_DER', 'malformed SubjectPublicKeyInfo', { offset: 0, field: 'spki' });
  const oidTlv = readDerTlv(der, algId.contentStart, 'spki.algorithm');
  if (oidTlv.tag !== 0x06)
    throw new CodecError('E_CODEC_DER', 'algorithm is not an OID', { offset: oidTlv.start, field: 'spki' });
  const keyAlgOid = oidText(der.subarray(oidTlv.contentStart, oidTlv.end), oidTlv.contentStart);
  if (bits.contentStart === bits.end)
    throw new CodecError('E_CODEC_DER', 'empty subjectPublicKey', {
      offset: bits.contentStart,
      field: 'spki.subjectPublicKey',
    });
  const subjectPublicKey = new Uint8Array(der.subarray(bits.contentStart + 1, bits.end));
  const params = oidTlv.end < algId.end ? readDerTlv(der, oidTlv.end, 'spki.parameters') : undefined;
  if (keyAlgOid === OID.rsaEncryption) {
    const k = readDerTlv(subjectPublicKey, 0, 'RSAPublicKey');
    const n = readDerTlv(subjectPublicKey, k.contentStart, 'RSAPublicKey.modulus');
    const e = readDerTlv(subjectPublicKey, n.end, 'RSAPublicKey.publicExponent');
    if (
      k.tag !== 0x30 ||
      n.tag !== 0x02 ||
      e.tag !== 0x02 ||
      e.end !== k.end ||
      k.end !== subjectPublicKey.length
    )
      throw new CodecError('E_CODEC_DER', 'malformed RSAPublicKey', { offset: 0, field: 'RSAPublicKey' });
    const rsaBits = bitLength(subjectPublicKey.subarray(n.contentStart, n.end));
    return { subjectPublicKey, keyAlgOid, keyAlg: 'rsa', rsaBits };
  }
  if (keyAlgOid === OID.sm2Key) return { subjectPublicKey, keyAlgOid, keyAlg: 'sm2', curve: 'SM2' };
  if (keyAlgOid === OID.ecPublicKey) {
    // ECParameters is a CHOICE: only a namedCurve OID names a curve we know
    if (params === undefined || params.tag !== 0x06)
      return { subjectPublicKey, keyAlgOid, keyAlg: 'unknown' };
    const curve = CURVES[oidText(der.subarray(params.contentStart, params.end), params.contentStart)];
    if (curve === 'SM2') return { subjectPublicKey, keyAlgOid, keyAlg: 'sm2', curve };
    if (curve) return { subjectPublicKey, keyAlgOid, keyAlg: 'ec', curve };
  }
  return { subjectPublicKey, keyAlgOid, keyAlg: 'unknown' };
}

/** Dotted text of an OBJECT IDENTIFIER's contents. @throws CodecError E_CODEC_DER */
function oidText(c: Uint8Array, offset: number): string {
  if (c.length === 0 || (c[c.length - 1]! & 0x80) !== 0)
    throw new CodecError('E_CODEC_DER', 'malformed OID', { offset, field: 'oid' });
  const arcs: bigint[] = [];
  let v = 0n;
  for (let i = 0; i < c.length; i++) {
    if (v === 0n && c[i] === 0x80)
      throw new CodecError('E_CODEC_DER', 'non-minimal OID arc', { offset: offset + i, field: 'oid' });
    v = (v << 7n) | BigInt(c[i]! & 0x7f);
    if ((c[i]! & 0x80) === 0) {
      arcs.push(v);
      v = 0n;
    }
  }
  const first = arcs[0]!;
  const head = first < 40n ? [0n, first] : first < 80n ? [1n, first - 40n] : [2n, first - 80n];
  return [...head, ...arcs.slice(1)].join('.');
}

function keyUsageBits(n: number): KeyUsageBits {
  const f = (b: number): boolean => (n & b) !== 0;
  return Object.freeze({
    digitalSignature: f(KeyUsageFlags.digitalSignature),
    nonRepudiation: f(KeyUsageFlags.nonRepudiation),
    keyEncipherment: f(KeyUsageFlags.keyEncipherment),
    dataEncipherment: f(KeyUsageFlags.dataEncipherment),
    keyAgreement: f(KeyUsageFlags.keyAgreement),
    keyCertSign: f(KeyUsageFlags.keyCertSign),
    cRLSign: f(KeyUsageFlags.cRLSign),
    encipherOnly: f(KeyUsageFlags.encipherOnly),
    decipherOnly: f(KeyUsageFlags.decipherOnly),
  });
}

function bitLength(b: Uint8Array): number {
  let i = 0;
  while (i < b.length && b[i] === 0) i++;
  if (i === b.length) return 0;
  return (b.length - i - 1) * 8 + (32 - Math.clz32(b[i]!));
}

const ATTR_NAMES: Readonly<Record<string, string>> = Object.freeze({
  '2.5.4.3': 'CN',
  '2.5.4.6': 'C',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '2.5.4.5': 'serialNumber',
  '1.2.840.113549.1.9.1': 'emailAddress',
  '0.9.2342.19200300.100.1.25': 'DC',
});

/** OpenSSL-like one-line rendering of a Name: `CN=…, O=…` in encoded order. */
function nameToString(name: Name): string {
  const parts: string[] = [];
  for (const rdn of name)
    for (const atv of rdn) {
      const key = ATTR_NAMES[atv.type] ?? atv.type;
      const val = atv.value.anyValue ? '#' + toHex(new Uint8Array(atv.value.anyValue)) : atv.value.toString();
      parts.push(`${key}=${val}`);
    }
  return parts.join(', ');
}

// --- A minimal DER walker, used only to slice out exact raw bytes (tbs, names, SPKI) so that
// hashes and signatures are computed over what was really encoded, never a re-serialization.

/** One DER TLV: tag byte, and absolute offsets of its start, contents and end. */
export interface Tlv {
  readonly tag: number;
  readonly start: number;
  readonly contentStart: number;
  readonly end: number;
}

/**
 * Read the DER TLV at `pos` (single-byte tags, definite lengths up to 4 length octets).
 * @throws CodecError E_CODEC_DER
 */
export function readDerTlv(b: Uint8Array, pos: number, field = 'der'): Tlv {
  if (pos + 2 > b.length) throw new CodecError('E_CODEC_DER', 'truncated TLV', { offset: pos, field });
  const tag = b[pos]!;
  if ((tag & 0x1f) === 0x1f)
    throw new CodecError('E_CODEC_DER', 'multi-byte tags unsupported', { offset: pos, field });
  let len = b[pos + 1]!;
  let p = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || p + n > b.length)
      throw new CodecError('E_CODEC_DER', 'bad length encoding', { offset: pos + 1, field });
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + b[p + i]!;
    p += n;
  }
  if (p + len > b.length) throw new CodecError('E_CODEC_DER', 'length exceeds input', { offset: pos, field });
  return { tag, start: pos, contentStart: p, end: p + len };
}

interface DerParts {
  tbs: Uint8Array;
  issuer: Uint8Array;
  subject: Uint8Array;
  spki: Uint8Array;
}

function certificateParts(der: Uint8Array): DerParts {
  const cert = readDerTlv(der, 0, 'certificate');
  if (cert.tag !== 0x30) throw new CodecError('E_CODEC_DER', 'certificate is not a SEQUENCE', { offset: 0 });
  if (cert.end !== der.length)
    throw new CodecError('E_CODEC_TRAILING', 'trailing bytes after certificate', { offset: cert.end });
  const tbs = readDerTlv(der, cert.contentStart, 'tbsCertificate');
  const fields: Tlv[] = [];
  for (let p = tbs.contentStart; p < tbs.end && fields.length < 7;) {
    const t = readDerTlv(der, p, 'tbsCertificate');
    fields.push(t);
    p = t.end;
  }
  const off = fields[0]?.tag === 0xa0 ? 1 : 0; // explicit [0] version is optional
  const [issuer, subject, spki] = [fields[off + 2], fields[off + 4], fields[off + 5]];
  if (!issuer || !subject || !spki)
    throw new CodecError('E_CODEC_DER', 'tbsCertificate too short', {
      offset: tbs.start,
      field: 'tbsCertificate',
    });
  const slice = (t: Tlv): Uint8Array => der.subarray(t.start, t.end);
  return { tbs: slice(tbs), issuer: slice(issuer), subject: slice(subject), spki: slice(spki) };
}

// --- PEM

/** One PEM block. */
export interface PemBlock {
  readonly label: string;
  readonly der: Uint8Array;
  /** RFC 1421 headers (`Proc-Type`, `DEK-Info`) of traditional encrypted keys, if any */
  readonly headers?: Readonly<Record<string, string>>;
}

const PEM_RE = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/g;

/**
 * All PEM blocks in a text, in order. Text outside blocks is ignored (as OpenSSL does).
 * @throws ImakitError E_KEY_PARSE when a block's base64 is malformed
 */
export function pemDecode(text: string | Uint8Array): PemBlock[] {
  const s = typeof text === 'string' ? text : latin1(text);
  const out: PemBlock[] = [];
  for (const m of s.matchAll(PEM_RE)) {
    const label = m[1]!;
    let body = m[2]!;
    const headers: Record<string, string> = {};
    const hdrEnd = body.search(/\r?\n\r?\n/);
    if (hdrEnd >= 0 && /^[A-Za-z-]+:/.test(body)) {
      for (const line of body.slice(0, hdrEnd).split(/\r?\n/)) {
        const i = line.indexOf(':');
        if (i > 0) headers[line.slice(0, i).trim()] = line.slice(i + 1).trim();
      }
      body = body.slice(hdrEnd).trim();
    }
    const b64 = body.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0)
      throw new ImakitError('E_KEY_PARSE', `malformed base64 in PEM block '${label}'`, { token: label });
    const der = new Uint8Array(Buffer.from(b64, 'base64'));
    out.push(Object.freeze(Object.keys(headers).length > 0 ? { label, der, headers } : { label, der }));
  }
  return out;
}

/** PEM-encode DER bytes with 64-column base64 lines. */
export function pemEncode(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.length).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}${lines.length ? '\n' : ''}-----END ${label}-----\n`;
}

/** True when the bytes look like PEM text (contain a BEGIN line). */
export function looksLikePem(data: Uint8Array): boolean {
  return latin1(data.subarray(0, Math.min(data.length, 1 << 16))).includes('-----BEGIN ');
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
