/**
 * Diagnosis of a replay that did not match (issue 4 §3): say WHERE and WHY, never only "mismatch".
 *
 * Findings, strongest first: the first entry whose template data does not hash to its listed
 * digest (and whether the digest column or the data was altered: replaying with the listed
 * digests tells them apart); entries that name a PCR no other entry uses; a duplicated entry (the
 * kernel never records the same template digest twice on a PCR, formats.md §1.7, pitfall 11); a
 * boot_aggregate that is not first; a template name that does not fit its data; a list cut short
 * or running ahead of the quoted PCR (the matching prefix).
 */
import { toHex } from '../bytes/bytes.ts';
import type { BankOutcome, DigestMismatch } from './replay.ts';

/** One finding. */
export interface Diagnosis {
  readonly kind:
    | 'template-digest'
    | 'unexpected-pcr'
    | 'duplicate-entry'
    | 'boot-aggregate-position'
    | 'template-layout'
    | 'unknown-template'
    | 'list-ahead'
    | 'list-short'
    | 'quirk'
    | 'byte-order'
    | 'ascii-binary-differ';
  /** entry index the finding is about */
  readonly entry?: number;
  readonly offset?: number;
  /** field or column that differs */
  readonly field?: string;
  readonly expected?: string;
  readonly actual?: string;
  readonly detail: string;
}

/** Structural facts gathered while scanning a list (verify.ts). */
export interface ListFacts {
  /** first entry per PCR index */
  readonly pcrFirst: ReadonlyMap<number, { index: number; offset: number; count: number }>;
  /** entries whose name is boot_aggregate */
  readonly bootAggregates: readonly number[];
  /** first duplicate found: [first index, duplicate index, offset] */
  readonly duplicate?: { first: number; index: number; offset: number };
  readonly layoutErrors: readonly { index: number; offset: number; templateName: string; detail: string }[];
  readonly unknownTemplates: readonly { index: number; offset: number; templateName: string }[];
  readonly entries: number;
}

/**
 * Build findings from the replay outcome and list facts.
 * @param listedReplay outcome of the replay that used the LISTED digests (undefined when no digest mismatched)
 */
export function diagnose(
  outcome: readonly BankOutcome[],
  mismatches: readonly DigestMismatch[],
  facts: ListFacts,
  listedReplay?: readonly BankOutcome[],
): Diagnosis[] {
  const out: Diagnosis[] = [];
  const failed = outcome.some((b) => b.pcrs.some((p) => p.status === 'mismatch'));
  const first = mismatches[0];
  if (first) {
    const listedOk =
      listedReplay !== undefined &&
      listedReplay.every((b) =>
        b.pcrs.every((p) => p.status === 'match' || p.status === 'prefix' || p.status === 'unchecked'),
      );
    const field = failed && listedOk ? 'template data' : !failed ? 'template digest' : 'template data';
    out.push({
      kind: 'template-digest',
      entry: first.index,
      offset: first.offset,
      field,
      expected: toHex(first.listed),
      actual: toHex(first.computed),
      detail:
        `entry ${first.index}: the template data hashes (${first.bank}) to ${toHex(first.computed)} but the list says ${toHex(first.listed)}; ` +
        (field === 'template digest'
          ? 'the data still replays to the PCR, so the listed digest column was altered'
          : 'the template data (a field of this entry) was altered after it was measured') +
        (mismatches.length > 1 ? ` (${mismatches.length} entries differ in all)` : ''),
    });
  }
  for (const b of outcome)
    for (const p of b.pcrs) {
      if (p.status === 'prefix')
        out.push({
          kind: 'list-ahead',
          entry: (p.matchedThrough ?? -1) + 1,
          detail: `${b.bank} PCR ${p.pcr}: entries up to ${p.matchedThrough} replay to the given value; the ${facts.entries - 1 - (p.matchedThrough ?? -1)} later entries were added after the PCR was read`,
        });
      if (p.status === 'unchecked' && facts.pcrFirst.get(p.pcr)) {
        const f = facts.pcrFirst.get(p.pcr)!;
        const others = b.pcrs.filter((q) => q.status !== 'unchecked').map((q) => q.pcr);
        if (others.length > 0)
          out.push({
            kind: 'unexpected-pcr',
            entry: f.index,
            offset: f.offset,
            field: 'pcr',
            actual: String(p.pcr),
            detail: `entry ${f.index} (and ${f.count - 1} more) names ${b.bank} PCR ${p.pcr}, for which no value was given; the checked PCRs are ${others.join(', ')}`,
          });
      }
    }
  if (facts.duplicate)
    out.push({
      kind: 'duplicate-entry',
      entry: facts.duplicate.index,
      offset: facts.duplicate.offset,
      detail: `entry ${facts.duplicate.index} repeats entry ${facts.duplicate.first} (same PCR and template digest); the kernel never records a duplicate`,
    });
  const ba = facts.bootAggregates;
  if (facts.entries > 0 && (ba.length === 0 || ba[0] !== 0))
    out.push({
      kind: 'boot-aggregate-position',
      entry: ba[0] ?? 0,
      detail:
        ba.length === 0
          ? 'the list has no boot_aggregate entry'
          : `the first boot_aggregate is entry ${ba[0]}, not entry 0 (entries reordered or dropped)`,
    });
  for (const l of facts.layoutErrors.slice(0, 4))
    out.push({
      kind: 'template-layout',
      entry: l.index,
      offset: l.offset,
      field: 'template name',
      actual: l.templateName,
      detail: `entry ${l.index}: data does not fit template '${l.templateName}': ${l.detail}`,
    });
  for (const u of facts.unknownTemplates.slice(0, 4))
    out.push({
      kind: 'unknown-template',
      entry: u.index,
      offset: u.offset,
      field: 'template name',
      actual: u.templateName,
      detail: `entry ${u.index}: unknown template '${u.templateName}' (replayed by hashing its raw data; fields not interpreted; the name is not covered by the digest)`,
    });
  if (failed && !first) {
    const bad = outcome.flatMap((b) =>
      b.pcrs.filter((p) => p.status === 'mismatch').map((p) => `${b.bank} PCR ${p.pcr}`),
    );
    out.push({
      kind: 'list-short',
      entry: facts.entries,
      detail:
        `every template digest is valid but no prefix of the ${facts.entries} entries replays to ${bad.join(', ')}: ` +
        'the list is cut short (the PCR covers entries not in it), or entries were dropped, reordered or extended into another PCR/bank',
    });
  }
  return out;
}
