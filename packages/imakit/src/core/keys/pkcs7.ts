/**
 * PKCS#7 / CMS SignedData as the kernel reads appended module signatures (formats.md §1.6
 * `modsig`; crypto/asymmetric_keys/pkcs7_parser.c, pkcs7.asn1): the digest algorithm, the signer
 * identifier (issuer + serial, or subjectKeyIdentifier when sign-file ran with `-k`), the signed
 * attributes (the exact bytes the signature covers, and the messageDigest), the signature
 * algorithm and the signature bytes.
 *
 * Parsing never verifies (see modsig.ts). The structure is decoded with @peculiar/asn1-cms; the
 * bytes a signature or a key lookup depends on (the signer's issuer Name, the signed attributes)
 * are sliced from the input by a definite-length DER walk, never re-serialized, because the
 * kernel hashes and compares what was encoded (pkcs7_digest hashes `authattrs` as received,
 * asymmetric_key_generate_id uses the raw issuer and serial).
 */
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  ContentInfo,
  SignedData,
  id_data,
  id_signedData,
  id_messageDigest,
  id_contentType,
} from '@peculiar/asn1-cms';
import { CodecError } from '../../errors.ts';
import { assertBytes } from '../bytes/bytes.ts';
import { findHashAlgo, type HashAlgo } from '../hash/hash-algo.ts';
import { readDerTlv, type Tlv } from './x509.ts';

/** Digest algorithm OIDs the kernel's PKCS#7 parser knows (pkcs7_sig_note_digest_algo), by kernel name. */
const DIGEST_OIDS: Readonly<Record<string, string>> = Object.freeze({
  '1.2.840.113549.2.4': 'md4',
  '1.2.840.113549.2.5': 'md5',
  '1.3.14.3.2.26': 'sha1',
  '2.16.840.1.101.3.4.2.4': 'sha224',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
  '2.16.840.1.101.3.4.2.8': 'sha3-256',
  '2.16.840.1.101.3.4.2.9': 'sha3-384',
  '2.16.840.1.101.3.4.2.10': 'sha3-512',
  '1.2.156.10197.1.401': 'sm3',
});

/** The public-key scheme a SignerInfo's signatureAlgorithm names (pkcs7_sig_note_pkey_algo). */
export type Pkcs7SigScheme = 'rsa' | 'ecdsa' | 'sm2' | 'unknown';

const SIG_OIDS: Readonly<Record<string, Pkcs7SigScheme>> = Object.freeze({
  // rsaEncryption: what OpenSSL CMS and sign-file write for RSA; the kernel maps it to pkcs1
  '1.2.840.113549.1.1.1': 'rsa',
  // sha*WithRSAEncryption: not accepted by every kernel's parser, but unambiguous PKCS#1 v1.5
  '1.2.840.113549.1.1.5': 'rsa',
  '1.2.840.113549.1.1.11': 'rsa',
  '1.2.840.113549.1.1.12': 'rsa',
  '1.2.840.113549.1.1.13': 'rsa',
  '1.2.840.113549.1.1.14': 'rsa',
  '1.2.840.10045.4.1': 'ecdsa',
  '1.2.840.10045.4.3.1': 'ecdsa',
  '1.2.840.10045.4.3.2': 'ecdsa',
  '1.2.840.10045.4.3.3': 'ecdsa',
  '1.2.840.10045.4.3.4': 'ecdsa',
  '1.2.156.10197.1.501': 'sm2',
});

/** How a SignerInfo names its signer (RFC 5652 SignerIdentifier). */
export type Pkcs7SignerId =
  | {
      readonly kind: 'issuer-serial';
      /** exact DER of the issuer Name, as the kernel compares it */
      readonly issuerDer: Uint8Array;
      /** serial number INTEGER contents (with any leading 0x00), as the kernel compares it */
      readonly serial: Uint8Array;
    }
  | { readonly kind: 'skid'; readonly skid: Uint8Array };

/** Signed (authenticated) attributes of one signer. */
export interface Pkcs7SignedAttrs {
  /**
   * The bytes the signature covers: the `[0] IMPLICIT` encoding with its tag rewritten to
   * SET (0x31), as RFC 5652 §5.4 and pkcs7_digest() hash them.
   */
  readonly der: Uint8Array;
  /** the messageDigest attribute value (the content digest), if present */
  readonly messageDigest?: Uint8Array;
  /** the contentType attribute value OID, if present */
  readonly contentType?: string;
  /** every attribute's type OID, in encoded order */
  readonly types: readonly string[];
}

/** One SignerInfo. */
export interface Pkcs7Signer {
  readonly version: number;
  readonly sid: Pkcs7SignerId;
  readonly digestAlgoOid: string;
  /** the kernel hash algorithm of digestAlgoOid, undefined when the kernel knows no such OID */
  readonly digestAlgo?: HashAlgo;
  readonly signedAttrs?: Pkcs7SignedAttrs;
  readonly signatureAlgoOid: string;
  readonly scheme: Pkcs7SigScheme;
  /** signature value: RSA PKCS#1 v1.5 block, or DER SEQUENCE{r,s} for ECDSA/SM2 */
  readonly signature: Uint8Array;
}

/** A parsed (NOT verified) PKCS#7 SignedData ContentInfo. */
export interface Pkcs7 {
  readonly der: Uint8Array;
  readonly version: number;
  /** encapContentInfo.eContentType (pkcs7-data for module signatures) */
  readonly contentType: string;
  /** true when the content is not embedded (sign-file always detaches it) */
  readonly detached: boolean;
  /** number of certificates carried in the message (sign-file: 0) */
  readonly certificates: number;
  readonly signers: readonly Pkcs7Signer[];
}

/** Hard cap on a PKCS#7 message (the kernel reads the whole file; 64 MiB is far above any module). */
export const PKCS7_MAX_SIZE = 64 * 1024 * 1024;

function der(field: string, detail: string, offset: number): CodecError {
  return new CodecError('E_CODEC_DER', detail, { offset, field });
}

function expectTag(b: Uint8Array, pos: number, tag: number, field: string): Tlv {
  const t = readDerTlv(b, pos, field);
  if (t.tag !== tag)
    throw der(field, `expected tag 0x${tag.toString(16)}, found 0x${t.tag.toString(16)}`, pos);
  return t;
}

/** Raw slices the walk extracts from one SignerInfo. */
interface RawSigner {
  issuerDer?: Uint8Array;
  signedAttrs?: Uint8Array;
}

/**
 * Definite-length DER walk of ContentInfo → SignedData → signerInfos, checking the outline and
 * collecting the raw slices. Lengths are checked against the input before anything is sliced.
 */
function walk(b: Uint8Array): RawSigner[] {
  const ci = expectTag(b, 0, 0x30, 'ContentInfo');
  if (ci.end !== b.length)
    throw new CodecError('E_CODEC_TRAILING', `${b.length - ci.end} bytes after the PKCS#7 message`, {
      offset: ci.end,
      field: 'ContentInfo',
    });
  const oid = expectTag(b, ci.contentStart, 0x06, 'contentType');
  const explicit = expectTag(b, oid.end, 0xa0, 'content');
  const sd = expectTag(b, explicit.contentStart, 0x30, 'SignedData');
  let p = sd.contentStart;
  const version = expectTag(b, p, 0x02, 'SignedData.version');
  const algs = expectTag(b, version.end, 0x31, 'digestAlgorithms');
  const encap = expectTag(b, algs.end, 0x30, 'encapContentInfo');
  p = encap.end;
  let t = readDerTlv(b, p, 'SignedData');
  if (t.tag === 0xa0) t = readDerTlv(b, (p = t.end), 'SignedData'); // certificates
  if (t.tag === 0xa1) t = readDerTlv(b, (p = t.end), 'SignedData'); // crls
  if (t.tag !== 0x31) throw der('signerInfos', 'signerInfos SET missing', p);
  if (t.end !== sd.end) throw der('SignedData', 'bytes after signerInfos', t.end);
  const out: RawSigner[] = [];
  for (let q = t.contentStart; q < t.end;) {
    const si = expectTag(b, q, 0x30, 'SignerInfo');
    const raw: RawSigner = {};
    const v = expectTag(b, si.contentStart, 0x02, 'SignerInfo.version');
    const sid = readDerTlv(b, v.end, 'SignerInfo.sid');
    if (sid.tag === 0x30)
      raw.issuerDer = b.subarray(...slice(expectTag(b, sid.contentStart, 0x30, 'issuer')));
    else if (sid.tag !== 0x80)
      throw der('SignerInfo.sid', 'neither issuerAndSerialNumber nor [0] SKID', sid.start);
    const dalg = expectTag(b, sid.end, 0x30, 'SignerInfo.digestAlgorithm');
    const next = readDerTlv(b, dalg.end, 'SignerInfo');
    if (next.tag === 0xa0) raw.signedAttrs = b.subarray(next.start, next.end);
    out.push(raw);
    q = si.end;
  }
  return out;
}

function slice(t: Tlv): [number, number] {
  return [t.start, t.end];
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Parse a DER PKCS#7/CMS SignedData ContentInfo (what sign-file appends, and the `modsig` field).
 * @throws CodecError E_CODEC_DER (malformed, not SignedData, indefinite lengths), E_CODEC_TRAILING,
 *   E_CODEC_TOO_LARGE
 * @example parsePkcs7(split.pkcs7).signers[0].sid // {kind: 'issuer-serial', ...}
 */
export function parsePkcs7(bytes: Uint8Array): Pkcs7 {
  assertBytes(bytes, undefined, 'PKCS#7 message');
  if (bytes.length > PKCS7_MAX_SIZE)
    throw new CodecError('E_CODEC_TOO_LARGE', `PKCS#7 message of ${bytes.length} bytes`, {
      offset: 0,
      field: 'ContentInfo',
    });
  const rawSigners = walk(bytes);
  let ci: ContentInfo;
  let sd: SignedData;
  try {
    ci = AsnConvert.parse(bytes, ContentInfo);
  } catch (e) {
    throw der('ContentInfo', `not a CMS ContentInfo: ${errText(e)}`, 0);
  }
  if (ci.contentType !== id_signedData)
    throw der('contentType', `content type ${ci.contentType} is not signedData`, 0);
  try {
    sd = AsnConvert.parse(ci.content, SignedData);
  } catch (e) {
    throw der('SignedData', `malformed SignedData: ${errText(e)}`, 0);
  }
  if (sd.signerInfos.length !== rawSigners.length)
    throw der('signerInfos', 'signer count differs between decoders', 0);
  const signers = sd.signerInfos.map((si, i): Pkcs7Signer => {
    const raw = rawSigners[i]!;
    let sid: Pkcs7SignerId;
    if (si.sid.issuerAndSerialNumber && raw.issuerDer)
      sid = {
        kind: 'issuer-serial',
        issuerDer: raw.issuerDer,
        serial: new Uint8Array(si.sid.issuerAndSerialNumber.serialNumber),
      };
    else if (si.sid.subjectKeyIdentifier)
      sid = { kind: 'skid', skid: new Uint8Array(si.sid.subjectKeyIdentifier.buffer) };
    else throw der('SignerInfo.sid', `signer ${i}: unrecognised SignerIdentifier`, 0);
    const digestAlgoOid = si.digestAlgorithm.algorithm;
    const digestName = DIGEST_OIDS[digestAlgoOid];
    const digestAlgo = digestName ? findHashAlgo(digestName) : undefined;
    const signatureAlgoOid = si.signatureAlgorithm.algorithm;
    const out: {
      -readonly [K in keyof Pkcs7Signer]: Pkcs7Signer[K];
    } = {
      version: si.version,
      sid,
      digestAlgoOid,
      signatureAlgoOid,
      scheme: SIG_OIDS[signatureAlgoOid] ?? 'unknown',
      signature: new Uint8Array(si.signature.buffer),
    };
    if (digestAlgo) out.digestAlgo = digestAlgo;
    if (si.signedAttrs) {
      if (!raw.signedAttrs)
        throw der('signedAttrs', `signer ${i}: signed attributes not found by the walk`, 0);
      const set = Uint8Array.from(raw.signedAttrs);
      set[0] = 0x31; // RFC 5652 §5.4: the [0] IMPLICIT tag is replaced by SET OF for hashing
      const attrs: { -readonly [K in keyof Pkcs7SignedAttrs]: Pkcs7SignedAttrs[K] } = {
        der: set,
        types: Object.freeze(si.signedAttrs.map((a) => a.attrType)),
      };
      for (const a of si.signedAttrs) {
        const v = a.attrValues;
        if (a.attrType === id_messageDigest || a.attrType === id_contentType) {
          if (v.length !== 1) throw der('signedAttrs', `signer ${i}: ${a.attrType} must have one value`, 0);
          const tlv = new Uint8Array(v[0]!);
          const inner = readDerTlv(tlv, 0, a.attrType);
          if (inner.end !== tlv.length)
            throw der('signedAttrs', `signer ${i}: trailing bytes in ${a.attrType}`, 0);
          if (a.attrType === id_messageDigest) {
            if (inner.tag !== 0x04)
              throw der('signedAttrs', `signer ${i}: messageDigest is not an OCTET STRING`, 0);
            attrs.messageDigest = tlv.slice(inner.contentStart, inner.end);
          } else {
            if (inner.tag !== 0x06) throw der('signedAttrs', `signer ${i}: contentType is not an OID`, 0);
            attrs.contentType = oidText(tlv.subarray(inner.contentStart, inner.end));
          }
        }
      }
      out.signedAttrs = Object.freeze(attrs);
    }
    return Object.freeze(out);
  });
  return Object.freeze({
    der: bytes,
    version: sd.version,
    contentType: sd.encapContentInfo.eContentType,
    detached: sd.encapContentInfo.eContent === undefined,
    certificates: sd.certificates?.length ?? 0,
    signers: Object.freeze(signers),
  });
}

/** Dotted text of OID contents (base-128 arcs). @throws CodecError E_CODEC_DER */
function oidText(c: Uint8Array): string {
  const arcs: number[] = [];
  let v = 0;
  for (let i = 0; i < c.length; i++) {
    if (v > 2 ** 45) throw der('oid', 'OID arc too large', i);
    v = v * 128 + (c[i]! & 0x7f);
    if ((c[i]! & 0x80) === 0) {
      if (arcs.length === 0) arcs.push(v < 80 ? Math.floor(v / 40) : 2, v < 80 ? v % 40 : v - 80);
      else arcs.push(v);
      v = 0;
    } else if (i === c.length - 1) throw der('oid', 'truncated OID arc', i);
  }
  if (arcs.length === 0) throw der('oid', 'empty OID', 0);
  return arcs.join('.');
}

/** True when the message's content type is pkcs7-data, as module signatures must be. */
export function isDataContent(p: Pkcs7): boolean {
  return p.contentType === id_data;
}
