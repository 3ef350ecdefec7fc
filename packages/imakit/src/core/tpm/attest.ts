/**
 * TPMS_ATTEST, the structure a TPM signs in Quote, Certify, GetTime, ... (TPM 2.0 Part 2 §10.12):
 *
 *   u32 magic ‖ u16 type ‖ TPM2B_NAME qualifiedSigner ‖ TPM2B_DATA extraData ‖
 *   TPMS_CLOCK_INFO (u64 clock ‖ u32 resetCount ‖ u32 restartCount ‖ u8 safe) ‖
 *   u64 firmwareVersion ‖ attested (TPMU_ATTEST, selected by type)
 *
 * Decoding is structural only: a wrong magic decodes (the verifier reports it), an unknown type
 * cannot (its union has no known layout) and is E_CODEC_UNKNOWN_TYPE. Everything decoded here is
 * UNTRUSTED until `verifyQuote` has checked the signature over the exact bytes.
 */
import { type TpmReader, type TpmWriter, decodeAll, encodeWith } from './marshal.ts';
import { TPM_ST, tpmStName } from './constants.ts';
import { type PcrSelection, readPcrSelection, writePcrSelection } from './pcr-selection.ts';
import { MAX_DIGEST_BYTES } from './public.ts';

/** TPM2B_NAME cap: sizeof(TPMU_NAME) = a TPMT_HA of sha512 (66). */
export const MAX_NAME_BYTES = 66;
/** TPM2B_DATA cap: sizeof(TPMT_HA) (66). */
export const MAX_DATA_BYTES = 66;
/** TPM2B_MAX_NV_BUFFER cap (MAX_NV_BUFFER_SIZE is 1024 on PC Client TPMs; allow 2048). */
export const MAX_NV_BUFFER_BYTES = 2048;

/** TPMS_CLOCK_INFO (Part 2 §10.11.1). Counters are obfuscated for keys outside the endorsement/platform hierarchies. */
export interface ClockInfo {
  /** milliseconds the TPM has been powered since its last TPM2_Clear; persists across resets */
  readonly clock: bigint;
  /** TPM Resets since the last TPM2_Clear */
  readonly resetCount: number;
  /** TPM Restarts/Resumes since the last Reset */
  readonly restartCount: number;
  /** false when Clock may have been reported before (after an unorderly shutdown) */
  readonly safe: boolean;
}

/** TPMS_QUOTE_INFO (§10.12.1). */
export interface QuoteInfo {
  readonly kind: 'quote';
  readonly pcrSelect: PcrSelection;
  readonly pcrDigest: Uint8Array;
}
/** TPMS_CERTIFY_INFO (§10.12.3). */
export interface CertifyInfo {
  readonly kind: 'certify';
  readonly name: Uint8Array;
  readonly qualifiedName: Uint8Array;
}
/** TPMS_CREATION_INFO (§10.12.7). */
export interface CreationInfo {
  readonly kind: 'creation';
  readonly objectName: Uint8Array;
  readonly creationHash: Uint8Array;
}
/** TPMS_TIME_ATTEST_INFO (§10.12.6). */
export interface TimeAttestInfo {
  readonly kind: 'time';
  readonly time: bigint;
  readonly clockInfo: ClockInfo;
  readonly firmwareVersion: bigint;
}
/** TPMS_NV_CERTIFY_INFO (§10.12.8). */
export interface NvCertifyInfo {
  readonly kind: 'nv';
  readonly indexName: Uint8Array;
  readonly offset: number;
  readonly nvContents: Uint8Array;
}
/** TPMS_NV_DIGEST_CERTIFY_INFO (§10.12.9). */
export interface NvDigestCertifyInfo {
  readonly kind: 'nv-digest';
  readonly indexName: Uint8Array;
  readonly nvDigest: Uint8Array;
}
/** TPMS_COMMAND_AUDIT_INFO (§10.12.5). */
export interface CommandAuditInfo {
  readonly kind: 'command-audit';
  readonly auditCounter: bigint;
  readonly digestAlg: number;
  readonly auditDigest: Uint8Array;
  readonly commandDigest: Uint8Array;
}
/** TPMS_SESSION_AUDIT_INFO (§10.12.4). */
export interface SessionAuditInfo {
  readonly kind: 'session-audit';
  readonly exclusiveSession: boolean;
  readonly sessionDigest: Uint8Array;
}
export type Attested =
  | QuoteInfo
  | CertifyInfo
  | CreationInfo
  | TimeAttestInfo
  | NvCertifyInfo
  | NvDigestCertifyInfo
  | CommandAuditInfo
  | SessionAuditInfo;

/** A decoded (untrusted) TPMS_ATTEST. */
export interface TpmsAttest {
  readonly magic: number;
  /** TPM_ST_ATTEST_* */
  readonly type: number;
  readonly qualifiedSigner: Uint8Array;
  readonly extraData: Uint8Array;
  readonly clockInfo: ClockInfo;
  readonly firmwareVersion: bigint;
  readonly attested: Attested;
}

function readYesNo(r: TpmReader, field: string): boolean {
  const at = r.offset;
  const v = r.u8(field);
  if (v > 1) r.fail('E_CODEC_BAD_VALUE', `TPMI_YES_NO must be 0 or 1, got ${v}`, field, at);
  return v === 1;
}

/** Read a TPMS_CLOCK_INFO. */
export function readClockInfo(r: TpmReader, f = 'clockInfo'): ClockInfo {
  const clock = r.u64(`${f}.clock`);
  const resetCount = r.u32(`${f}.resetCount`);
  const restartCount = r.u32(`${f}.restartCount`);
  const safe = readYesNo(r, `${f}.safe`);
  return Object.freeze({ clock, resetCount, restartCount, safe });
}
/** Write a TPMS_CLOCK_INFO. */
export function writeClockInfo(w: TpmWriter, c: ClockInfo): void {
  w.u64(c.clock)
    .u32(c.resetCount)
    .u32(c.restartCount)
    .u8(c.safe ? 1 : 0);
}

function readAttested(r: TpmReader, type: number, typeAt: number): Attested {
  const f = 'attested';
  switch (type) {
    case TPM_ST.ATTEST_QUOTE:
      return Object.freeze({
        kind: 'quote',
        pcrSelect: readPcrSelection(r, `${f}.quote.pcrSelect`),
        pcrDigest: r.tpm2b(`${f}.quote.pcrDigest`, MAX_DIGEST_BYTES),
      });
    case TPM_ST.ATTEST_CERTIFY:
      return Object.freeze({
        kind: 'certify',
        name: r.tpm2b(`${f}.certify.name`, MAX_NAME_BYTES),
        qualifiedName: r.tpm2b(`${f}.certify.qualifiedName`, MAX_NAME_BYTES),
      });
    case TPM_ST.ATTEST_CREATION:
      return Object.freeze({
        kind: 'creation',
        objectName: r.tpm2b(`${f}.creation.objectName`, MAX_NAME_BYTES),
        creationHash: r.tpm2b(`${f}.creation.creationHash`, MAX_DIGEST_BYTES),
      });
    case TPM_ST.ATTEST_TIME:
      return Object.freeze({
        kind: 'time',
        time: r.u64(`${f}.time.time.time`),
        clockInfo: readClockInfo(r, `${f}.time.time.clockInfo`),
        firmwareVersion: r.u64(`${f}.time.firmwareVersion`),
      });
    case TPM_ST.ATTEST_NV:
      return Object.freeze({
        kind: 'nv',
        indexName: r.tpm2b(`${f}.nv.indexName`, MAX_NAME_BYTES),
        offset: r.u16(`${f}.nv.offset`),
        nvContents: r.tpm2b(`${f}.nv.nvContents`, MAX_NV_BUFFER_BYTES),
      });
    case TPM_ST.ATTEST_NV_DIGEST:
      return Object.freeze({
        kind: 'nv-digest',
        indexName: r.tpm2b(`${f}.nvDigest.indexName`, MAX_NAME_BYTES),
        nvDigest: r.tpm2b(`${f}.nvDigest.nvDigest`, MAX_DIGEST_BYTES),
      });
    case TPM_ST.ATTEST_COMMAND_AUDIT:
      return Object.freeze({
        kind: 'command-audit',
        auditCounter: r.u64(`${f}.commandAudit.auditCounter`),
        digestAlg: r.u16(`${f}.commandAudit.digestAlg`),
        auditDigest: r.tpm2b(`${f}.commandAudit.auditDigest`, MAX_DIGEST_BYTES),
        commandDigest: r.tpm2b(`${f}.commandAudit.commandDigest`, MAX_DIGEST_BYTES),
      });
    case TPM_ST.ATTEST_SESSION_AUDIT:
      return Object.freeze({
        kind: 'session-audit',
        exclusiveSession: readYesNo(r, `${f}.sessionAudit.exclusiveSession`),
        sessionDigest: r.tpm2b(`${f}.sessionAudit.sessionDigest`, MAX_DIGEST_BYTES),
      });
    default:
      return r.fail(
        'E_CODEC_UNKNOWN_TYPE',
        `attestation type ${tpmStName(type)} is not TPMI_ST_ATTEST`,
        'type',
        typeAt,
      );
  }
}

function writeAttested(w: TpmWriter, a: Attested): void {
  switch (a.kind) {
    case 'quote':
      writePcrSelection(w, a.pcrSelect);
      w.tpm2b(a.pcrDigest);
      return;
    case 'certify':
      w.tpm2b(a.name).tpm2b(a.qualifiedName);
      return;
    case 'creation':
      w.tpm2b(a.objectName).tpm2b(a.creationHash);
      return;
    case 'time':
      w.u64(a.time);
      writeClockInfo(w, a.clockInfo);
      w.u64(a.firmwareVersion);
      return;
    case 'nv':
      w.tpm2b(a.indexName).u16(a.offset).tpm2b(a.nvContents);
      return;
    case 'nv-digest':
      w.tpm2b(a.indexName).tpm2b(a.nvDigest);
      return;
    case 'command-audit':
      w.u64(a.auditCounter).u16(a.digestAlg).tpm2b(a.auditDigest).tpm2b(a.commandDigest);
      return;
    case 'session-audit':
      w.u8(a.exclusiveSession ? 1 : 0).tpm2b(a.sessionDigest);
      return;
  }
}

const KIND_TYPE: Readonly<Record<Attested['kind'], number>> = Object.freeze({
  quote: TPM_ST.ATTEST_QUOTE,
  certify: TPM_ST.ATTEST_CERTIFY,
  creation: TPM_ST.ATTEST_CREATION,
  time: TPM_ST.ATTEST_TIME,
  nv: TPM_ST.ATTEST_NV,
  'nv-digest': TPM_ST.ATTEST_NV_DIGEST,
  'command-audit': TPM_ST.ATTEST_COMMAND_AUDIT,
  'session-audit': TPM_ST.ATTEST_SESSION_AUDIT,
});

/** Read a TPMS_ATTEST. */
export function readTpmsAttest(r: TpmReader): TpmsAttest {
  const magic = r.u32('magic');
  const typeAt = r.offset;
  const type = r.u16('type');
  const qualifiedSigner = r.tpm2b('qualifiedSigner', MAX_NAME_BYTES);
  const extraData = r.tpm2b('extraData', MAX_DATA_BYTES);
  const clockInfo = readClockInfo(r);
  const firmwareVersion = r.u64('firmwareVersion');
  const attested = readAttested(r, type, typeAt);
  return Object.freeze({ magic, type, qualifiedSigner, extraData, clockInfo, firmwareVersion, attested });
}

/**
 * Write a TPMS_ATTEST. `type` is written as given (a verifier test may pair a quote body with
 * another type); it must select the layout of `attested`.
 * @throws RangeError when type and attested.kind disagree
 */
export function writeTpmsAttest(w: TpmWriter, a: TpmsAttest): void {
  if (KIND_TYPE[a.attested.kind] !== a.type)
    throw new RangeError(`type ${tpmStName(a.type)} does not match attested.kind '${a.attested.kind}'`);
  w.u32(a.magic >>> 0)
    .u16(a.type)
    .tpm2b(a.qualifiedSigner)
    .tpm2b(a.extraData);
  writeClockInfo(w, a.clockInfo);
  w.u64(a.firmwareVersion);
  writeAttested(w, a.attested);
}

/**
 * Decode a whole TPMS_ATTEST (TPM2B_ATTEST's data: what `tpm2_quote -m` writes).
 * @throws CodecError E_CODEC_TRUNCATED / E_CODEC_TOO_LARGE / E_CODEC_UNKNOWN_TYPE / E_CODEC_BAD_VALUE / E_CODEC_TRAILING
 * @example decodeTpmsAttest(readFileSync('quote.msg')).attested.kind // 'quote'
 */
export function decodeTpmsAttest(bytes: Uint8Array): TpmsAttest {
  return decodeAll(bytes, readTpmsAttest, 'TPMS_ATTEST');
}
/** Encode a TPMS_ATTEST. */
export function encodeTpmsAttest(a: TpmsAttest): Uint8Array {
  return encodeWith((w) => writeTpmsAttest(w, a));
}
