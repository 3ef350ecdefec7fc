/**
 * A certificate builder for IMA/EVM signing keys and the CAs that vouch for them
 * (dependencies.md §3: @peculiar/asn1-x509 for the structure, node:crypto for RSA/ECDSA
 * signatures, src/core/sm2.ts for SM2-with-SM3).
 *
 * What the kernel needs, and why each extension is there:
 *  - subjectKeyIdentifier = SHA-1 of the subjectPublicKey BIT STRING (RFC 5280 method 1): the
 *    kernel matches a signature's 4-byte keyid against the TAIL of the SKID (formats.md §3.5,
 *    pitfall 13), and evmctl 1.4 computes keyids from the public key, so only a method-1 SKID
 *    makes both agree.
 *  - keyUsage digitalSignature (critical), and for a leaf NO keyCertSign and basicConstraints
 *    CA:FALSE: since 6.4 `.ima` is restricted by `restrict_link_by_digsig`, which refuses keys
 *    without digitalSignature, with CA, or with keyCertSign (crypto/asymmetric_keys/restrict.c).
 *  - authorityKeyIdentifier = the issuer's SKID: `restrict_link_by_signature` finds the issuer in
 *    the trusted keyrings by the certificate's authority ids.
 *  - A CA gets CA:TRUE + keyCertSign + cRLSign (+ digitalSignature unless asked not to): the
 *    `.machine` keyring's CA restriction (`restrict_link_by_ca`) requires CA and keyCertSign.
 *  - SM2 certificates are signed with SM2-with-SM3 (1.2.156.10197.1.501) over
 *    SM3(Z_A(ID 1234567812345678) ‖ tbsCertificate): the kernel's `cert_sig_digest_update`
 *    uses that default ID (dependencies.md §2b), as does `openssl verify -vfyopt distid:…`.
 */
import { createHash, createPublicKey, randomBytes, sign as nodeSign, type KeyObject } from 'node:crypto';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import {
  AlgorithmIdentifier,
  AttributeTypeAndValue,
  AttributeValue,
  AuthorityKeyIdentifier,
  BasicConstraints,
  Certificate as AsnCertificate,
  ExtendedKeyUsage,
  Extension,
  GeneralName,
  Extensions,
  KeyIdentifier,
  KeyUsage,
  Name,
  RelativeDistinguishedName,
  SubjectAlternativeName,
  SubjectKeyIdentifier,
  SubjectPublicKeyInfo,
  TBSCertificate,
  Validity,
  Version,
  id_ce_authorityKeyIdentifier,
  id_ce_basicConstraints,
  id_ce_extKeyUsage,
  id_ce_keyUsage,
  id_ce_subjectAltName,
  id_ce_subjectKeyIdentifier,
  id_kp_codeSigning,
} from '@peculiar/asn1-x509';
import { ImakitError } from '../../errors.ts';
import { pemEncode, parseCertificate, parseSpki, type Certificate } from './x509.ts';
import { SM2_SM3_SIG_OID, SM2_DEFAULT_ID, sm2SignMessage } from './sm2.ts';
import { loadPrivateKey } from './keys.ts';

/** Signature algorithm OIDs used here. */
export const SIG_OID = Object.freeze({
  sha256WithRSAEncryption: '1.2.840.113549.1.1.11',
  sha384WithRSAEncryption: '1.2.840.113549.1.1.12',
  sha512WithRSAEncryption: '1.2.840.113549.1.1.13',
  ecdsaWithSHA256: '1.2.840.10045.4.3.2',
  ecdsaWithSHA384: '1.2.840.10045.4.3.3',
  sm2WithSM3: SM2_SM3_SIG_OID,
});

/** A distinguished name: `CN=x, O=y` / `/O=y/CN=x` (openssl -subj style) or attribute pairs. */
export type DnSpec = string | readonly (readonly [string, string])[];

/** What to put in the certificate. */
export interface CertificateOptions {
  /** the certified public key (KeyObject, or DER SubjectPublicKeyInfo) */
  readonly publicKey: KeyObject | Uint8Array;
  readonly subject: DnSpec;
  /** the signer's private key (the CA's, or the subject's own for a self-signed certificate) */
  readonly issuerKey: KeyObject;
  /** the issuer's certificate; omit for self-signed (issuer = subject, AKID = own SKID) */
  readonly issuerCert?: Certificate;
  /** true: a CA (CA:TRUE, keyCertSign, cRLSign); false: an IMA/EVM signing key */
  readonly ca: boolean;
  /** basicConstraints pathLenConstraint for a CA */
  readonly pathLen?: number;
  /** add extendedKeyUsage codeSigning */
  readonly codeSigning?: boolean;
  /** subjectAltName DNS names and IP addresses (a TLS server certificate: clients match the host there) */
  readonly subjectAltName?: { readonly dns?: readonly string[]; readonly ip?: readonly string[] };
  /** validity start (default: now, whole seconds) */
  readonly notBefore?: Date;
  /** validity in days (default 3650) */
  readonly days?: number;
  /** serial number bytes (default 16 random bytes, positive) */
  readonly serial?: Uint8Array;
  /** hash for RSA/ECDSA signatures (default sha256; P-384 keys default to sha384) */
  readonly hash?: 'sha256' | 'sha384' | 'sha512';
  /** SM2 distinguishing ID for the certificate signature (default 1234567812345678) */
  readonly sm2Id?: string;
}

/** A built certificate. */
export interface BuiltCertificate {
  readonly der: Uint8Array;
  readonly pem: string;
  /** the parsed view (SKID, AKID, key usage...) */
  readonly cert: Certificate;
}

const ATTR_OIDS: Readonly<Record<string, string>> = Object.freeze({
  CN: '2.5.4.3',
  C: '2.5.4.6',
  L: '2.5.4.7',
  ST: '2.5.4.8',
  O: '2.5.4.10',
  OU: '2.5.4.11',
  SERIALNUMBER: '2.5.4.5',
  EMAILADDRESS: '1.2.840.113549.1.9.1',
  DC: '0.9.2342.19200300.100.1.25',
});

/**
 * Parse a DN spec into attribute pairs. Accepts `CN=a, O=b` (commas; `\,` escapes a comma) and
 * openssl's `/O=b/CN=a`.
 * @throws ImakitError E_CERT_BUILD for unknown attributes or empty values
 */
export function parseDn(spec: DnSpec): [string, string][] {
  let pairs: [string, string][];
  if (typeof spec !== 'string') pairs = spec.map(([k, v]) => [k, v]);
  else {
    const s = spec.trim();
    const parts = s.startsWith('/')
      ? s.slice(1).split('/')
      : s.split(/(?<!\\),/).map((p) => p.replace(/\\,/g, ','));
    pairs = parts
      .map((p) => p.trim())
      .filter((p) => p !== '')
      .map((p) => {
        const i = p.indexOf('=');
        if (i <= 0) throw new ImakitError('E_CERT_BUILD', `malformed name component '${p}' (want KEY=value)`);
        return [p.slice(0, i).trim(), p.slice(i + 1).trim()];
      });
  }
  if (pairs.length === 0) throw new ImakitError('E_CERT_BUILD', 'empty subject name');
  for (const [k, v] of pairs) {
    if (ATTR_OIDS[k.toUpperCase()] === undefined && !/^[0-9]+(\.[0-9]+)+$/.test(k))
      throw new ImakitError('E_CERT_BUILD', `unknown name attribute '${k}'`, { token: k });
    if (v === '') throw new ImakitError('E_CERT_BUILD', `empty value for '${k}'`, { token: k });
  }
  return pairs;
}

function buildName(spec: DnSpec): Name {
  return new Name(
    parseDn(spec).map(([k, v]) => {
      const type = ATTR_OIDS[k.toUpperCase()] ?? k;
      // openssl's default string_mask utf8only; C must be PrintableString, email IA5String (RFC 5280)
      const value =
        type === ATTR_OIDS.C
          ? new AttributeValue({ printableString: v })
          : type === ATTR_OIDS.EMAILADDRESS
            ? new AttributeValue({ ia5String: v })
            : new AttributeValue({ utf8String: v });
      return new RelativeDistinguishedName([new AttributeTypeAndValue({ type, value })]);
    }),
  );
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING value. */
export function skidMethod1(subjectPublicKey: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha1').update(subjectPublicKey).digest());
}

type Signer = { sigAlg: AlgorithmIdentifier; sign: (tbs: Uint8Array) => Uint8Array };

function signerFor(key: KeyObject, hash: CertificateOptions['hash'], sm2Id: string): Signer {
  if (key.type !== 'private') throw new TypeError('issuerKey must be a private key');
  const spki = parseSpki(new Uint8Array(createPublicKey(key).export({ type: 'spki', format: 'der' })));
  if (spki.keyAlg === 'rsa') {
    const h = hash ?? 'sha256';
    const oid = {
      sha256: SIG_OID.sha256WithRSAEncryption,
      sha384: SIG_OID.sha384WithRSAEncryption,
      sha512: SIG_OID.sha512WithRSAEncryption,
    }[h];
    // RFC 4055: RSA signature AlgorithmIdentifiers carry an explicit NULL parameter
    return {
      sigAlg: new AlgorithmIdentifier({ algorithm: oid, parameters: null }),
      sign: (tbs) => new Uint8Array(nodeSign(h, tbs, key)),
    };
  }
  if (spki.keyAlg === 'ec' && (spki.curve === 'P-256' || spki.curve === 'P-384')) {
    const h = hash ?? (spki.curve === 'P-384' ? 'sha384' : 'sha256');
    if (h === 'sha512')
      throw new ImakitError('E_KEY_TYPE', 'ECDSA certificates are signed with sha256 or sha384');
    const oid = h === 'sha384' ? SIG_OID.ecdsaWithSHA384 : SIG_OID.ecdsaWithSHA256;
    // RFC 5758: ecdsa-with-SHA* parameters are absent
    return {
      sigAlg: new AlgorithmIdentifier({ algorithm: oid }),
      sign: (tbs) => new Uint8Array(nodeSign(h, tbs, { key, dsaEncoding: 'der' })),
    };
  }
  if (spki.keyAlg === 'sm2') {
    const k = loadPrivateKey(new Uint8Array(key.export({ type: 'pkcs8', format: 'der' })));
    const d = k.d;
    const pub = k.publicKey.subjectPublicKey;
    if (d === undefined) throw new ImakitError('E_KEY_PARSE', 'SM2 key without a private scalar');
    return {
      sigAlg: new AlgorithmIdentifier({ algorithm: SIG_OID.sm2WithSM3 }),
      sign: (tbs) => sm2SignMessage(d, pub, tbs, sm2Id),
    };
  }
  throw new ImakitError(
    'E_KEY_TYPE',
    `cannot sign certificates with a ${spki.keyAlg} ${spki.curve ?? ''} key`,
  );
}

function ext(id: string, critical: boolean, value: unknown): Extension {
  return new Extension({ extnID: id, critical, extnValue: new OctetString(AsnConvert.serialize(value)) });
}

/** keyUsage as a minimal DER BIT STRING (bit 0 = digitalSignature ... bit 6 = cRLSign). */
function keyUsageExt(bits: { digitalSignature: boolean; keyCertSign: boolean; cRLSign: boolean }): KeyUsage {
  const byte = (bits.digitalSignature ? 0x80 : 0) | (bits.keyCertSign ? 0x04 : 0) | (bits.cRLSign ? 0x02 : 0);
  let unused = 0;
  while (unused < 7 && (byte & (1 << unused)) === 0) unused++;
  return new KeyUsage(new Uint8Array([byte]), unused);
}

function randomSerial(): Uint8Array {
  const s = new Uint8Array(randomBytes(16));
  s[0] = (s[0]! & 0x7f) | 0x01; // positive, and minimal (first byte non-zero)
  return s;
}

/**
 * Build and sign a certificate.
 * @throws ImakitError E_CERT_BUILD for bad names/options, E_KEY_TYPE for unsupported issuer keys,
 *   E_KEY_MISMATCH when issuerCert does not belong to issuerKey
 * @example
 *   const ca = buildCertificate({ publicKey: k.publicKey, issuerKey: k.privateKey, subject: 'CN=IMA CA', ca: true });
 *   const leaf = buildCertificate({ publicKey: l.publicKey, issuerKey: k.privateKey, issuerCert: ca.cert, subject: 'CN=IMA key', ca: false });
 */
export function buildCertificate(opts: CertificateOptions): BuiltCertificate {
  const spkiDer =
    opts.publicKey instanceof Uint8Array
      ? opts.publicKey
      : new Uint8Array(
          (opts.publicKey.type === 'private' ? createPublicKey(opts.publicKey) : opts.publicKey).export({
            type: 'spki',
            format: 'der',
          }),
        );
  const spkiInfo = parseSpki(spkiDer);
  if (spkiInfo.keyAlg === 'unknown') throw new ImakitError('E_KEY_TYPE', 'unsupported public key algorithm');
  const skid = skidMethod1(spkiInfo.subjectPublicKey);
  const signer = signerFor(opts.issuerKey, opts.hash, opts.sm2Id ?? SM2_DEFAULT_ID);

  let issuerName: Name;
  let akid: Uint8Array;
  if (opts.issuerCert) {
    const issuerSpki = new Uint8Array(
      createPublicKey(opts.issuerKey).export({ type: 'spki', format: 'der' }),
    );
    if (!Buffer.from(issuerSpki).equals(Buffer.from(opts.issuerCert.spkiDer)))
      throw new ImakitError('E_KEY_MISMATCH', 'the issuer private key does not match the issuer certificate');
    if (opts.issuerCert.basicConstraints?.ca !== true)
      throw new ImakitError('E_CERT_BUILD', 'the issuer certificate is not a CA (basicConstraints CA:FALSE)');
    issuerName = AsnConvert.parse(opts.issuerCert.subjectDer, Name);
    akid = opts.issuerCert.skid ?? skidMethod1(opts.issuerCert.subjectPublicKey);
  } else {
    const own = new Uint8Array(createPublicKey(opts.issuerKey).export({ type: 'spki', format: 'der' }));
    if (!Buffer.from(own).equals(Buffer.from(spkiDer)))
      throw new ImakitError('E_CERT_BUILD', 'self-signed certificate: issuerKey must be the subject key');
    issuerName = buildName(opts.subject);
    akid = skid;
  }

  const days = opts.days ?? 3650;
  if (!Number.isInteger(days) || days < 1 || days > 100000)
    throw new ImakitError('E_CERT_BUILD', `validity days must be 1..100000, got ${days}`);
  const notBefore = new Date(opts.notBefore ?? new Date());
  notBefore.setUTCMilliseconds(0);
  const notAfter = new Date(notBefore.getTime() + days * 86400_000);
  const serial = opts.serial ?? randomSerial();
  if (serial.length === 0 || serial.length > 20 || (serial[0]! & 0x80) !== 0)
    throw new ImakitError('E_CERT_BUILD', 'serial must be 1..20 bytes and positive');

  const extensions: Extension[] = [
    ext(id_ce_basicConstraints, true, new BasicConstraints(opts.ca ? pathLen(opts.pathLen) : {})),
    ext(
      id_ce_keyUsage,
      true,
      keyUsageExt({ digitalSignature: true, keyCertSign: opts.ca, cRLSign: opts.ca }),
    ),
    ext(id_ce_subjectKeyIdentifier, false, new SubjectKeyIdentifier(skid)),
    ext(
      id_ce_authorityKeyIdentifier,
      false,
      new AuthorityKeyIdentifier({ keyIdentifier: new KeyIdentifier(akid) }),
    ),
  ];
  if (opts.codeSigning)
    extensions.push(ext(id_ce_extKeyUsage, false, new ExtendedKeyUsage([id_kp_codeSigning])));
  const san = [
    ...(opts.subjectAltName?.dns ?? []).map((d) => new GeneralName({ dNSName: d })),
    ...(opts.subjectAltName?.ip ?? []).map((ip) => new GeneralName({ iPAddress: ip })),
  ];
  if (san.length > 0) extensions.push(ext(id_ce_subjectAltName, false, new SubjectAlternativeName(san)));

  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: serial.slice().buffer,
    signature: signer.sigAlg,
    issuer: issuerName,
    validity: new Validity({ notBefore, notAfter }),
    subject: buildName(opts.subject),
    subjectPublicKeyInfo: AsnConvert.parse(spkiDer, SubjectPublicKeyInfo),
    extensions: new Extensions(extensions),
  });
  const tbsDer = new Uint8Array(AsnConvert.serialize(tbs));
  const signature = signer.sign(tbsDer);
  const cert = new AsnCertificate({
    tbsCertificate: tbs,
    signatureAlgorithm: signer.sigAlg,
    signatureValue: signature.slice().buffer,
  });
  const der = new Uint8Array(AsnConvert.serialize(cert));
  const parsed = parseCertificate(der);
  // The signature was made over tbsDer; the re-serialized certificate must contain exactly it.
  if (!Buffer.from(parsed.tbsDer).equals(Buffer.from(tbsDer)))
    throw new ImakitError('E_INTERNAL', 'tbsCertificate changed on serialization');
  return Object.freeze({ der, pem: pemEncode('CERTIFICATE', der), cert: parsed });
}

function pathLen(n: number | undefined): { cA: boolean; pathLenConstraint?: number } {
  if (n === undefined) return { cA: true };
  if (!Number.isInteger(n) || n < 0)
    throw new ImakitError('E_CERT_BUILD', 'pathLen must be a non-negative integer');
  return { cA: true, pathLenConstraint: n };
}
