/**
 * Step 1, the quote: core `verifyQuote`, strict, against the enrolled AK, the challenge's nonce,
 * the agent's required PCRs, and the previous verified quote of this AK (resetCount and
 * restartCount never decrease, the clock advances within a boot). Its output is the only source
 * of PCR values the later steps may trust: `verifiedPcrs` holds only what the signature covers.
 */
import {
  decodeTpmsAttest,
  formatPcrSelection,
  parsePcrSelectionText,
  verifyQuote,
  type ClockInfo,
} from 'imakit/core';
import { storedAkKey } from '../keylime/agent-add.ts';
import type { AgentFacts, Evidence, StepResult, StoredState } from './types.ts';

export interface QuoteStepResult extends StepResult {
  /** PCR values the quote proves (empty unless the step passed) */
  readonly verifiedPcrs: ReadonlyMap<string, ReadonlyMap<number, Uint8Array>>;
  readonly clock?: ClockInfo;
  /** the TPM was reset since the stored IMA state was taken: the list restarted */
  readonly reboot: boolean;
}

const FIX: Readonly<Record<string, string>> = Object.freeze({
  'required-pcr-not-quoted': "quote every PCR of the agent's requirePcrs (the challenge's `pcrs`)",
  'nonce-mismatch': 'quote with the nonce of the challenge being answered (qualifying data)',
  'signature-invalid': 'sign the quote with the AK enrolled for this agent (re-enrol after changing it)',
  'pcr-digest-mismatch': 'send the PCR values read in the same quote (TPM2_Quote returns them)',
  'pcr-value-missing': 'send a value for every PCR in the quote’s selection',
  'reset-count-decreased': 'the TPM counters went backwards: a different or cleared TPM, or a replayed quote',
  'clock-went-backwards': 'the TPM clock went backwards within a boot: a replayed or forged quote',
  'clock-repeated': 'the TPM clock repeated within a boot: a replayed quote',
});

/** Verify the quote. Pure; never throws for bad evidence. */
export function quoteStep(agent: AgentFacts, stored: StoredState, ev: Evidence): QuoteStepResult {
  let require;
  try {
    require = parsePcrSelectionText(agent.requirePcrs);
  } catch {
    require = undefined;
  }
  let ak;
  try {
    // a TPM2B_PUBLIC (enrolled here), or a Keylime agent's AK given as a public key (fleet add)
    ak = storedAkKey(agent.akPublic);
  } catch (e) {
    return {
      verdict: { step: 'quote', status: 'fail', detail: 'the enrolled AK cannot be used' },
      failure: {
        step: 'quote',
        code: 'ak-unusable',
        message: `the enrolled AK cannot be used: ${(e as Error).message}`,
        fix: 're-enrol the agent with a restricted signing AK',
      },
      notEstablished: [],
      verifiedPcrs: new Map(),
      reboot: false,
    };
  }
  const v = verifyQuote(ak, {
    attest: ev.attest,
    signature: ev.signature,
    nonce: ev.nonce,
    pcrs: ev.pcrs,
    ...(require !== undefined && { require }),
    ...(stored.lastAttest !== undefined && { previous: stored.lastAttest }),
  });
  const notEstablished = [...v.notEstablished];
  if (ak.public === undefined)
    notEstablished.push(
      'that the AK is a restricted signing key of a TPM: it was given as a bare public key, not a TPM2B_PUBLIC',
    );
  if (stored.lastAttest === undefined)
    notEstablished.push('clock and reset monotonicity: no earlier quote of this AK is stored');
  for (const pcr of v.notCovered)
    notEstablished.push(`PCR ${pcr}: a value was sent that the quote does not cover; it was not used`);
  const selection = v.quotedSelection === undefined ? undefined : formatPcrSelection(v.quotedSelection);
  if (v.status === 'fail') {
    const first = v.failures[0]!;
    let code: string = first.code;
    if (code === 'attest-malformed' || code === 'signature-malformed') code = 'evidence-malformed';
    return {
      verdict: {
        step: 'quote',
        status: 'fail',
        detail: first.detail,
        failures: v.failures,
        ...(selection !== undefined && { quoted: selection }),
      },
      failure: {
        step: 'quote',
        code,
        message: first.detail,
        ...(code === 'evidence-malformed' && {
          field: first.code === 'attest-malformed' ? 'quote.attest' : 'quote.signature',
          cause: first.code,
        }),
        ...(code === 'required-pcr-not-quoted' && { expected: agent.requirePcrs, actual: selection ?? null }),
        ...(FIX[first.code] !== undefined && { fix: FIX[first.code] }),
      },
      notEstablished,
      verifiedPcrs: new Map(),
      reboot: false,
    };
  }
  const clock = v.attest!.clockInfo;
  const reboot = stored.bootResetCount !== undefined && clock.resetCount !== stored.bootResetCount;
  return {
    verdict: {
      step: 'quote',
      status: 'pass',
      detail: `the quote of ${selection} verifies under the enrolled AK with this challenge's nonce`,
      quoted: selection,
      resetCount: clock.resetCount,
      restartCount: clock.restartCount,
      ...(reboot && { reboot: `resetCount ${stored.bootResetCount} → ${clock.resetCount}: a new boot` }),
    },
    notEstablished,
    verifiedPcrs: v.verifiedPcrs,
    clock,
    reboot,
  };
}

/** The resetCount of a stored (verified) TPMS_ATTEST. */
export function resetCountOf(attest: Uint8Array): number {
  return decodeTpmsAttest(attest).clockInfo.resetCount;
}
