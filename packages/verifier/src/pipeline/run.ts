/**
 * The verdict pipeline for one piece of evidence: quote → boot → ima → refs, each a pure function
 * over the stored state and the evidence, then the verdict and the state to store. The route
 * stores both in one transaction.
 *
 * State rules: a verified quote always becomes the AK's "previous" quote (a later quote must be
 * newer); the IMA running state, the learned keys and the boot's reset count advance only when the
 * whole verdict passes, so a refused entry is evaluated again next time (and passes once the
 * reference set is updated in place). `next` tells the agent where to continue.
 */
import type { ReferenceSet } from 'imakit/core';
import { bootStep } from './boot.ts';
import { imaStep } from './ima.ts';
import { quoteStep } from './quote.ts';
import { refsStep } from './refs.ts';
import type {
  AgentFacts,
  Evidence,
  Failure,
  StepResult,
  StepVerdict,
  StoredState,
  Verdict,
} from './types.ts';

export interface PipelineResult {
  readonly verdict: Verdict;
  readonly state: StoredState;
}

const skipped = (step: StepVerdict['step'], why: string): StepVerdict => ({
  step,
  status: 'skipped',
  detail: why,
});

/** Run the pipeline. Pure: `now` is passed in; never throws for bad evidence. */
export function runPipeline(
  agent: AgentFacts,
  stored: StoredState,
  ev: Evidence,
  set: ReferenceSet | undefined,
  now: Date,
): PipelineResult {
  const steps: StepVerdict[] = [];
  const notEstablished: string[] = [];
  let failure: Failure | undefined;
  const take = (r: StepResult): boolean => {
    steps.push(r.verdict);
    notEstablished.push(...r.notEstablished);
    if (r.failure !== undefined && failure === undefined) failure = r.failure;
    return r.failure === undefined;
  };
  if (ev.bootCount !== undefined)
    notEstablished.push(
      'the agent’s bootCount: the quote does not cover it (reboots are told by the TPM resetCount)',
    );

  const q = quoteStep(agent, stored, ev);
  const verdict = (next: StoredState['next']): Verdict =>
    Object.freeze({
      agentId: agent.id,
      at: now.toISOString(),
      status: failure === undefined ? 'pass' : 'fail',
      steps,
      ...(failure !== undefined && { failure }),
      notEstablished: [...new Set(notEstablished)],
      next: { imaOffset: next },
    });
  if (!take(q)) {
    steps.push(skipped('boot', 'not evaluated: the quote failed'));
    steps.push(skipped('ima', 'not evaluated: the quote failed'));
    steps.push(skipped('refs', 'not evaluated: the quote failed'));
    notEstablished.push('anything the quote would have proved: it failed');
    return { verdict: verdict(stored.next), state: stored };
  }
  const afterQuote: StoredState = { ...stored, lastAttest: ev.attest };
  const resetNext = q.reboot ? { entries: 0, bytes: 0 } : stored.next;

  if (!take(bootStep(ev.eventLog, q.verifiedPcrs, agent.bootReference))) {
    steps.push(skipped('ima', 'not evaluated: the boot step failed'));
    steps.push(skipped('refs', 'not evaluated: the boot step failed'));
    return { verdict: verdict(resetNext), state: { ...afterQuote, next: resetNext } };
  }
  const ima = imaStep(stored, ev.ima, q.verifiedPcrs, q.reboot);
  if (!take(ima)) {
    steps.push(skipped('refs', 'not evaluated: the ima step failed'));
    return { verdict: verdict(ima.next), state: { ...afterQuote, next: ima.next } };
  }
  const fresh = q.reboot || stored.checkpoint === undefined;
  const refs = refsStep(set, fresh ? undefined : stored.refsState, ima.covered, ima.bytes, ima.format);
  if (!take(refs)) {
    // the entries are evaluated again next time: the running state stays where it was
    const back = fresh ? { entries: 0, bytes: 0 } : stored.next;
    return { verdict: verdict(back), state: { ...afterQuote, next: back } };
  }
  return {
    verdict: verdict(ima.next),
    state: {
      ...(ima.checkpoint !== undefined
        ? { checkpoint: ima.checkpoint }
        : !fresh && stored.checkpoint !== undefined && { checkpoint: stored.checkpoint }),
      ...(refs.state !== undefined && { refsState: refs.state }),
      lastAttest: ev.attest,
      bootResetCount: q.clock!.resetCount,
      ...(ev.bootCount !== undefined && { bootCount: ev.bootCount }),
      next: ima.next,
    },
  };
}
