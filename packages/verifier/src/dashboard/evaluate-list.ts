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
  /** the first stored entry's index (earlier ones are not stored), and how many are stored */
  readonly firstEntry: number;
  readonly stored: number;
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
      firstEntry: list.firstEntry,
      stored: list.entries,
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
    firstEntry: list.firstEntry,
    stored: list.entries,
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

/**
 * Evaluations of stored lists kept per app (not per module): paging and searching one agent's
 * 100,000-entry list evaluates it once, not once per page. Keyed by the agent, the set and a digest
 * of the stored chunks (so a list that changed is evaluated again); at most `max` lists are kept.
 */
export class ListEvaluationCache {
  readonly #max: number;
  readonly #byKey = new Map<string, ListEvaluation>();
  constructor(max = 2) {
    this.#max = max;
  }
  async get(
    key: string,
    compute: () => Promise<ListEvaluation | undefined>,
  ): Promise<ListEvaluation | undefined> {
    let hit = this.#byKey.get(key);
    if (hit !== undefined) this.#byKey.delete(key);
    else hit = await compute();
    if (hit === undefined) return undefined;
    this.#byKey.set(key, hit);
    while (this.#byKey.size > this.#max) this.#byKey.delete(this.#byKey.keys().next().value!);
    return hit;
  }
}
