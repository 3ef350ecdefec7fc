/**
 * A stored IMA list evaluated against a reference set, from its first stored entry with no learned
 * keys carried in (a fresh evaluation, as after a reboot): the agent page's per-entry verdicts and
 * the impact preview of a set an agent does not hold yet. Pure.
 *
 * Does NOT establish what the agent's next attestation will conclude for entries it has not sent
 * yet, nor keys learned before the first stored entry (a list stored from byte 0 has none).
 */
import { RefsEvaluator, type EntryVerdict, type ReferenceSet } from 'imakit/core';

type Provenance = ReferenceSet['provenances'][number];
import { isImakitError } from 'imakit/errors';
import { storedEntries, type StoredList } from './evidence-store.ts';

export interface ListEvaluation {
  /** a verdict per entry (keepAll) or the refused ones only */
  readonly verdicts: readonly EntryVerdict[];
  /** absolute byte offset of each evaluated entry, by index */
  readonly offsets: ReadonlyMap<number, number>;
  readonly entries: number;
  readonly refused: number;
  /** the evaluator refused the whole set (e.g. E_REFS_ALGO_MISMATCH): its code and message */
  readonly unusable?: { readonly code: string; readonly message: string };
  readonly notEstablished: readonly string[];
}

export function evaluateStoredList(set: ReferenceSet, list: StoredList, keepAll: boolean): ListEvaluation {
  const ev = new RefsEvaluator(set, { endian: list.format.endian, keepAll });
  const offsets = new Map<number, number>();
  const notEstablished: string[] = [];
  if (list.firstEntry > 0)
    notEstablished.push(
      `entries before ${list.firstEntry} are not stored: keys they put on keyrings were not learned`,
    );
  try {
    for (const c of storedEntries(list)) {
      offsets.set(c.index, c.offset);
      ev.feedCursor(c);
    }
  } catch (e) {
    if (!isImakitError(e)) throw e;
    return {
      verdicts: [],
      offsets,
      entries: offsets.size,
      refused: 0,
      unusable: { code: e.code, message: e.message },
      notEstablished,
    };
  }
  const s = ev.summary();
  return {
    verdicts: ev.verdicts,
    offsets,
    entries: s.entries,
    refused: s.refused,
    notEstablished: [...notEstablished, ...s.notEstablished],
  };
}

/** A provenance as the API shows it (only the fields that are known). */
export function provenanceView(p: Provenance | undefined): Record<string, string> | null {
  if (p === undefined) return null;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(p)) if (typeof v === 'string') out[k] = v;
  return out;
}
