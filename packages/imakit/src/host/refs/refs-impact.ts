/**
 * Impact of a new reference set on a fleet (issue 12 part 4): evaluate each machine's recent list
 * against the set and say which machines would fail and because of which entries. Lists are read
 * one at a time (memory: one list). Also learns references from a list file (`refs from-list`).
 */
import { basename } from 'node:path';
import { withPath } from '../../errors.ts';
import { evaluateEntries, type EntryVerdict, type EvaluationSummary } from '../../core/refs/evaluate.ts';
import { referencesFromEntries, type FromListResult } from '../../core/refs/from-list.ts';
import type { ReferenceSet } from '../../core/refs/reference-set.ts';
import type { BootAggregateValue } from '../../core/tcg/boot-aggregate.ts';
import { computeBootAggregates } from '../../core/tcg/boot-aggregate.ts';
import { replayEventLog } from '../../core/tcg/replay.ts';
import { loadListFile, readEventLogFile, readPcrOptions } from '../attest/attest-input.ts';

export interface MachineImpact {
  readonly list: string;
  readonly machine: string;
  readonly status: 'pass' | 'fail';
  readonly summary: EvaluationSummary;
  /** the refused entries (all of them) */
  readonly refused: readonly EntryVerdict[];
}

/** Evaluate every list against `set`. @throws ImakitError for an unreadable or malformed list */
export function impactOfSet(set: ReferenceSet, lists: readonly string[]): MachineImpact[] {
  return lists.map((list) => {
    const l = loadListFile(list);
    const ev = withPath(list, () => evaluateEntries(l.entries, set, { endian: l.format.endian }));
    return {
      list,
      machine: basename(list),
      status: ev.summary.refused === 0 ? 'pass' : 'fail',
      summary: ev.summary,
      refused: ev.verdicts,
    };
  });
}

export interface FromListFileOptions {
  readonly algo?: string;
  /** a TCG event log whose boot PCRs give the boot_aggregate values */
  readonly eventlog?: string;
  /** PCR files (`[ALG,]FILE`) whose PCRs 0-9 give the boot_aggregate values */
  readonly pcrs?: readonly string[];
}

/** Learn a reference set from a list file (+ boot_aggregate from an event log or PCR files). */
export function referencesFromListFile(list: string, o: FromListFileOptions = {}): FromListResult {
  const l = loadListFile(list);
  let boot: BootAggregateValue[] = [];
  if (o.eventlog !== undefined)
    boot = computeBootAggregates(replayEventLog(readEventLogFile(o.eventlog)).pcrs);
  else if (o.pcrs !== undefined && o.pcrs.length > 0) {
    const pcrs = readPcrOptions(o.pcrs, []);
    if (pcrs) boot = computeBootAggregates(pcrs);
  }
  return withPath(list, () =>
    referencesFromEntries(l.entries, {
      endian: l.format.endian,
      provenance: { kind: 'list', source: basename(list) },
      bootAggregates: boot,
      ...(o.algo !== undefined ? { algo: o.algo } : {}),
    }),
  );
}
