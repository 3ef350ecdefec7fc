/**
 * The attestation pipeline's shapes. Each step is a pure function over the stored state and the
 * evidence (no database, no clock, no randomness): quote → boot → ima → refs, then the verdict and
 * the new state are stored together by the route (routes/attest.ts), in one transaction.
 */
import type { BootReferenceForm, EvaluationState, ListCheckpoint, PcrValues } from 'imakit/core';

export type StepName = 'quote' | 'boot' | 'ima' | 'refs';

/** One step's outcome as the verdict shows it. */
export interface StepVerdict {
  readonly step: StepName;
  readonly status: 'pass' | 'fail' | 'skipped';
  readonly detail: string;
  readonly [extra: string]: unknown;
}

/**
 * Why a verdict failed: the step, a stable code, and where: the entry index and byte offset in the
 * measurement list, the path, the expected and actual values, and what would have made it pass.
 */
export interface Failure {
  readonly step: StepName;
  readonly code: string;
  readonly message: string;
  readonly entry?: number;
  readonly offset?: number;
  readonly field?: string;
  readonly path?: string;
  readonly expected?: unknown;
  readonly actual?: unknown;
  readonly fix?: string;
  /** the decoder's own error code when the evidence was malformed */
  readonly cause?: string;
}

/** Where the next evidence continues (the challenge's `imaOffset`). */
export interface ImaOffset {
  readonly entries: number;
  readonly bytes: number;
}

export interface Verdict {
  readonly agentId: string;
  readonly at: string;
  readonly status: 'pass' | 'fail';
  readonly steps: StepVerdict[];
  readonly failure?: Failure;
  /** what this verdict does not establish, in words */
  readonly notEstablished: string[];
  readonly next: { readonly imaOffset: ImaOffset };
}

/** What the verifier keeps per agent between attestations. */
export interface StoredState {
  /** the IMA list as verified so far in this boot */
  readonly checkpoint?: ListCheckpoint;
  /** keys the reference evaluation learned in this boot */
  readonly refsState?: EvaluationState;
  /** the last verified quote of this AK (TPMS_ATTEST), for clock and reset monotonicity */
  readonly lastAttest?: Uint8Array;
  /** the TPM resetCount the checkpoint belongs to */
  readonly bootResetCount?: number;
  /** the agent's own boot counter (not covered by the quote) */
  readonly bootCount?: number;
  readonly next: ImaOffset;
}

/** Evidence after its JSON form was decoded (bytes, not yet parsed). */
export interface Evidence {
  readonly nonce: Uint8Array;
  readonly attest: Uint8Array;
  readonly signature: Uint8Array;
  readonly pcrs: PcrValues;
  readonly ima?: { readonly offsetBytes: number; readonly bytes: Uint8Array };
  readonly eventLog?: Uint8Array;
  readonly bootCount?: number;
}

/** The agent as the pipeline needs it. */
export interface AgentFacts {
  readonly id: string;
  /** TPM2B_PUBLIC of the enrolled AK */
  readonly akPublic: Uint8Array;
  /** PCR selection the quote must cover */
  readonly requirePcrs: string;
  /** the measured-boot reference the boot is compared with (none: the verdict says so) */
  readonly bootReference?: { readonly form: BootReferenceForm; readonly bytes: Uint8Array };
}

/** The result of one step: its verdict, a failure, and what it did not establish. */
export interface StepResult {
  readonly verdict: StepVerdict;
  readonly failure?: Failure;
  readonly notEstablished: readonly string[];
}
