/**
 * EK certificate chain validation: from the EK certificate (read from the TPM's NV, untrusted) to a
 * trust anchor among a set of vendor CA certificates (RFC 5280 §6 path validation, the parts that
 * decide a TPM's EK: names, signatures, validity, CA constraints, path length).
 *
 * Anchors are the self-signed certificates of the set; the others are candidate intermediates, as
 * `openssl verify -CAfile roots -untrusted intermediates` treats them. A set with only an
 * intermediate CA therefore does not validate (the verdict says whose issuer was missing).
 *
 * Establishes, on pass: the certificate was issued, through the chain named, by a CA in the set, and
 * every certificate of the chain was valid at `at`. Does NOT establish: revocation (no CRL or OCSP
 * is consulted), that the certificate's key is the TPM's EK (compare with `ekCertMatchesPublic`),
 * TCG EK-profile details (SAN TPM manufacturer/model, EKU 2.23.133.8.1) beyond reporting them.
 */
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { bytesEqual } from '../bytes/bytes.ts';
import type { Certificate } from '../keys/x509.ts';
import { tpmPublicToKeyObject, type TpmtPublic } from './public.ts';

/** Longest chain followed (EK → intermediates → root). */
export const MAX_CHAIN_DEPTH = 8;

/** Every reason a chain fails, each its own code. */
export type ChainFailureCode =
  | 'no-issuer'
  | 'bad-signature'
  | 'unsupported-signature'
  | 'expired'
  | 'not-yet-valid'
  | 'issuer-not-ca'
  | 'issuer-cannot-sign-certificates'
  | 'path-length-exceeded'
  | 'too-deep';

export interface ChainFailure {
  readonly code: ChainFailureCode;
  /** the certificate the failure is about (subject, serial) */
  readonly subject: string;
  readonly serialHex: string;
  readonly detail: string;
}

/** One certificate of a chain, as reported. */
export interface ChainLink {
  readonly subject: string;
  readonly issuer: string;
  readonly serialHex: string;
  readonly notBefore: string;
  readonly notAfter: string;
}

export interface EkChainVerdict {
  readonly status: 'pass' | 'fail';
  /** the failure of the most complete path tried, null on pass */
  readonly code: ChainFailureCode | null;
  readonly detail: string;
  /** EK certificate first, anchor last (on pass); the longest path tried on failure */
  readonly chain: readonly ChainLink[];
  /** every failure met while trying candidate issuers */
  readonly failures: readonly ChainFailure[];
  readonly at: string;
  readonly notEstablished: readonly string[];
}

/** Signature algorithms (X.509 signatureAlgorithm OIDs) → node:crypto digest names. */
const SIG_ALGS: Readonly<Record<string, string>> = Object.freeze({
  '1.2.840.113549.1.1.5': 'sha1',
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.10045.4.1': 'sha1',
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
});

const NOT_ESTABLISHED = Object.freeze([
  'revocation: no CRL or OCSP was consulted',
  "that the certificate's key is the TPM's EK (compare the certificate with the EK's public area)",
  'TCG EK profile details (TPM manufacturer, model and version in the SAN; the EK certificate EKU)',
]);

const isSelfSigned = (c: Certificate): boolean =>
  bytesEqual(c.subjectDer, c.issuerDer) &&
  (c.skid === undefined || c.akid === undefined || bytesEqual(c.skid, c.akid));

const link = (c: Certificate): ChainLink =>
  Object.freeze({
    subject: c.subject,
    issuer: c.issuer,
    serialHex: c.serialHex,
    notBefore: c.notBefore.toISOString(),
    notAfter: c.notAfter.toISOString(),
  });

function failure(c: Certificate, code: ChainFailureCode, detail: string): ChainFailure {
  return Object.freeze({ code, subject: c.subject, serialHex: c.serialHex, detail });
}

/** `child` signed by `issuer`'s key? undefined when the algorithm is not one imakit checks. */
function signedBy(child: Certificate, issuer: Certificate): boolean | undefined {
  const digest = SIG_ALGS[child.sigAlgOid];
  if (digest === undefined) return undefined;
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(issuer.spkiDer), format: 'der', type: 'spki' });
  } catch {
    return false;
  }
  try {
    return verify(digest, child.tbsDer, key, child.signature);
  } catch {
    return false;
  }
}

function validityFailure(c: Certificate, at: Date): ChainFailure | undefined {
  if (at.getTime() < c.notBefore.getTime())
    return failure(c, 'not-yet-valid', `${c.subject}: not valid before ${c.notBefore.toISOString()}`);
  if (at.getTime() > c.notAfter.getTime())
    return failure(c, 'expired', `${c.subject}: expired ${c.notAfter.toISOString()}`);
  return undefined;
}

/** What stops `issuer` from issuing `child` at depth `below` (CA certificates under it). */
function issuerFailure(child: Certificate, issuer: Certificate, below: number): ChainFailure | undefined {
  if (issuer.basicConstraints?.ca !== true)
    return failure(
      issuer,
      'issuer-not-ca',
      `${issuer.subject} issued ${child.subject} but is not a CA (basicConstraints)`,
    );
  if (issuer.keyUsage !== undefined && !issuer.keyUsage.keyCertSign)
    return failure(
      issuer,
      'issuer-cannot-sign-certificates',
      `${issuer.subject}: keyUsage lacks keyCertSign`,
    );
  const pathLen = issuer.basicConstraints.pathLen;
  if (pathLen !== undefined && below > pathLen)
    return failure(
      issuer,
      'path-length-exceeded',
      `${issuer.subject}: pathLenConstraint ${pathLen}, but ${below} CA certificate(s) below it`,
    );
  const ok = signedBy(child, issuer);
  if (ok === undefined)
    return failure(
      child,
      'unsupported-signature',
      `${child.subject}: signature algorithm ${child.sigAlgOid} not checked`,
    );
  if (!ok)
    return failure(
      child,
      'bad-signature',
      `${child.subject}: signature does not verify with ${issuer.subject}'s key`,
    );
  return undefined;
}

/**
 * Validate the EK certificate's chain to an anchor of `cas`.
 * @param ek the EK certificate (parsed, untrusted)
 * @param cas vendor CA certificates: self-signed ones are anchors, the rest intermediates
 * @param at the time validity is judged at (the caller's clock)
 * @returns a verdict naming the chain on pass, and why the most complete path failed otherwise
 * @throws TypeError when `at` is not a valid Date
 * @example
 * const v = verifyEkCertChain(parseCertificate(ekDer), caDir.map(parseCertificate), new Date());
 * if (v.status !== 'pass') console.error(v.code, v.detail);
 */
export function verifyEkCertChain(ek: Certificate, cas: readonly Certificate[], at: Date): EkChainVerdict {
  if (!(at instanceof Date) || Number.isNaN(at.getTime()))
    throw new TypeError('verifyEkCertChain: at is not a valid Date');
  const failures: ChainFailure[] = [];
  let best: { path: Certificate[]; failure: ChainFailure } | undefined;
  const note = (path: Certificate[], f: ChainFailure): void => {
    failures.push(f);
    if (best === undefined || path.length > best.path.length) best = { path, failure: f };
  };

  // depth-first over candidate issuers (same name; same key id when both sides carry one)
  const walk = (path: Certificate[]): Certificate[] | undefined => {
    const cur = path[path.length - 1]!;
    const v = validityFailure(cur, at);
    if (v) {
      note(path, v);
      return undefined;
    }
    if (path.length > 1 && isSelfSigned(cur) && cas.includes(cur)) return path;
    if (path.length > MAX_CHAIN_DEPTH) {
      note(
        path,
        failure(cur, 'too-deep', `more than ${MAX_CHAIN_DEPTH} certificates without reaching an anchor`),
      );
      return undefined;
    }
    const candidates = cas.filter(
      (c) =>
        bytesEqual(c.subjectDer, cur.issuerDer) &&
        !path.includes(c) &&
        (cur.akid === undefined || c.skid === undefined || bytesEqual(cur.akid, c.skid)),
    );
    if (candidates.length === 0) {
      note(
        path,
        failure(
          cur,
          'no-issuer',
          `no CA certificate named ${cur.issuer} (the issuer of ${cur.subject}) in the set`,
        ),
      );
      return undefined;
    }
    for (const issuer of candidates) {
      const below = path.length - 1; // CA certificates between the EK certificate and this issuer
      const f = issuerFailure(cur, issuer, below);
      if (f) {
        note([...path, issuer], f);
        continue;
      }
      const done = walk([...path, issuer]);
      if (done) return done;
    }
    return undefined;
  };

  const chain = walk([ek]);
  const atIso = at.toISOString();
  if (chain)
    return Object.freeze({
      status: 'pass',
      code: null,
      detail: `${ek.subject} chains to ${chain[chain.length - 1]!.subject} (${chain.length} certificates)`,
      chain: Object.freeze(chain.map(link)),
      failures: Object.freeze([]),
      at: atIso,
      notEstablished: NOT_ESTABLISHED,
    });
  const b = best!;
  return Object.freeze({
    status: 'fail',
    code: b.failure.code,
    detail: b.failure.detail,
    chain: Object.freeze(b.path.map(link)),
    failures: Object.freeze(failures),
    at: atIso,
    notEstablished: NOT_ESTABLISHED,
  });
}

/**
 * True when the certificate certifies this TPM key: its SubjectPublicKeyInfo is the same public key
 * as the EK's public area (RSA modulus and exponent, or ECC curve and point).
 */
export function ekCertMatchesPublic(cert: Certificate, ek: TpmtPublic): boolean {
  let a: KeyObject;
  try {
    a = createPublicKey({ key: Buffer.from(cert.spkiDer), format: 'der', type: 'spki' });
  } catch {
    return false;
  }
  const b = tpmPublicToKeyObject(ek);
  return a.equals(b);
}
