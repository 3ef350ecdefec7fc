/**
 * Polling an agent that speaks Keylime's pull API (rust-keylime's keylime-agent, or `imakit agent
 * run --keylime-api`): the request (`GET /v2.N/quotes/integrity?nonce&mask&partial&ima_ml_entry`)
 * and the strict reading of its answer into the pipeline's `Evidence`. Pure.
 *
 * The answer (rust-keylime keylime/src/quote.rs `KeylimeQuote` in json_wrapper.rs' `{code, status,
 * results}`): `quote` (`r<TPMS_ATTEST>:<TPMT_SIGNATURE>:<PCR blob>`, quote-format.ts), `hash_alg`,
 * `enc_alg`, `sign_alg`, `pubkey?`, `ima_measurement_list?` (ascii lines from the asked entry),
 * `ima_measurement_list_entry?`, `mb_measurement_list?` (base64 TCG log), `boottime?` (Python
 * agent). Anything else, or any field of the wrong type, is "evidence malformed" naming the field.
 *
 * What differs from Keylime 7.14's verifier (README "Keylime agents"):
 * - PCR numbers come from the selection in the signed TPMS_ATTEST; a PCR blob that claims other
 *   PCRs (a PCR 16 quote relabelled as PCR 10) is refused, not believed;
 * - the mask always asks for PCR 10, and a quote without it fails (required-pcr-not-quoted), where
 *   Keylime would skip the IMA check;
 * - the list is replayed from the stored running PCR 10 (offset in entries as Keylime keeps it,
 *   and in bytes of the list re-encoded in binary form, which is what the pipeline stores);
 * - PCR 16 (the agent's payload key binding) is quoted by the agent but not used: imakit delivers
 *   no payloads, so `partial=1` is asked and no key is needed.
 */
import {
  asciiToEntries,
  encodeBinaryList,
  parseAsciiList,
  parsePcrSelectionText,
  utf8,
  type ListFormat,
} from 'imakit/core';
import { isImakitError } from 'imakit/errors';
import type { Evidence, Failure, ImaOffset } from '../pipeline/types.ts';
import {
  KeylimeFormatError,
  bankName,
  base64Field,
  decodePcrBlob,
  knownHashAlg,
  parseKeylimeQuote,
  quotedSelection,
  attestFieldError,
  valuesForSignedSelection,
} from './quote-format.ts';

/** The API version asked for: the oldest rust-keylime still serves (config/base.rs). */
export const KEYLIME_AGENT_API = '2.1';
const IMA_PCR = 10;

/** What one poll asks a Keylime agent for. */
export interface KeylimeAgentRequest {
  /** the bank quoted (Keylime asks one) */
  readonly bank: string;
  /** `0x…` mask of the PCRs to quote (PCR 16 is added by the agent) */
  readonly mask: string;
  readonly nonce: string;
  /** where the list continues */
  readonly from: ImaOffset;
}

/**
 * The mask for an agent's required PCRs: the bank holding PCR 10 (Keylime quotes one bank).
 * @throws RangeError when no bank of `requirePcrs` has PCR 10 (fleet add refuses such agents)
 */
export function keylimeRequest(requirePcrs: string, nonce: string, from: ImaOffset): KeylimeAgentRequest {
  const sel = parsePcrSelectionText(requirePcrs);
  const b = sel.find((s) => s.pcrs.includes(IMA_PCR));
  if (b === undefined) throw new RangeError(`${requirePcrs} has no PCR ${IMA_PCR}`);
  let m = 0;
  for (const p of b.pcrs) if (p <= 23) m |= 1 << p;
  return Object.freeze({ bank: bankName(b.hashAlg), mask: `0x${(m >>> 0).toString(16)}`, nonce, from });
}

/** The request's path and query (`/v2.1/quotes/integrity?…`). */
export function keylimeRequestPath(r: KeylimeAgentRequest): string {
  const q = new URLSearchParams({
    nonce: r.nonce,
    mask: r.mask,
    partial: '1',
    ima_ml_entry: String(r.from.entries),
  });
  return `/v${KEYLIME_AGENT_API}/quotes/integrity?${q.toString()}`;
}

export type KeylimeAnswer =
  | { readonly ok: true; readonly evidence: Evidence; readonly entry: number }
  | { readonly ok: false; readonly failure: Failure };

const RESULT_KEYS = new Set([
  'quote',
  'hash_alg',
  'enc_alg',
  'sign_alg',
  'pubkey',
  'ima_measurement_list',
  'ima_measurement_list_entry',
  'mb_measurement_list',
  'boottime',
]);

const malformed = (
  step: Failure['step'],
  field: string,
  message: string,
  more: Partial<Failure> = {},
): KeylimeAnswer => ({
  ok: false,
  failure: {
    step,
    code: 'evidence-malformed',
    message: `${field}: ${message}`,
    field,
    fix: 'answer as rust-keylime does (GET /v2.N/quotes/integrity)',
    ...more,
  },
});

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Read a Keylime agent's answer to `req`. Never throws for a bad answer: it becomes a failure
 * "evidence-malformed" naming the field (and the offset or entry where there is one).
 */
export function readKeylimeAnswer(body: unknown, req: KeylimeAgentRequest): KeylimeAnswer {
  if (!isObject(body)) return malformed('quote', 'body', 'is not a JSON object');
  for (const k of Object.keys(body))
    if (k !== 'code' && k !== 'status' && k !== 'results')
      return malformed('quote', k, 'is not a field of a Keylime answer ({code, status, results})');
  if (body.code !== 200) return malformed('quote', 'code', `is ${JSON.stringify(body.code)}, not 200`);
  if (typeof body.status !== 'string') return malformed('quote', 'status', 'is not a string');
  const r = body.results;
  if (!isObject(r)) return malformed('quote', 'results', 'is not an object');
  for (const k of Object.keys(r))
    if (!RESULT_KEYS.has(k)) return malformed('quote', `results.${k}`, 'is not a field of a Keylime quote');
  for (const k of ['quote', 'hash_alg', 'enc_alg', 'sign_alg'] as const)
    if (typeof r[k] !== 'string') return malformed('quote', `results.${k}`, 'is missing or not a string');
  for (const k of ['pubkey', 'ima_measurement_list', 'mb_measurement_list'] as const)
    if (r[k] !== undefined && r[k] !== null && typeof r[k] !== 'string')
      return malformed('quote', `results.${k}`, 'is not a string');
  for (const k of ['ima_measurement_list_entry', 'boottime'] as const)
    if (r[k] !== undefined && r[k] !== null && !(Number.isSafeInteger(r[k]) && (r[k] as number) >= 0))
      return malformed('quote', `results.${k}`, 'is not a non-negative integer');
  const hashAlg = r.hash_alg as string;
  if (!knownHashAlg(hashAlg) || hashAlg !== req.bank)
    return malformed(
      'quote',
      'results.hash_alg',
      `is ${JSON.stringify(hashAlg)}; the mask asked for ${req.bank}`,
      {
        expected: req.bank,
        actual: hashAlg,
      },
    );

  // the quote: values numbered by the signed selection, never by the blob's own
  let evidencePcrs;
  let attest;
  let signature;
  try {
    const q = parseKeylimeQuote(r.quote as string);
    const blob = decodePcrBlob(q.pcrBlob);
    let signed;
    try {
      signed = quotedSelection(q.attest);
    } catch (e) {
      if (!isImakitError(e)) throw e;
      throw attestFieldError(e);
    }
    evidencePcrs = valuesForSignedSelection(signed, blob);
    attest = q.attest;
    signature = q.signature;
  } catch (e) {
    if (!(e instanceof KeylimeFormatError)) throw e;
    const field = e.field.replace(/^data\.quote/, 'results.quote');
    return {
      ok: false,
      failure: {
        step: 'quote',
        code: 'evidence-malformed',
        message: `${field}: ${e.message.replace(/^[^:]*: /, '')}`,
        field,
        ...(e.offset !== undefined && { offset: e.offset }),
        fix: 'send the quote string as rust-keylime encodes it; the PCR blob must list the PCRs the quote signed',
      },
    };
  }

  // the list: Keylime's entry offset must be the one asked for, or 0 (the agent restarted it)
  const entry = (r.ima_measurement_list_entry as number | undefined | null) ?? 0;
  if (entry !== req.from.entries && entry !== 0)
    return malformed(
      'ima',
      'results.ima_measurement_list_entry',
      `the list starts at entry ${entry}; entry ${req.from.entries} was asked for (or 0 after a restart)`,
      { expected: req.from.entries, actual: entry },
    );
  const text = ((r.ima_measurement_list as string | undefined | null) ?? '').replace(/\n+$/, '');
  let bytes: Uint8Array = new Uint8Array(0);
  if (text !== '') {
    try {
      const entries = asciiToEntries(parseAsciiList(text));
      const size = entries[0]!.digest.length;
      const format: ListFormat = { endian: 'le', digestSize: size, bank: size === 20 ? 'sha1' : hashAlg };
      bytes = encodeBinaryList(entries, format);
    } catch (e) {
      if (!isImakitError(e)) throw e;
      const ctx = e.toJSON() as { entry?: number; line?: number; field?: string };
      return malformed('ima', 'results.ima_measurement_list', e.message, {
        cause: e.code,
        ...(ctx.entry !== undefined && { entry: entry + ctx.entry }),
      });
    }
  }
  let eventLog: Uint8Array | undefined;
  if (typeof r.mb_measurement_list === 'string' && r.mb_measurement_list !== '') {
    try {
      eventLog = base64Field(r.mb_measurement_list.replace(/\s+/g, ''), 'results.mb_measurement_list');
    } catch (e) {
      if (!(e instanceof KeylimeFormatError)) throw e;
      return malformed('boot', 'results.mb_measurement_list', 'is not base64');
    }
  }
  return {
    ok: true,
    entry,
    evidence: {
      nonce: utf8(req.nonce),
      attest,
      signature,
      pcrs: evidencePcrs,
      // no new entries: the pipeline checks PCR 10 is still where the stored list left it
      ...(bytes.length > 0 && { ima: { offsetBytes: entry === 0 ? 0 : req.from.bytes, bytes } }),
      ...(eventLog !== undefined && { eventLog }),
    },
  };
}
