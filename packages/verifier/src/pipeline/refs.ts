/**
 * Step 4, references: every covered new entry evaluated against the agent's reference set (core
 * RefsEvaluator), carrying the keys learned from earlier entries of the same boot. The first
 * refused entry is the failure: its index, byte offset, path, the digests the set allows for the
 * path (expected) and the digest measured (actual), and what would make it pass.
 *
 * Establishes only what the evaluator establishes: the entries (already bound to the quote by the
 * ima step) are allowed by the set. Does NOT establish that the set itself is trustworthy.
 */
import {
  RefsEvaluator,
  newCursor,
  scanEntry,
  toHex,
  type EntryCursor,
  type EntryVerdict,
  type EvaluationState,
  type ListFormat,
  type ReferenceSet,
} from 'imakit/core';
import { isImakitError } from 'imakit/errors';
import type { CoveredEntry } from './ima.ts';
import type { StepResult } from './types.ts';

export interface RefsStepResult extends StepResult {
  /** the evaluation state to store when the verdict passes */
  readonly state?: EvaluationState;
}

/** Most refused entries listed in one verdict (the count is always given). */
export const MAX_LISTED_REFUSALS = 20;

const FIX: Readonly<Record<string, (v: EntryVerdict) => string>> = Object.freeze({
  'unknown-path': (v) => `add ${v.path} with ${v.algo}:${v.digest} to the reference set, or exclude it`,
  'digest-not-allowed': (v) =>
    `add ${v.algo}:${v.digest} to ${v.path}'s allowed digests if this version is approved`,
  'unknown-key': (v) => `add the signing key ${v.keyId} to the reference set, or the file's digest`,
  'bad-signature': () =>
    'the file signature does not verify under the key the set names: the file was altered',
  'template-not-interpreted': () => 'use a template with a file name and digest (ima-ng, ima-sig)',
  violation: () => 'a file was measured while open for writing (ToMToU/open-writers): find the writer',
});

/** Evaluate the covered entries. Pure; never throws for bad evidence. */
export function refsStep(
  set: ReferenceSet | undefined,
  prior: EvaluationState | undefined,
  covered: readonly CoveredEntry[],
  bytes: Uint8Array,
  format: ListFormat,
): RefsStepResult {
  if (set === undefined)
    return {
      verdict: { step: 'refs', status: 'skipped', detail: 'the agent has no reference set' },
      notEstablished: ['that the measured files are acceptable: the agent has no reference set'],
    };
  const ev = new RefsEvaluator(set, { endian: format.endian, ...(prior !== undefined && { state: prior }) });
  const offsets = new Map<number, number>();
  const c = newCursor();
  try {
    for (const e of covered) {
      offsets.set(e.index, e.offset);
      scanCursor(bytes, e, format, c);
      ev.feedCursor(c);
    }
  } catch (e) {
    if (!isImakitError(e)) throw e;
    return {
      verdict: { step: 'refs', status: 'fail', detail: e.message },
      failure: {
        step: 'refs',
        code: e.code === 'E_REFS_ALGO_MISMATCH' ? 'refs-algo-mismatch' : 'refs-unusable',
        cause: e.code,
        message: e.message,
        fix: 'use a reference set built for this kernel’s file hash algorithm',
      },
      notEstablished: ['that the measured files are acceptable'],
    };
  }
  const s = ev.summary();
  const refused = ev.verdicts.filter((v) => v.status === 'refused');
  const notEstablished = [...s.notEstablished];
  if (refused.length === 0)
    return {
      verdict: {
        step: 'refs',
        status: 'pass',
        detail: `${s.entries} new entries allowed by the reference set`,
        byReason: nonZero(s.byReason),
      },
      notEstablished,
      state: ev.state(),
    };
  const first = refused[0]!;
  const allowed = set.digests.get(first.path);
  return {
    verdict: {
      step: 'refs',
      status: 'fail',
      detail: `${refused.length} of ${s.entries} new entries refused; first: entry ${first.index} ${first.path} (${first.reason})`,
      refused: refused.slice(0, MAX_LISTED_REFUSALS).map((v) => ({
        entry: v.index,
        offset: offsets.get(v.index),
        path: v.path,
        reason: v.reason,
        ...(v.digest !== undefined && { actual: `${v.algo}:${v.digest}` }),
      })),
      refusedCount: refused.length,
    },
    failure: {
      step: 'refs',
      code: first.reason,
      message: `entry ${first.index} (${first.path}) is refused by the reference set: ${first.detail ?? first.reason}`,
      entry: first.index,
      offset: offsets.get(first.index)!,
      path: first.path,
      expected: allowed === undefined ? null : allowed.map((d) => `${d.algo}:${toHex(d.digest)}`),
      actual: first.digest === undefined ? null : `${first.algo}:${first.digest}`,
      fix: (FIX[first.reason] ?? (() => 'update the reference set'))(first),
    },
    notEstablished,
  };
}

/** Re-read a covered entry (scanned by the ima step) into the cursor, with its absolute index. */
function scanCursor(bytes: Uint8Array, e: CoveredEntry, format: ListFormat, c: EntryCursor): void {
  scanEntry(bytes, e.start, e.end, format, e.index, e.offset - e.start, c);
  c.index = e.index;
}

function nonZero(r: Readonly<Record<string, number>>): Record<string, number> {
  return Object.fromEntries(Object.entries(r).filter(([, n]) => n > 0));
}
