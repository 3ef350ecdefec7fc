/**
 * Strict TPM2_Quote verification. Returns a structured verdict, never a bare boolean
 * (style.md practice 4), with one reason code per failure.
 *
 * What a `pass` establishes:
 *  - the signature over the exact TPMS_ATTEST bytes verifies under the AK (RSASSA, RSAPSS with
 *    the salt length the TPM used — libtpms uses the hash length, older TPMs the maximum, tpm.md
 *    gotcha 4 — or ECDSA), with the hash the AK's scheme fixes when the AK's TPMT_PUBLIC is given;
 *  - magic is TPM_GENERATED_VALUE and type is TPM_ST_ATTEST_QUOTE (a signed TPM2_Certify is
 *    refused; tpm2_checkquote 5.4 accepts one, gotcha 5);
 *  - extraData equals the nonce byte for byte (no decoded or alternative form);
 *  - pcrDigest equals H_sig(values of the SIGNED selection in its order: bank by bank, PCRs
 *    ascending) (gotcha 8); only PCRs in the signed selection are reported as verified, values
 *    supplied for other PCRs are listed as not covered;
 *  - every required PCR is in the signed selection (Keylime takes the PCR numbers from an unsigned
 *    blob and skips IMA when PCR 10 is absent: we fail instead);
 *  - with `previous`: same signer, resetCount/restartCount never decrease, clock advances within
 *    a reset.
 *
 * What it does NOT establish (listed in `notEstablished`): that the AK belongs to a genuine TPM
 * (credential activation and the EK chain do that), the AK's hierarchy (qualifiedSigner is not
 * checked against a parent), that the PCR values are good (policy does that), that a previous
 * quote was itself verified (the caller passes one it verified), and for a PEM/DER AK, that the
 * key is a restricted signing key.
 */
import { KeyObject, constants, hash as oneShotHash, verify as cryptoVerify } from 'node:crypto';
import { bytesEqual, toHex } from '../bytes/bytes.ts';
import { hashAlgoByTpmAlg } from '../hash/hash-algo.ts';
import { ImakitError, isImakitError } from '../../errors.ts';
import { loadPublicKey } from '../keys/keys.ts';
import type { PcrValues } from '../tcg/pcr-values.ts';
import { TPM_ALG, TPM_GENERATED_VALUE, TPM_ST, tpmAlgName, tpmStName } from './constants.ts';
import { type ClockInfo, type TpmsAttest, decodeTpmsAttest } from './attest.ts';
import { type PcrSelection, bankName } from './pcr-selection.ts';
import {
  type TpmtPublic,
  eccCurveSize,
  decodeTpm2bPublic,
  decodeTpmtPublic,
  isRestrictedSigningKey,
  tpmPublicName,
  tpmPublicToKeyObject,
} from './public.ts';
import { type TpmtSignature, decodeTpmtSignature } from './signature.ts';

/** Every way a quote can fail, each its own code. */
export type QuoteFailureCode =
  | 'ak-not-restricted-signing'
  | 'ak-unusable'
  | 'attest-malformed'
  | 'signature-malformed'
  | 'signature-scheme-mismatch'
  | 'signature-unsupported'
  | 'signature-invalid'
  | 'bad-magic'
  | 'not-a-quote'
  | 'nonce-mismatch'
  | 'pcr-bank-unknown'
  | 'pcr-bank-duplicate'
  | 'pcr-value-missing'
  | 'pcr-value-size'
  | 'pcr-digest-mismatch'
  | 'required-pcr-not-quoted'
  | 'previous-malformed'
  | 'previous-other-signer'
  | 'reset-count-decreased'
  | 'restart-count-decreased'
  | 'clock-went-backwards'
  | 'clock-repeated';

export interface QuoteFailure {
  readonly code: QuoteFailureCode;
  readonly detail: string;
}

/** An AK ready for repeated verification: the KeyObject is made once (it costs more than a verify). */
export interface QuoteAk {
  readonly key: KeyObject;
  readonly keyType: 'rsa' | 'ecc';
  /** ECC coordinate size (r‖s halves), 0 for RSA */
  readonly eccSize: number;
  /** the TPMT_PUBLIC when the AK came as one (PEM/DER carry no TPM attributes) */
  readonly public?: TpmtPublic;
  /** nameAlg ‖ H(TPMT_PUBLIC), when known */
  readonly name?: Uint8Array;
}

/**
 * Prepare an AK from its TPMT_PUBLIC (preferred: attributes and scheme are checked) or from a
 * node:crypto public KeyObject (PEM/DER).
 * @throws CodecError E_KEY_TYPE / E_KEY_PARSE when the key cannot be used
 */
export function prepareQuoteAk(ak: TpmtPublic | KeyObject): QuoteAk {
  if (ak instanceof KeyObject) {
    const t = ak.asymmetricKeyType;
    if (t === 'rsa' || t === 'rsa-pss') return Object.freeze({ key: ak, keyType: 'rsa', eccSize: 0 });
    if (t === 'ec') {
      const crv = ak.asymmetricKeyDetails?.namedCurve;
      const size = crv === 'prime256v1' ? 32 : crv === 'secp384r1' ? 48 : crv === 'secp521r1' ? 66 : 0;
      if (size === 0) throw new TypeError(`AK curve ${String(crv)} not supported`);
      return Object.freeze({ key: ak, keyType: 'ecc', eccSize: size });
    }
    throw new TypeError(`AK key type ${String(t)} not supported`);
  }
  const key = tpmPublicToKeyObject(ak);
  return Object.freeze({
    key,
    keyType: ak.type,
    eccSize: ak.type === 'ecc' ? (eccCurveSize(ak.curveId) ?? 0) : 0,
    public: ak,
    name: tpmPublicName(ak),
  });
}

export interface QuoteVerifyInput {
  /** raw TPMS_ATTEST bytes (TPM2B_ATTEST's data) */
  readonly attest: Uint8Array;
  /** raw TPMT_SIGNATURE bytes */
  readonly signature: Uint8Array;
  /** the nonce the verifier sent; extraData must equal it exactly */
  readonly nonce: Uint8Array;
  /** claimed PCR values: bank name (`sha256`) → index → value */
  readonly pcrs: PcrValues;
  /** PCRs that must be covered by the signed selection */
  readonly require?: PcrSelection;
  /** an earlier quote (raw TPMS_ATTEST) of the same AK, already verified by the caller */
  readonly previous?: Uint8Array;
  /**
   * The AK is outside the endorsement/platform hierarchy, so the TPM obfuscates resetCount,
   * restartCount and firmwareVersion (tpm.md gotcha 9): skip the counter checks.
   */
  readonly countersObfuscated?: boolean;
}

/** What was checked, each true only when it was checked and held. */
export interface QuoteEstablished {
  readonly akRestrictedSigning: boolean;
  readonly signature: boolean;
  readonly magic: boolean;
  readonly typeQuote: boolean;
  readonly nonce: boolean;
  readonly pcrDigest: boolean;
  readonly required: boolean;
  readonly clock: boolean;
}

export interface QuoteVerdict {
  readonly status: 'pass' | 'fail';
  /** the first failure's code, null on pass */
  readonly code: QuoteFailureCode | null;
  readonly failures: readonly QuoteFailure[];
  readonly established: QuoteEstablished;
  /** what this verification does not establish, in words */
  readonly notEstablished: readonly string[];
  /** signature details as signed (untrusted unless established.signature) */
  readonly signature?: {
    readonly sigAlg: string;
    readonly hashAlg: string;
    /** RSAPSS: the salt length that verified (`auto` when neither hash-length nor maximum) */
    readonly pssSaltLength?: number | 'auto';
  };
  /** the signed selection as `bank:i,j` groups (untrusted unless established.signature) */
  readonly quotedSelection?: PcrSelection;
  /**
   * PCR values proven by this quote: only PCRs of the signed selection, and only when the
   * signature, magic, type, nonce and digest all held. Empty otherwise.
   */
  readonly verifiedPcrs: ReadonlyMap<string, ReadonlyMap<number, Uint8Array>>;
  /** supplied values the quote does not cover (`sha256:16`): never verified */
  readonly notCovered: readonly string[];
  readonly clockInfo?: ClockInfo;
  readonly firmwareVersion?: bigint;
  /** the parsed attestation (trusted only when status is pass) */
  readonly attest?: TpmsAttest;
}

const NOT_ESTABLISHED_ALWAYS: readonly string[] = Object.freeze([
  'that the AK resides in a genuine TPM (credential activation and the EK certificate chain establish that)',
  "the AK's hierarchy: qualifiedSigner is not checked against a parent",
  'that the PCR values are acceptable (a policy or measurement list decides that)',
]);

/**
 * Verify a quote. Never throws for bad input: malformed bytes become failures.
 * @param ak from `prepareQuoteAk` (make it once per AK)
 * @returns a verdict listing every failure found
 * @example
 * const v = verifyQuote(prepareQuoteAk(decodeTpm2bPublic(akPub)), { attest, signature, nonce, pcrs });
 * if (v.status === 'pass') use(v.verifiedPcrs);
 */
export function verifyQuote(ak: QuoteAk, input: QuoteVerifyInput): QuoteVerdict {
  const failures: QuoteFailure[] = [];
  const fail = (code: QuoteFailureCode, detail: string): void => {
    failures.push({ code, detail });
  };
  const notEstablished = [...NOT_ESTABLISHED_ALWAYS];

  let akRestrictedSigning = false;
  if (ak.public) {
    akRestrictedSigning = isRestrictedSigningKey(ak.public);
    if (!akRestrictedSigning)
      fail(
        'ak-not-restricted-signing',
        'the AK is not a restricted signing key (restricted|sign, not decrypt)',
      );
  } else {
    notEstablished.push('that the AK is a restricted signing key (a PEM/DER key carries no TPM attributes)');
  }

  // 1. parse
  let attest: TpmsAttest | undefined;
  try {
    attest = decodeTpmsAttest(input.attest);
  } catch (e) {
    if (!isImakitError(e)) throw e;
    fail('attest-malformed', e.message);
  }
  let sig: TpmtSignature | undefined;
  try {
    sig = decodeTpmtSignature(input.signature);
  } catch (e) {
    if (!isImakitError(e)) throw e;
    fail('signature-malformed', e.message);
  }

  // 2. signature over the exact bytes
  let sigOk = false;
  let sigInfo: QuoteVerdict['signature'];
  let sigHashAlg = 0;
  if (sig) {
    const r = checkSignature(ak, sig, input.attest);
    sigOk = r.ok;
    sigInfo = r.info;
    sigHashAlg = 'hashAlg' in sig ? sig.hashAlg : 0;
    if (r.failure) fail(r.failure.code, r.failure.detail);
  }

  // 3. what was signed
  let magicOk = false;
  let typeOk = false;
  let nonceOk = false;
  let digestOk = false;
  let requiredOk = false;
  let clockOk = false;
  const notCovered: string[] = [];
  let verifiedPcrs: Map<string, Map<number, Uint8Array>> = new Map();
  let selection: PcrSelection | undefined;
  if (attest) {
    magicOk = attest.magic === TPM_GENERATED_VALUE;
    if (!magicOk)
      fail('bad-magic', `magic 0x${attest.magic.toString(16)} is not TPM_GENERATED_VALUE (0xff544347)`);
    typeOk = attest.type === TPM_ST.ATTEST_QUOTE;
    if (!typeOk) fail('not-a-quote', `type ${tpmStName(attest.type)} is not ATTEST_QUOTE`);
    nonceOk = bytesEqual(attest.extraData, input.nonce);
    if (!nonceOk)
      fail('nonce-mismatch', `extraData ${toHex(attest.extraData)} is not the nonce ${toHex(input.nonce)}`);
    if (attest.attested.kind === 'quote') {
      selection = attest.attested.pcrSelect;
      const d = pcrDigest(selection, input.pcrs, sigHashAlg, fail);
      if (d) {
        digestOk = bytesEqual(d.digest, attest.attested.pcrDigest);
        if (!digestOk)
          fail(
            'pcr-digest-mismatch',
            `pcrDigest ${toHex(attest.attested.pcrDigest)} != H(supplied values) ${toHex(d.digest)}`,
          );
        else verifiedPcrs = d.used;
      }
      requiredOk = checkRequired(selection, input.require, fail);
    }
    for (const [bank, m] of input.pcrs) {
      const quoted = selectedIn(selection, bank);
      for (const idx of m.keys()) if (!quoted?.includes(idx)) notCovered.push(`${bank}:${idx}`);
    }
    if (input.previous !== undefined)
      clockOk = checkClock(attest, input.previous, input.countersObfuscated, fail);
    else notEstablished.push('clock and counter monotonicity (no previous quote given)');
  }
  if (input.countersObfuscated)
    notEstablished.push('resetCount/restartCount monotonicity (counters obfuscated)');
  if (!input.require || input.require.length === 0)
    notEstablished.push('coverage of any particular PCR (no required selection given)');

  const trusted = sigOk && magicOk && typeOk && nonceOk && digestOk;
  const status = failures.length === 0 ? 'pass' : 'fail';
  return Object.freeze({
    status,
    code: failures[0]?.code ?? null,
    failures: Object.freeze(failures),
    established: Object.freeze({
      akRestrictedSigning,
      signature: sigOk,
      magic: magicOk,
      typeQuote: typeOk,
      nonce: nonceOk,
      pcrDigest: digestOk,
      required: requiredOk && (input.require?.length ?? 0) > 0,
      clock: clockOk,
    }),
    notEstablished: Object.freeze(notEstablished),
    ...(sigInfo ? { signature: sigInfo } : {}),
    ...(selection ? { quotedSelection: selection } : {}),
    verifiedPcrs: trusted ? verifiedPcrs : new Map(),
    notCovered: Object.freeze(notCovered),
    ...(attest ? { clockInfo: attest.clockInfo, firmwareVersion: attest.firmwareVersion, attest } : {}),
  });
}

/** The PCR indices the selection quotes in the named bank, if it selects that bank. */
function selectedIn(sel: PcrSelection | undefined, bank: string): readonly number[] | undefined {
  if (!sel) return undefined;
  for (const b of sel) if (bankName(b.hashAlg) === bank) return b.pcrs;
  return undefined;
}

interface SigResult {
  ok: boolean;
  info?: QuoteVerdict['signature'];
  failure?: QuoteFailure;
}

function checkSignature(ak: QuoteAk, sig: TpmtSignature, message: Uint8Array): SigResult {
  if (sig.sigAlg === TPM_ALG.NULL || sig.sigAlg === TPM_ALG.HMAC)
    return {
      ok: false,
      failure: { code: 'signature-unsupported', detail: `${tpmAlgName(sig.sigAlg)} signature` },
    };
  const algo = hashAlgoByTpmAlg(sig.hashAlg);
  const info = { sigAlg: tpmAlgName(sig.sigAlg), hashAlg: algo?.name ?? tpmAlgName(sig.hashAlg) };
  if (!algo?.node)
    return { ok: false, info, failure: { code: 'signature-unsupported', detail: `hash ${info.hashAlg}` } };
  // A restricted signing key signs only with its own scheme (Part 1 §25.2): a signature claiming
  // another scheme or hash was not made by it.
  const scheme = ak.public?.scheme;
  if (
    scheme &&
    scheme.scheme !== TPM_ALG.NULL &&
    (scheme.scheme !== sig.sigAlg || scheme.hashAlg !== sig.hashAlg)
  )
    return {
      ok: false,
      info,
      failure: {
        code: 'signature-scheme-mismatch',
        detail: `signature is ${info.sigAlg}/${info.hashAlg}, the AK's scheme is ${tpmAlgName(scheme.scheme)}/${tpmAlgName(scheme.hashAlg ?? 0)}`,
      },
    };
  const invalid: QuoteFailure = {
    code: 'signature-invalid',
    detail: `${info.sigAlg} signature does not verify`,
  };
  if (sig.sigAlg === TPM_ALG.RSASSA || sig.sigAlg === TPM_ALG.RSAPSS) {
    if (ak.keyType !== 'rsa')
      return {
        ok: false,
        info,
        failure: { code: 'signature-scheme-mismatch', detail: 'RSA signature, ECC AK' },
      };
    if (sig.sigAlg === TPM_ALG.RSASSA) {
      // a bare KeyObject means PKCS#1 v1.5 for RSA; an options object costs a third of a verify
      const ok = safeVerify(algo.node, message, ak.key, sig.sig);
      return ok ? { ok, info } : { ok, info, failure: invalid };
    }
    const modBytes = Math.ceil((ak.key.asymmetricKeyDetails?.modulusLength ?? sig.sig.length * 8) / 8);
    const maxSalt = modBytes - algo.size - 2;
    for (const saltLength of [algo.size, maxSalt]) {
      const o = { key: ak.key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength };
      if (safeVerify(algo.node, message, o, sig.sig))
        return { ok: true, info: { ...info, pssSaltLength: saltLength } };
    }
    const auto = {
      key: ak.key,
      padding: constants.RSA_PKCS1_PSS_PADDING,
      saltLength: constants.RSA_PSS_SALTLEN_AUTO,
    };
    if (safeVerify(algo.node, message, auto, sig.sig))
      return { ok: true, info: { ...info, pssSaltLength: 'auto' } };
    return { ok: false, info, failure: invalid };
  }
  if (sig.sigAlg === TPM_ALG.ECDSA) {
    if (ak.keyType !== 'ecc')
      return {
        ok: false,
        info,
        failure: { code: 'signature-scheme-mismatch', detail: 'ECDSA signature, RSA AK' },
      };
    const n = ak.eccSize;
    if (sig.r.length > n || sig.s.length > n)
      return {
        ok: false,
        info,
        failure: { code: 'signature-malformed', detail: `r or s longer than ${n} bytes` },
      };
    // DER-encode r and s here: a bare KeyObject verifies faster than {dsaEncoding: 'ieee-p1363'}
    const ok = safeVerify(algo.node, message, ak.key, ecdsaDer(sig.r, sig.s));
    return ok ? { ok, info } : { ok, info, failure: invalid };
  }
  return {
    ok: false,
    info,
    failure: {
      code: 'signature-unsupported',
      detail: `${info.sigAlg} signatures are not verified by imakit`,
    },
  };
}

function safeVerify(
  alg: string,
  msg: Uint8Array,
  key: Parameters<typeof cryptoVerify>[2],
  sig: Uint8Array,
): boolean {
  try {
    return cryptoVerify(alg, msg, key, sig);
  } catch {
    // OpenSSL raises for a signature of the wrong length; that is an invalid signature, not misuse.
    return false;
  }
}

function pcrDigest(
  sel: PcrSelection,
  pcrs: PcrValues,
  hashAlg: number,
  fail: (c: QuoteFailureCode, d: string) => void,
): { digest: Uint8Array; used: Map<string, Map<number, Uint8Array>> } | undefined {
  const algo = hashAlgoByTpmAlg(hashAlg);
  if (!algo?.node) return undefined; // already reported with the signature
  const parts: Uint8Array[] = [];
  let total = 0;
  const used = new Map<string, Map<number, Uint8Array>>();
  let ok = true;
  for (const bank of sel) {
    const ba = hashAlgoByTpmAlg(bank.hashAlg);
    if (!ba) {
      fail('pcr-bank-unknown', `the quote selects bank ${tpmAlgName(bank.hashAlg)}`);
      ok = false;
      continue;
    }
    if (used.has(ba.name)) {
      fail('pcr-bank-duplicate', `the quote selects bank ${ba.name} twice`);
      ok = false;
      continue;
    }
    const m = new Map<number, Uint8Array>();
    used.set(ba.name, m);
    const vals = pcrs.get(ba.name);
    for (const idx of bank.pcrs) {
      const v = vals?.get(idx);
      if (!v) {
        fail('pcr-value-missing', `no value supplied for quoted PCR ${ba.name}:${idx}`);
        ok = false;
        continue;
      }
      if (v.length !== ba.size) {
        fail('pcr-value-size', `${ba.name}:${idx} has ${v.length} bytes, expected ${ba.size}`);
        ok = false;
        continue;
      }
      parts.push(v);
      total += v.length;
      m.set(idx, v);
    }
  }
  if (!ok) return undefined;
  // One-shot hash of the concatenation: a Hash object with an update per PCR costs more than
  // the copy (this runs once per quote, next to a 30-40 µs RSA verify).
  const all = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    all.set(p, o);
    o += p.length;
  }
  const d = oneShotHash(algo.node, all, 'buffer');
  return { digest: new Uint8Array(d.buffer, d.byteOffset, d.length), used };
}

function checkRequired(
  sel: PcrSelection,
  require: PcrSelection | undefined,
  fail: (c: QuoteFailureCode, d: string) => void,
): boolean {
  if (!require) return true;
  const missing: string[] = [];
  for (const rb of require)
    for (const idx of rb.pcrs) {
      const quoted = sel.some((b) => b.hashAlg === rb.hashAlg && b.pcrs.includes(idx));
      if (!quoted) missing.push(`${bankName(rb.hashAlg)}:${idx}`);
    }
  if (missing.length > 0) fail('required-pcr-not-quoted', `the signed selection omits ${missing.join(', ')}`);
  return missing.length === 0;
}

function checkClock(
  cur: TpmsAttest,
  previousBytes: Uint8Array,
  obfuscated: boolean | undefined,
  fail: (c: QuoteFailureCode, d: string) => void,
): boolean {
  let prev: TpmsAttest;
  try {
    prev = decodeTpmsAttest(previousBytes);
  } catch (e) {
    if (!isImakitError(e)) throw e;
    fail('previous-malformed', e.message);
    return false;
  }
  if (prev.magic !== TPM_GENERATED_VALUE || prev.type !== TPM_ST.ATTEST_QUOTE) {
    fail('previous-malformed', 'the previous attestation is not a TPM quote');
    return false;
  }
  if (!bytesEqual(prev.qualifiedSigner, cur.qualifiedSigner)) {
    fail('previous-other-signer', 'the previous quote was signed by another key (qualifiedSigner differs)');
    return false;
  }
  const a = prev.clockInfo;
  const b = cur.clockInfo;
  let ok = true;
  if (!obfuscated) {
    if (b.resetCount < a.resetCount) {
      fail('reset-count-decreased', `resetCount ${b.resetCount} < previous ${a.resetCount}`);
      return false;
    }
    if (b.resetCount === a.resetCount && b.restartCount < a.restartCount) {
      fail('restart-count-decreased', `restartCount ${b.restartCount} < previous ${a.restartCount}`);
      ok = false;
    }
  }
  // Within one reset (and one restart) Clock only advances: it goes back only after an
  // unorderly shutdown, which is itself a reset.
  if (b.resetCount === a.resetCount && b.restartCount === a.restartCount) {
    if (b.clock < a.clock) {
      fail('clock-went-backwards', `clock ${b.clock} < previous ${a.clock} within the same reset`);
      ok = false;
    } else if (b.clock === a.clock) {
      fail('clock-repeated', `clock ${b.clock} equals the previous quote's within the same reset`);
      ok = false;
    }
  }
  return ok;
}

/**
 * Load an AK given as a TPM2B_PUBLIC (`tpm2_createak -u`), a bare TPMT_PUBLIC
 * (`tpm2_readpublic -f tpmt`), or a PEM/DER public key, and prepare it.
 * @throws ImakitError E_KEY_PARSE naming why none of the forms fit
 */
export function loadQuoteAk(data: Uint8Array): QuoteAk {
  const reasons: string[] = [];
  for (const [form, dec] of [
    ['TPM2B_PUBLIC', decodeTpm2bPublic],
    ['TPMT_PUBLIC', decodeTpmtPublic],
  ] as const) {
    try {
      return prepareQuoteAk(dec(data));
    } catch (e) {
      if (!isImakitError(e)) throw e;
      reasons.push(`${form}: ${e.detail}`);
    }
  }
  try {
    const k = loadPublicKey(data).keyObject;
    if (k) return prepareQuoteAk(k);
    reasons.push('PEM/DER: key type unusable for quotes');
  } catch (e) {
    if (!isImakitError(e) && !(e instanceof TypeError)) throw e;
    reasons.push(`PEM/DER: ${e instanceof Error ? (isImakitError(e) ? e.detail : e.message) : String(e)}`);
  }
  throw new ImakitError(
    'E_KEY_PARSE',
    `not a TPM2B_PUBLIC, TPMT_PUBLIC or public key (${reasons.join('; ')})`,
  );
}

/** DER ECDSA-Sig-Value of big-endian r and s (each at most 80 bytes, so lengths fit one byte). */
function ecdsaDer(r: Uint8Array, s: Uint8Array): Uint8Array {
  const ri = derInt(r);
  const si = derInt(s);
  const body = 4 + ri.len + si.len;
  const out = new Uint8Array(body < 128 ? 2 + body : 3 + body);
  let o = 0;
  out[o++] = 0x30;
  if (body >= 128) out[o++] = 0x81;
  out[o++] = body;
  for (const [x, d] of [
    [r, ri],
    [s, si],
  ] as const) {
    out[o++] = 0x02;
    out[o++] = d.len;
    if (d.pad) out[o++] = 0;
    out.set(x.subarray(d.skip), o);
    o += x.length - d.skip;
  }
  return out;
}

function derInt(x: Uint8Array): { skip: number; pad: boolean; len: number } {
  let skip = 0;
  while (skip < x.length - 1 && x[skip] === 0) skip++;
  const pad = x.length === 0 || (x[skip]! & 0x80) !== 0;
  return { skip, pad, len: x.length - skip + (pad ? 1 : 0) };
}
