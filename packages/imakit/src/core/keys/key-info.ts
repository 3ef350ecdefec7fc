/**
 * `imakit keys info`: what a key or certificate is, the key id the kernel will match, and whether
 * a given kernel would take it for IMA or EVM — with the reason when not.
 *
 * The kernel facts are kept here as a small table (src/kernel/profiles.ts did not exist when this
 * was written; move them there once it does):
 *  - RSA: every kernel (pkcs1).
 *  - ECDSA (x962): asymmetric-key verification since 5.13 (P-192, P-256), P-384 since 5.15,
 *    P-521 since 6.10. Debian's 6.1 config refuses ECDSA certificates (real-kernel.md §2.3).
 *  - SM2: 5.10 to 6.10 only; removed upstream in 6.11 (dependencies.md §2b, pitfall 15). Debian's
 *    6.1 is built without it.
 *  - `.ima`/`.evm` (CONFIG_INTEGRITY_TRUSTED_KEYRING=y) accept only certificates vouched for by a
 *    built-in/secondary trusted key; since 6.4 `.ima` also requires keyUsage digitalSignature and
 *    refuses CA:TRUE and keyCertSign (`restrict_link_by_digsig`). `_ima`/`_evm` (Debian) have no
 *    restriction.
 *  - The kernel matches a signature's 4-byte keyid against the tail of the certificate's SKID
 *    (formats.md §3.5, pitfall 13); evmctl 1.4 computes keyids from SHA-1 of the public key, so the
 *    two agree only for RFC 5280 method-1 SKIDs.
 */
import { createHash } from 'node:crypto';
import { ImakitError } from '../../errors.ts';
import { bytesEqual, toHex } from '../bytes/bytes.ts';
import { formatKeyId, keyIdFromSubjectPublicKey, keyIdOfCertificate } from './keyid.ts';
import { containsPrivateKey, loadPrivateKey, loadPublicKey, type PublicKey } from './keys.ts';
import type { Certificate, CurveName } from './x509.ts';
import { SM2_SM3_SIG_OID } from './sm2.ts';

/** What one kernel can do with keys (see the file comment for sources). */
export interface KernelKeyProfile {
  readonly id: string;
  readonly description: string;
  readonly ecdsaCurves: readonly CurveName[];
  readonly sm2: boolean;
  /** keyring names IMA / EVM search */
  readonly imaKeyring: string;
  readonly evmKeyring: string;
  /** `.ima` restricted to trusted-key-signed certificates */
  readonly trustedKeyring: boolean;
  /** `restrict_link_by_digsig` key-usage checks (6.4+) */
  readonly digsigUsage: boolean;
  /** kernel version as major * 1000 + minor (undefined: current mainline) */
  readonly version?: number;
  /** a distribution kernel whose configuration leaves out what its version could have */
  readonly distro?: string;
}

const DEBIAN_61: KernelKeyProfile = Object.freeze({
  id: 'debian-6.1',
  description: 'Debian 12 kernel 6.1 (CONFIG_INTEGRITY_TRUSTED_KEYRING=n; no ECDSA, no SM2)',
  ecdsaCurves: [],
  sm2: false,
  imaKeyring: '_ima',
  evmKeyring: '_evm',
  trustedKeyring: false,
  digsigUsage: false,
  version: 6001,
  distro: "Debian's 6.1 kernel",
});
const MAINLINE: KernelKeyProfile = Object.freeze({
  id: 'mainline',
  description: 'current mainline (≥ 6.11) with CONFIG_INTEGRITY_TRUSTED_KEYRING=y',
  ecdsaCurves: ['P-192', 'P-256', 'P-384', 'P-521'] as CurveName[],
  sm2: false,
  imaKeyring: '.ima',
  evmKeyring: '.evm',
  trustedKeyring: true,
  digsigUsage: true,
});

/** Built-in profiles. `linux-M.m` names are also accepted (see {@link kernelKeyProfile}). */
export const KEY_PROFILES: Readonly<Record<string, KernelKeyProfile>> = Object.freeze({
  'debian-6.1': DEBIAN_61,
  mainline: MAINLINE,
});

/**
 * A profile by id: `debian-6.1`, `mainline`, or `linux-M.m` (a vanilla kernel of that version with
 * the trusted `.ima` keyring).
 * @throws ImakitError E_PROFILE_UNKNOWN
 */
export function kernelKeyProfile(id: string): KernelKeyProfile {
  const p = KEY_PROFILES[id];
  if (p) return p;
  const m = /^linux-([0-9]+)\.([0-9]+)$/.exec(id);
  if (!m)
    throw new ImakitError(
      'E_PROFILE_UNKNOWN',
      `unknown kernel profile '${id}' (debian-6.1, mainline, linux-M.m)`,
      { token: id },
    );
  const v = Number(m[1]) * 1000 + Number(m[2]);
  const at = (maj: number, min: number): boolean => v >= maj * 1000 + min;
  const curves: CurveName[] = [];
  if (at(5, 13)) curves.push('P-192', 'P-256');
  if (at(5, 15)) curves.push('P-384');
  if (at(6, 10)) curves.push('P-521');
  return Object.freeze({
    id,
    description: `vanilla Linux ${m[1]}.${m[2]} with CONFIG_INTEGRITY_TRUSTED_KEYRING=y`,
    ecdsaCurves: curves,
    sm2: at(5, 10) && !at(6, 11),
    imaKeyring: '.ima',
    evmKeyring: '.evm',
    trustedKeyring: true,
    digsigUsage: at(6, 4),
    version: v,
  });
}

/** Would the kernel use this key for IMA (or EVM)? */
export interface Acceptance {
  /** true / false; 'unknown' when it depends on something not given (e.g. the CA in the kernel) */
  readonly accepted: boolean | 'unknown';
  readonly keyring: string;
  /** why not (empty when accepted) */
  readonly reasons: readonly string[];
  /** conditions and warnings that do not decide by themselves */
  readonly notes: readonly string[];
}

/** Everything `keys info` reports. */
export interface KeyInfo {
  readonly kind: 'certificate' | 'public-key' | 'private-key';
  readonly alg: 'rsa' | 'ec' | 'sm2';
  readonly bits: number;
  readonly curve?: CurveName;
  /** the v2 key id the kernel matches (`%08x`) */
  readonly keyid: string;
  readonly keyidSource: 'skid' | 'spki-hash';
  /** evmctl 1.4's computed key id (SHA-1 of the public key) */
  readonly spkiKeyid: string;
  readonly skid?: string;
  readonly skidIsMethod1?: boolean;
  readonly akid?: string;
  readonly subject?: string;
  readonly issuer?: string;
  readonly serial?: string;
  readonly notBefore?: string;
  readonly notAfter?: string;
  readonly selfSigned?: boolean;
  readonly signatureAlgorithm?: string;
  readonly keyUsage?: readonly string[];
  readonly basicConstraints?: { readonly ca: boolean; readonly pathLen?: number };
  readonly extKeyUsage?: readonly string[];
  readonly profile: string;
  readonly ima: Acceptance;
  readonly evm: Acceptance;
}

const SIG_NAMES: Readonly<Record<string, string>> = Object.freeze({
  '1.2.840.113549.1.1.5': 'sha1WithRSAEncryption',
  '1.2.840.113549.1.1.11': 'sha256WithRSAEncryption',
  '1.2.840.113549.1.1.12': 'sha384WithRSAEncryption',
  '1.2.840.113549.1.1.13': 'sha512WithRSAEncryption',
  '1.2.840.10045.4.3.2': 'ecdsa-with-SHA256',
  '1.2.840.10045.4.3.3': 'ecdsa-with-SHA384',
  '1.2.840.10045.4.3.4': 'ecdsa-with-SHA512',
  [SM2_SM3_SIG_OID]: 'SM2-with-SM3',
});
const EKU_NAMES: Readonly<Record<string, string>> = Object.freeze({
  '1.3.6.1.5.5.7.3.3': 'codeSigning',
  '1.3.6.1.5.5.7.3.1': 'serverAuth',
  '1.3.6.1.5.5.7.3.2': 'clientAuth',
});

/** The first kernel version (major * 1000 + minor) with ECDSA on each curve (file comment). */
const ECDSA_SINCE: Readonly<Record<string, number>> = Object.freeze({
  'P-192': 5013,
  'P-256': 5013,
  'P-384': 5015,
  'P-521': 6010,
});
const SM2_SINCE = 5010;
const SM2_REMOVED = 6011;
const ver = (v: number): string => `${Math.floor(v / 1000)}.${v % 1000}`;

/**
 * Why `p` lacks an algorithm, consistent with the profile's own version: a distribution kernel
 * whose version has it but whose configuration leaves it out says so (real-kernel.md §2.1:
 * Debian 6.1 sets neither CONFIG_CRYPTO_ECDSA nor CONFIG_CRYPTO_SM2), and every reason names the
 * kernels that do accept it.
 */
function algSupported(p: KernelKeyProfile, alg: string, curve: CurveName | undefined): string | undefined {
  if (alg === 'rsa') return undefined;
  if (alg === 'sm2') {
    if (p.sm2) return undefined;
    const which = `SM2 is in kernels ${ver(SM2_SINCE)} to 6.10 built with CONFIG_CRYPTO_SM2, e.g. --profile linux-6.6; pitfall 15`;
    const v = p.version ?? SM2_REMOVED;
    if (v >= SM2_REMOVED)
      return `SM2 is not available on ${p.id}: it was removed from the kernel in 6.11 (${which})`;
    if (v < SM2_SINCE) return `SM2 is not available on ${p.id}: it arrived in ${ver(SM2_SINCE)} (${which})`;
    return `SM2 is not available on ${p.id}: ${p.distro ?? 'this kernel'} is built without CONFIG_CRYPTO_SM2 (${which})`;
  }
  if (curve && p.ecdsaCurves.includes(curve)) return undefined;
  const since = curve ? ECDSA_SINCE[curve] : undefined;
  const which =
    since === undefined
      ? 'the kernel verifies ECDSA on P-192, P-256, P-384 and P-521 only'
      : `ECDSA ${curve} is in kernels ${ver(since)}+ built with CONFIG_CRYPTO_ECDSA, e.g. --profile mainline`;
  if (since !== undefined && p.version !== undefined && p.version < since)
    return `ECDSA ${curve} is not available on ${p.id}: it arrived in ${ver(since)} (${which})`;
  if (p.distro !== undefined && since !== undefined)
    return `ECDSA ${curve} is not available on ${p.id}: ${p.distro} is built without CONFIG_CRYPTO_ECDSA (${which})`;
  return `ECDSA ${curve ?? '(unknown curve)'} is not available on ${p.id} (${which})`;
}

/** Profiles a "which kernels accept it" answer is drawn from, oldest first. */
export const ACCEPTANCE_SURVEY: readonly string[] = Object.freeze([
  'debian-6.1',
  'linux-5.10',
  'linux-5.15',
  'linux-6.1',
  'linux-6.6',
  'mainline',
]);

function sigAlgNeeds(oid: string): { alg: 'rsa' | 'ec' | 'sm2' } | undefined {
  if (oid === SM2_SM3_SIG_OID) return { alg: 'sm2' };
  if (oid.startsWith('1.2.840.10045.4.')) return { alg: 'ec' };
  if (oid.startsWith('1.2.840.113549.1.1.')) return { alg: 'rsa' };
  return undefined;
}

function acceptance(
  pub: PublicKey,
  cert: Certificate | undefined,
  p: KernelKeyProfile,
  which: 'ima' | 'evm',
  now: Date,
): Acceptance {
  const keyring = which === 'ima' ? p.imaKeyring : p.evmKeyring;
  const reasons: string[] = [];
  const notes: string[] = [];
  const algProblem = algSupported(p, pub.alg, pub.curve);
  if (algProblem) reasons.push(algProblem);
  if (!cert) {
    reasons.push('a bare key cannot be loaded into a kernel keyring: an X.509 certificate (DER) is needed');
    return Object.freeze({ accepted: false, keyring, reasons, notes });
  }
  if (!cert.skid)
    reasons.push('no subjectKeyIdentifier: the kernel cannot match signature key ids to this certificate');
  else if (!bytesEqual(cert.skid, createHash('sha1').update(cert.subjectPublicKey).digest()))
    notes.push(
      'SKID is not the SHA-1 of the public key: sign with --keyid-from-cert (evmctl 1.4 computes another id)',
    );
  const selfSigned =
    cert.issuer === cert.subject &&
    (!cert.akid || (cert.skid !== undefined && bytesEqual(cert.akid, cert.skid)));
  if (selfSigned) {
    // x509_check_for_self_signed(): the kernel verifies the self-signature when loading
    const need = sigAlgNeeds(cert.sigAlgOid);
    if (need && need.alg !== 'rsa' && algSupported(p, need.alg, pub.curve))
      reasons.push(
        `the kernel verifies the self-signature on load and lacks ${need.alg.toUpperCase()} on ${p.id}`,
      );
  }
  const ku = cert.keyUsage;
  const ca = cert.basicConstraints?.ca === true;
  if (p.digsigUsage && which === 'ima') {
    if (!ku?.digitalSignature)
      reasons.push('keyUsage lacks digitalSignature (.ima refuses it since 6.4, restrict_link_by_digsig)');
    if (ca) reasons.push('basicConstraints CA:TRUE (.ima refuses CA keys since 6.4)');
    if (ku?.keyCertSign) reasons.push('keyUsage has keyCertSign (.ima refuses it since 6.4)');
  } else {
    if (ku && !ku.digitalSignature)
      notes.push('keyUsage lacks digitalSignature (refused by .ima on kernels ≥ 6.4)');
    if (ca) notes.push('a CA certificate: fine for _ima/_evm, refused by .ima on kernels ≥ 6.4');
  }
  if (cert.notAfter.getTime() < now.getTime())
    notes.push('expired (the kernel does not check validity for IMA keys)');
  if (p.trustedKeyring)
    notes.push(
      `${keyring} accepts it only if signed by a key in .builtin_trusted_keys/.secondary_trusted_keys (AKID ${cert.akid ? toHex(cert.akid) : 'absent'})`,
    );
  if (ca && which === 'ima')
    notes.push(
      'as a CA: build it into the kernel (CONFIG_SYSTEM_TRUSTED_KEYS) or enrol it via MOK for .machine',
    );
  const accepted: boolean | 'unknown' = reasons.length > 0 ? false : p.trustedKeyring ? 'unknown' : true;
  return Object.freeze({ accepted, keyring, reasons, notes });
}

/**
 * Describe a key or certificate (PEM or DER: X.509 certificate, PUBLIC KEY, or a private key)
 * and judge it against a kernel profile.
 * @param data file contents
 * @param opts.profile `debian-6.1` (default), `mainline`, `linux-M.m`
 * @param opts.passphrase for encrypted private keys
 * @throws ImakitError E_KEY_PARSE, E_KEY_TYPE, E_KEY_PASSPHRASE, E_PROFILE_UNKNOWN
 * @example describeKey(readFileSync('cert.der'), { profile: 'mainline' }).ima.accepted
 */
export function describeKey(
  data: Uint8Array,
  opts: { profile?: string; passphrase?: string; now?: Date } = {},
): KeyInfo {
  const profile = kernelKeyProfile(opts.profile ?? 'debian-6.1');
  let kind: KeyInfo['kind'];
  let pub: PublicKey;
  if (containsPrivateKey(data)) {
    kind = 'private-key';
    pub = loadPrivateKey(
      data,
      opts.passphrase === undefined ? {} : { passphrase: opts.passphrase },
    ).publicKey;
  } else {
    pub = loadPublicKey(data);
    kind = pub.cert ? 'certificate' : 'public-key';
  }
  const cert = pub.cert;
  const now = opts.now ?? new Date();
  const spkiKeyid = formatKeyId(keyIdFromSubjectPublicKey(pub.subjectPublicKey));
  const info: { -readonly [K in keyof KeyInfo]: KeyInfo[K] } = {
    kind,
    alg: pub.alg,
    bits: pub.bits,
    keyid: cert ? formatKeyId(keyIdOfCertificate(cert)) : spkiKeyid,
    keyidSource: cert?.skid ? 'skid' : 'spki-hash',
    spkiKeyid,
    profile: profile.id,
    ima: acceptance(pub, cert, profile, 'ima', now),
    evm: acceptance(pub, cert, profile, 'evm', now),
  };
  if (pub.curve) info.curve = pub.curve;
  if (cert) {
    if (cert.skid) {
      info.skid = toHex(cert.skid);
      info.skidIsMethod1 = bytesEqual(cert.skid, createHash('sha1').update(cert.subjectPublicKey).digest());
    }
    if (cert.akid) info.akid = toHex(cert.akid);
    info.subject = cert.subject;
    info.issuer = cert.issuer;
    info.serial = cert.serialHex;
    info.notBefore = cert.notBefore.toISOString();
    info.notAfter = cert.notAfter.toISOString();
    info.selfSigned = cert.issuer === cert.subject;
    info.signatureAlgorithm = SIG_NAMES[cert.sigAlgOid] ?? cert.sigAlgOid;
    if (cert.keyUsage)
      info.keyUsage = Object.entries(cert.keyUsage)
        .filter(([, v]) => v)
        .map(([k]) => k);
    if (cert.basicConstraints) info.basicConstraints = cert.basicConstraints;
    if (cert.extKeyUsage) info.extKeyUsage = cert.extKeyUsage.map((o) => EKU_NAMES[o] ?? o);
  }
  return Object.freeze(info);
}
