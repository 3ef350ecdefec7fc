/**
 * Keylime's stateless evidence check (`POST /v2.x/verify/evidence`, type `tpm`) with imakit's
 * pipeline: the same inputs and the same answer shape as Keylime 7.14
 * (cloud_verifier_tornado.py VerifyEvidenceHandler → process_verify_attestation), but where
 * Keylime's verdict is unsafe ours differs (README "Keylime evidence"):
 * - PCR numbers come from the SIGNED selection in TPMS_ATTEST; a PCR blob claiming other PCRs is
 *   refused (Keylime numbers them from the unsigned blob);
 * - a runtime policy or measurement list with PCR 10 absent from the quote is a failure (Keylime
 *   skips the IMA check and answers valid);
 * - the nonce is compared as sent (its UTF-8 bytes), never also base64-decoded;
 * - a tpm_policy PCR value must equal an allowed value (Keylime's `in` on a string is a substring test);
 * - a non-empty mb_policy is Keylime's measured-boot reference state (mb_refstate), evaluated by
 *   core compareBootReference as Keylime's example policy evaluates it, for the rules listed there;
 *   the rules it does not apply are said in notEstablished, and a refstate it cannot read, or an
 *   mb_policy without mb_log, is invalid rather than valid unchecked.
 * Pure; never throws for bad evidence.
 */
import {
  asciiToEntries,
  decodeTpm2bPublic,
  emptyCheckpoint,
  encodeBinaryList,
  formatPcrSelection,
  parseAsciiList,
  prepareQuoteAk,
  toHex,
  utf8,
  verifyQuote,
  type ListFormat,
  type ReferenceSet,
} from 'imakit/core';
import { isImakitError } from 'imakit/errors';
import { bootStep } from '../pipeline/boot.ts';
import { imaStep } from '../pipeline/ima.ts';
import { refsStep } from '../pipeline/refs.ts';
import type { Failure, StepVerdict } from '../pipeline/types.ts';
import { parseReferenceSet } from '../refs-store.ts';
import {
  KeylimeFormatError,
  base64Field,
  decodePcrBlob,
  knownHashAlg,
  parseKeylimeQuote,
  quotedSelection,
  attestFieldError,
  valuesForSignedSelection,
} from './quote-format.ts';

/** The `data` of a Keylime `{type: "tpm", data}` body (every field a string). */
export interface KeylimeTpmEvidence {
  readonly quote?: string;
  readonly nonce?: string;
  readonly hash_alg?: string;
  readonly tpm_ek?: string;
  readonly tpm_ak?: string;
  readonly tpm_policy?: string;
  readonly runtime_policy?: string;
  readonly mb_policy?: string;
  readonly ima_measurement_list?: string;
  readonly mb_log?: string;
}

/** One failure in Keylime's shape: `type` is its event id, `context` its context object plus ours. */
export interface KeylimeFailure {
  readonly type: string;
  readonly context: Record<string, unknown>;
}

export interface KeylimeEvidenceResult {
  /** 400 for a missing parameter or policy (Keylime's `missing_param`/`missing_policy`), else 200 */
  readonly http: 200 | 400;
  readonly valid: boolean;
  readonly failures: KeylimeFailure[];
  /** what the evidence proved (Keylime echoes the request's `data` here instead) */
  readonly claims: Record<string, unknown>;
  /** imakit's detail: each step and what the answer does not establish */
  readonly imakit: { readonly steps: StepVerdict[]; readonly notEstablished: string[] };
}

const IMA_PCR = 10;
const REQUIRED = ['quote', 'nonce', 'hash_alg', 'tpm_ek', 'tpm_ak'] as const;

const nonEmpty = (v: unknown): v is string => typeof v === 'string' && v !== '';

/** Check Keylime evidence. */
export function verifyKeylimeEvidence(data: KeylimeTpmEvidence): KeylimeEvidenceResult {
  const steps: StepVerdict[] = [];
  const notEstablished: string[] = [];
  const failures: KeylimeFailure[] = [];
  const done = (http: 200 | 400 = 200, claims: Record<string, unknown> = {}): KeylimeEvidenceResult => ({
    http,
    valid: failures.length === 0,
    failures,
    claims: failures.length === 0 ? claims : {},
    imakit: { steps, notEstablished: [...new Set(notEstablished)] },
  });
  const malformed = (type: string, e: KeylimeFormatError): KeylimeEvidenceResult => {
    failures.push({
      type,
      context: {
        message: e.message,
        field: e.field,
        ...(e.offset !== undefined && { offset: e.offset }),
        reason: 'evidence-malformed',
      },
    });
    return done();
  };

  for (const k of REQUIRED)
    if (!nonEmpty(data[k])) {
      failures.push({
        type: 'default.missing_param',
        context: { message: `missing parameter "${k}"`, field: `data.${k}` },
      });
      return done(400);
    }
  const { tpm_policy, runtime_policy, mb_policy, ima_measurement_list, mb_log } = data;
  if (!nonEmpty(tpm_policy) && !nonEmpty(runtime_policy) && !nonEmpty(mb_policy)) {
    failures.push({
      type: 'default.missing_policy',
      context: { message: 'at least one policy (tpm_policy, runtime_policy, or mb_policy) must be provided' },
    });
    return done(400);
  }
  const hashAlg = data.hash_alg!;
  if (!knownHashAlg(hashAlg)) {
    failures.push({
      type: 'quote_validation.invalid_hash_alg',
      context: {
        message: `TPM Quote is using an unrecognized hash algorithm: ${hashAlg}`,
        data: hashAlg,
        field: 'data.hash_alg',
      },
    });
    return done();
  }

  // 1. the quote
  let quote, blob, ak;
  try {
    quote = parseKeylimeQuote(data.quote!);
    blob = decodePcrBlob(quote.pcrBlob);
  } catch (e) {
    if (!(e instanceof KeylimeFormatError)) throw e;
    return malformed('quote_validation.invalid_quote', e);
  }
  try {
    ak = prepareQuoteAk(decodeTpm2bPublic(base64Field(data.tpm_ak!, 'data.tpm_ak')));
  } catch (e) {
    if (e instanceof KeylimeFormatError) return malformed('quote_validation.invalid_quote', e);
    if (!isImakitError(e)) throw e;
    return malformed(
      'quote_validation.invalid_quote',
      new KeylimeFormatError('data.tpm_ak', `is not a TPM2B_PUBLIC: ${e.message}`),
    );
  }
  let pcrs;
  try {
    pcrs = valuesForSignedSelection(quotedSelection(quote.attest), blob);
  } catch (e) {
    if (e instanceof KeylimeFormatError) return malformed('quote_validation.quote_validation', e);
    if (!isImakitError(e)) throw e;
    return malformed('quote_validation.invalid_quote', attestFieldError(e));
  }
  const v = verifyQuote(ak, {
    attest: quote.attest,
    signature: quote.signature,
    nonce: utf8(data.nonce!),
    pcrs,
  });
  const quoted = v.quotedSelection === undefined ? undefined : formatPcrSelection(v.quotedSelection);
  if (v.status === 'pass' && v.signature?.hashAlg !== hashAlg)
    failures.push({
      type: 'quote_validation.quote_validation',
      context: {
        message: 'Quote data validation',
        error: `Quote was expected to use ${hashAlg} but used ${v.signature?.hashAlg} instead`,
        field: 'data.hash_alg',
        reason: 'hash-alg-mismatch',
      },
    });
  if (v.status === 'fail') {
    const f = v.failures[0]!;
    let detail = f.detail;
    if (f.code === 'nonce-mismatch') {
      let b64: Uint8Array | undefined;
      try {
        b64 = base64Field(data.nonce!, 'data.nonce');
      } catch {
        b64 = undefined;
      }
      if (b64 !== undefined && v.attest !== undefined && toHex(b64) === toHex(v.attest.extraData))
        detail +=
          ' (it equals the base64-decoded nonce: Keylime accepts that too, imakit compares the nonce as sent)';
    }
    failures.push({
      type: 'quote_validation.quote_validation',
      context: { message: 'Quote data validation', error: detail, reason: f.code, failures: v.failures },
    });
  }
  notEstablished.push(...v.notEstablished);
  notEstablished.push('clock and reset monotonicity: a stateless check has no earlier quote');
  notEstablished.push(
    'that the AK belongs to the EK in tpm_ek (tpm_ek is required, as by Keylime, but not used)',
  );
  steps.push({
    step: 'quote',
    status: failures.length === 0 ? 'pass' : 'fail',
    detail:
      failures.length === 0
        ? `the quote of ${quoted} verifies under tpm_ak with the nonce`
        : String(failures[0]!.context.error ?? failures[0]!.context.message),
    ...(quoted !== undefined && { quoted }),
  });
  if (failures.length > 0) return done();
  const verified = v.verifiedPcrs;
  const bank = verified.get(hashAlg) ?? new Map<number, Uint8Array>();

  // 2. tpm_policy: each listed PCR must be quoted (signed) with an allowed value
  if (nonEmpty(tpm_policy)) checkTpmPolicy(tpm_policy, hashAlg, bank, failures);

  // 3. measured boot: the event log must replay to the quoted PCRs 0-9, and match the mb_policy
  //    (a Keylime mb_refstate) when one is given
  const mbRef =
    nonEmpty(mb_policy) && !isEmptyJsonObject(mb_policy)
      ? { form: 'keylime-mb-refstate' as const, bytes: utf8(mb_policy) }
      : undefined;
  if (!nonEmpty(mb_log) && mbRef !== undefined) {
    const b = bootStep(undefined, verified, mbRef);
    steps.push(b.verdict);
    notEstablished.push(...b.notEstablished);
    if (b.failure !== undefined)
      failures.push(asKeylime('measured_boot', mbPolicyField(b.failure), 'data.mb_log'));
  }
  if (nonEmpty(mb_log)) {
    let log: Uint8Array | undefined;
    try {
      log = base64Field(mb_log.replace(/\s+/g, ''), 'data.mb_log');
    } catch (e) {
      if (!(e instanceof KeylimeFormatError)) throw e;
      failures.push({
        type: 'measured_boot.parser.invalid_log',
        context: { message: e.message, field: e.field },
      });
    }
    if (log !== undefined) {
      const b = bootStep(log, verified, mbRef);
      steps.push(b.verdict);
      notEstablished.push(...b.notEstablished);
      if (b.failure !== undefined)
        failures.push(asKeylime('measured_boot', mbPolicyField(b.failure), 'data.mb_log'));
    }
  }

  // 4. IMA: the list replayed to the signed PCR 10, then evaluated against the runtime policy
  const wantIma = nonEmpty(runtime_policy) || nonEmpty(ima_measurement_list);
  let imaClaims: Record<string, unknown> | undefined;
  if (wantIma) imaClaims = checkIma(data, hashAlg, verified, failures, steps, notEstablished);
  else notEstablished.push('runtime integrity (IMA): no runtime_policy or measurement list was given');

  return done(200, {
    hash_alg: hashAlg,
    quoted,
    pcrs: Object.fromEntries([...bank].map(([i, val]) => [String(i), toHex(val)])),
    resetCount: v.clockInfo?.resetCount,
    restartCount: v.clockInfo?.restartCount,
    ...(imaClaims !== undefined && { ima: imaClaims }),
  });
}

function checkIma(
  data: KeylimeTpmEvidence,
  hashAlg: string,
  verified: ReadonlyMap<string, ReadonlyMap<number, Uint8Array>>,
  failures: KeylimeFailure[],
  steps: StepVerdict[],
  notEstablished: string[],
): Record<string, unknown> | undefined {
  if (verified.get(hashAlg)?.has(IMA_PCR) !== true) {
    failures.push({
      type: 'ima.pcr_not_quoted',
      context: {
        message: `a runtime policy or measurement list was given but PCR ${IMA_PCR} (${hashAlg}) is not in the signed quote: no list entry can be verified`,
        reason: 'ima-pcr-not-quoted',
        field: 'data.quote',
        fix: `quote PCR ${IMA_PCR} in the ${hashAlg} bank`,
        keylime: 'Keylime 7.14 skips the IMA check here and answers valid',
      },
    });
    steps.push({ step: 'ima', status: 'fail', detail: `PCR ${IMA_PCR} is not quoted` });
    return undefined;
  }
  let set: ReferenceSet | undefined;
  if (nonEmpty(data.runtime_policy)) {
    try {
      set = parseReferenceSet(utf8(data.runtime_policy), 'runtime_policy').set;
    } catch (e) {
      if (!isImakitError(e)) throw e;
      failures.push({
        type: 'ima.policy.invalid',
        context: { message: `runtime_policy: ${e.message}`, field: 'data.runtime_policy', cause: e.code },
      });
      return undefined;
    }
  } else notEstablished.push('that the measured files are acceptable: no runtime_policy was given');
  // one entry per line; Keylime splits on "\n" and skips empty lines
  let bytes: Uint8Array;
  let format: ListFormat = { endian: 'le', digestSize: 20, bank: 'sha1' };
  try {
    const text = (data.ima_measurement_list ?? '').replace(/\n+$/, '');
    const entries = text === '' ? [] : asciiToEntries(parseAsciiList(text));
    const size = entries[0]?.digest.length ?? 20;
    // the form is known (ascii, little endian as the kernel shows it): no binary format probing
    format = { endian: 'le', digestSize: size, bank: size === 20 ? 'sha1' : hashAlg };
    bytes = entries.length === 0 ? new Uint8Array(0) : encodeBinaryList(entries, format);
  } catch (e) {
    if (!isImakitError(e)) throw e;
    const ctx = e.toJSON() as { entry?: number; line?: number; field?: string };
    failures.push({
      type: 'ima.parser.entry',
      context: {
        message: `ima_measurement_list: ${e.message}`,
        field: 'data.ima_measurement_list',
        reason: 'evidence-malformed',
        cause: e.code,
        ...(ctx.entry !== undefined && { entry: ctx.entry }),
        ...(ctx.line !== undefined && { line: ctx.line }),
      },
    });
    return undefined;
  }
  const ima = imaStep(
    { checkpoint: emptyCheckpoint(format, [hashAlg]), next: { entries: 0, bytes: 0 } },
    bytes.length === 0 ? undefined : { offsetBytes: 0, bytes },
    new Map([[hashAlg, verified.get(hashAlg)!]]),
    false,
  );
  steps.push(ima.verdict);
  notEstablished.push(...ima.notEstablished);
  if (ima.failure !== undefined) {
    failures.push(asKeylime('ima', ima.failure, 'data.ima_measurement_list'));
    return undefined;
  }
  const refs = refsStep(set, undefined, ima.covered, ima.bytes, ima.format);
  steps.push(refs.verdict);
  notEstablished.push(...refs.notEstablished);
  if (refs.failure !== undefined) {
    const listed =
      (refs.verdict.refused as { entry: number; path: string; reason: string; actual?: string }[]) ?? [];
    for (const r of listed.length > 0 ? listed : [])
      failures.push({
        type: r.reason === 'unknown-path' ? 'ima.ima-ng.not_in_allowlist' : `ima.ima-ng.${r.reason}`,
        context: {
          message:
            r.reason === 'unknown-path'
              ? `File not found in allowlist: ${r.path}`
              : `Hashes for file ${r.path} don't match or are not allowed (${r.reason})`,
          entry: r.entry,
          line: r.entry + 1,
          path: r.path,
          reason: r.reason,
          ...(r.actual !== undefined && { actual: r.actual }),
        },
      });
    if (listed.length === 0) failures.push(asKeylime('ima', refs.failure, 'data.runtime_policy'));
    return undefined;
  }
  return { entries: ima.covered.length, verifiedThrough: ima.next };
}

function checkTpmPolicy(
  text: string,
  hashAlg: string,
  bank: ReadonlyMap<number, Uint8Array>,
  failures: KeylimeFailure[],
): void {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    failures.push({
      type: 'pcr_validation.invalid_policy',
      context: { message: `tpm_policy is not JSON: ${(e as Error).message}`, field: 'data.tpm_policy' },
    });
    return;
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    failures.push({
      type: 'pcr_validation.invalid_policy',
      context: { message: 'tpm_policy must be a JSON object', field: 'data.tpm_policy' },
    });
    return;
  }
  const missing: number[] = [];
  for (const [k, allowed] of Object.entries(doc as Record<string, unknown>)) {
    if (k === 'mask') continue; // Keylime drops it too: the PCRs to check are the policy's keys
    const pcr = Number(k);
    const list = typeof allowed === 'string' ? [allowed] : allowed;
    if (
      !/^\d{1,2}$/.test(k) ||
      pcr > 23 ||
      !Array.isArray(list) ||
      !list.every((x) => typeof x === 'string')
    ) {
      failures.push({
        type: 'pcr_validation.invalid_policy',
        context: {
          message: `tpm_policy.${k}: expected a PCR number (0-23) → list of hex values`,
          field: `data.tpm_policy.${k}`,
        },
      });
      continue;
    }
    const got = bank.get(pcr);
    if (got === undefined) {
      missing.push(pcr);
      continue;
    }
    const want = (list as string[]).map((x) => x.toLowerCase().replace(/^0x/, ''));
    if (!want.includes(toHex(got)))
      failures.push({
        type: `pcr_validation.invalid_pcr_${pcr}`,
        context: { context: 'PCR value is not in allowlist', got: toHex(got), expected: list, bank: hashAlg },
      });
  }
  if (missing.length > 0)
    failures.push({
      type: 'pcr_validation.missing_pcrs',
      context: {
        context: 'PCRs are missing in quote',
        data: missing,
        bank: hashAlg,
        reason: 'required-pcr-not-quoted',
      },
    });
}

/** One of our pipeline failures as a Keylime failure (its event id family, our detail). */
function asKeylime(component: string, f: Failure, field: string): KeylimeFailure {
  const type =
    f.code === 'ima-replay-mismatch'
      ? 'ima.pcr_mismatch'
      : f.code === 'evidence-malformed'
        ? `${component}.parser.entry`
        : `${component}.${f.code}`;
  const { step: _step, code, ...rest } = f;
  return { type, context: { ...rest, reason: code, field: f.field ?? field } };
}

/** An mb_policy that cannot be read as a refstate is named as the field at fault. */
function mbPolicyField(f: Failure): Failure {
  return f.code === 'boot-reference-unreadable'
    ? {
        ...f,
        field: 'data.mb_policy',
        fix: 'send the mb_refstate as keylime-policy create measured-boot writes it',
      }
    : f;
}

function isEmptyJsonObject(s: string): boolean {
  try {
    const d: unknown = JSON.parse(s);
    return typeof d === 'object' && d !== null && !Array.isArray(d) && Object.keys(d).length === 0;
  } catch {
    return false;
  }
}
