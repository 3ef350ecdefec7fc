/**
 * Key templates (TPMT_PUBLIC) the client creates from:
 *
 * - EKs: TCG EK Credential Profile 2.x, Annex B: template L-1 (RSA 2048), L-2 (ECC P-256), both with
 *   policy A = PolicySecret(TPM_RH_ENDORSEMENT) and userWithAuth clear; and H-3 (ECC P-384: nameAlg
 *   sha384, policy B, userWithAuth set, AES-256, empty unique), the one swtpm_setup 0.7.1 makes
 *   (tpm.md "ECC EK"). A TPM derives the same EK from the same template, so these regenerate the
 *   persisted EKs byte for byte.
 * - SRKs: TCG TPM v2.0 Provisioning Guidance §7.5.1 (RSA 2048 / ECC P-256, noDA, empty auth).
 * - AKs: restricted signing keys as `tpm2_createak` makes them (attributes 0x00050072): RSA 2048
 *   RSASSA-SHA256 or RSAPSS-SHA256, ECC P-256 ECDSA-SHA256.
 */
import { fromHex } from '../../bytes/bytes.ts';
import { TPM_ALG, TPM_ECC_CURVE, TPMA_OBJECT } from '../constants.ts';
import type { TpmScheme, SymDefObject, TpmtPublic } from '../public.ts';

const A = TPMA_OBJECT;
/** TCG EK policy A (sha256): PolicySecret(TPM_RH_ENDORSEMENT). */
export const EK_POLICY_A_SHA256 = fromHex('837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa');
/** TCG EK policy B (sha384): PolicyOR over policies A and C for the high-range templates. */
export const EK_POLICY_B_SHA384 = fromHex(
  'b26e7d28d11a50bc53d882bcf5fd3a1a074148bb35d3b4e4cb1c0ad9bde419cacb47ba09699646150f9fc000f3f80e12',
);

const NULL_SCHEME: TpmScheme = Object.freeze({ scheme: TPM_ALG.NULL });
const NO_SYM: SymDefObject = Object.freeze({ algorithm: TPM_ALG.NULL, keyBits: 0, mode: 0 });
const aes = (bits: number): SymDefObject =>
  Object.freeze({ algorithm: TPM_ALG.AES, keyBits: bits, mode: TPM_ALG.CFB });
const EMPTY = new Uint8Array(0);

/** fixedTPM|fixedParent|sensitiveDataOrigin|adminWithPolicy|restricted|decrypt (0x000300b2). */
const EK_ATTRS =
  A.fixedTPM | A.fixedParent | A.sensitiveDataOrigin | A.adminWithPolicy | A.restricted | A.decrypt;
/** fixedTPM|fixedParent|sensitiveDataOrigin|userWithAuth|noDA|restricted|decrypt (0x00030472). */
const SRK_ATTRS =
  A.fixedTPM | A.fixedParent | A.sensitiveDataOrigin | A.userWithAuth | A.noDA | A.restricted | A.decrypt;
/** fixedTPM|fixedParent|sensitiveDataOrigin|userWithAuth|restricted|sign (0x00050072). */
export const AK_ATTRS =
  A.fixedTPM | A.fixedParent | A.sensitiveDataOrigin | A.userWithAuth | A.restricted | A.sign;

/** The EK kinds imakit knows. */
export type EkKind = 'rsa' | 'ecc' | 'ecc384';
/** The AK kinds imakit creates. */
export type AkKind = 'rsassa' | 'rsapss' | 'ecdsa';

/** The TCG default EK template of `kind`. */
export function ekTemplate(kind: EkKind): TpmtPublic {
  if (kind === 'rsa')
    return Object.freeze({
      type: 'rsa',
      nameAlg: TPM_ALG.SHA256,
      objectAttributes: EK_ATTRS,
      authPolicy: EK_POLICY_A_SHA256,
      symmetric: aes(128),
      scheme: NULL_SCHEME,
      keyBits: 2048,
      exponent: 0,
      modulus: new Uint8Array(256),
    });
  if (kind === 'ecc')
    return Object.freeze({
      type: 'ecc',
      nameAlg: TPM_ALG.SHA256,
      objectAttributes: EK_ATTRS,
      authPolicy: EK_POLICY_A_SHA256,
      symmetric: aes(128),
      scheme: NULL_SCHEME,
      curveId: TPM_ECC_CURVE.NIST_P256,
      kdf: NULL_SCHEME,
      x: new Uint8Array(32),
      y: new Uint8Array(32),
    });
  return Object.freeze({
    type: 'ecc',
    nameAlg: TPM_ALG.SHA384,
    objectAttributes: EK_ATTRS | A.userWithAuth,
    authPolicy: EK_POLICY_B_SHA384,
    symmetric: aes(256),
    scheme: NULL_SCHEME,
    curveId: TPM_ECC_CURVE.NIST_P384,
    kdf: NULL_SCHEME,
    x: EMPTY,
    y: EMPTY,
  });
}

/** True when an EK of this kind needs a PolicySecret(TPM_RH_ENDORSEMENT) session (userWithAuth clear). */
export function ekNeedsPolicy(kind: EkKind): boolean {
  return (ekTemplate(kind).objectAttributes & A.userWithAuth) === 0;
}

/** The SRK template (RSA 2048 or ECC P-256). */
export function srkTemplate(kind: 'rsa' | 'ecc'): TpmtPublic {
  if (kind === 'rsa')
    return Object.freeze({
      type: 'rsa',
      nameAlg: TPM_ALG.SHA256,
      objectAttributes: SRK_ATTRS,
      authPolicy: EMPTY,
      symmetric: aes(128),
      scheme: NULL_SCHEME,
      keyBits: 2048,
      exponent: 0,
      modulus: new Uint8Array(256),
    });
  return Object.freeze({
    type: 'ecc',
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: SRK_ATTRS,
    authPolicy: EMPTY,
    symmetric: aes(128),
    scheme: NULL_SCHEME,
    curveId: TPM_ECC_CURVE.NIST_P256,
    kdf: NULL_SCHEME,
    x: new Uint8Array(32),
    y: new Uint8Array(32),
  });
}

/** An attestation key template: restricted signing, SHA-256 scheme fixed in the key. */
export function akTemplate(kind: AkKind): TpmtPublic {
  const base = { nameAlg: TPM_ALG.SHA256, objectAttributes: AK_ATTRS, authPolicy: EMPTY, symmetric: NO_SYM };
  if (kind === 'ecdsa')
    return Object.freeze({
      ...base,
      type: 'ecc',
      scheme: Object.freeze({ scheme: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256 }),
      curveId: TPM_ECC_CURVE.NIST_P256,
      kdf: NULL_SCHEME,
      x: EMPTY,
      y: EMPTY,
    });
  return Object.freeze({
    ...base,
    type: 'rsa',
    scheme: Object.freeze({
      scheme: kind === 'rsapss' ? TPM_ALG.RSAPSS : TPM_ALG.RSASSA,
      hashAlg: TPM_ALG.SHA256,
    }),
    keyBits: 2048,
    exponent: 0,
    modulus: EMPTY,
  });
}
