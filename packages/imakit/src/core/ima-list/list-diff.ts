/**
 * Compare two measurement lists entry by entry: how much is equal from the start, whether one is a
 * later read of the other (same boot), and which fields differ where they diverge.
 */
import { toHex } from '../bytes/bytes.ts';
import { renderAsciiEntry } from './ascii.ts';
import type { UntrustedEntry } from './binary.ts';
import type { LoadedList } from './list-form.ts';
import { lookupTemplate } from './templates.ts';
import { findBootAggregateClaims } from '../tcg/boot-aggregate.ts';

/** At most this many field differences are reported. */
export const MAX_LIST_DIFFERENCES = 50;

/** The result of {@link diffLists}. */
export interface ListDiff {
  identical: boolean;
  a: { path: string; entries: number };
  b: { path: string; entries: number };
  /** entries equal from the start */
  commonPrefix: number;
  relation: 'identical' | 'a-prefix-of-b' | 'b-prefix-of-a' | 'diverge';
  /** entries at the same index (below the shorter length) that differ */
  differingEntries: number;
  /**
   * the boot_aggregate claims of the two lists' first entries: 'different' means different boots
   * (or TPMs); 'same' with differing entries means the same boot and changed entries
   */
  bootAggregate: 'same' | 'different' | 'absent';
  differences: { entry: number; field: string; a: string; b: string }[];
}

const same = (x: UntrustedEntry, y: UntrustedEntry): boolean =>
  x.pcr === y.pcr &&
  x.templateName === y.templateName &&
  toHex(x.digest) === toHex(y.digest) &&
  toHex(x.templateData) === toHex(y.templateData);

/**
 * Diff two lists. Differing template data is reported per template field (by the rendered ascii
 * field) when the template is known, else as the whole template data.
 */
export function diffLists(a: LoadedList, b: LoadedList): ListDiff {
  const n = Math.min(a.entries.length, b.entries.length);
  let common = 0;
  while (common < n && same(a.entries[common]!, b.entries[common]!)) common++;
  const differences: ListDiff['differences'] = [];
  for (let i = common; i < n && differences.length < MAX_LIST_DIFFERENCES; i++) {
    const x = a.entries[i]!;
    const y = b.entries[i]!;
    if (x.pcr !== y.pcr) differences.push({ entry: i, field: 'pcr', a: String(x.pcr), b: String(y.pcr) });
    if (toHex(x.digest) !== toHex(y.digest))
      differences.push({ entry: i, field: 'template digest', a: toHex(x.digest), b: toHex(y.digest) });
    if (x.templateName !== y.templateName)
      differences.push({ entry: i, field: 'template name', a: x.templateName, b: y.templateName });
    else if (toHex(x.templateData) !== toHex(y.templateData)) {
      const ra = renderAsciiEntry(x, a.format.endian).split(' ');
      const rb = renderAsciiEntry(y, b.format.endian).split(' ');
      const tpl = lookupTemplate(x.templateName);
      let named = false;
      if (tpl && !tpl.legacy && ra.length === rb.length)
        tpl.fields.forEach((fid, k) => {
          if (ra[3 + k] !== rb[3 + k]) {
            differences.push({ entry: i, field: fid, a: ra[3 + k] ?? '', b: rb[3 + k] ?? '' });
            named = true;
          }
        });
      if (!named)
        differences.push({
          entry: i,
          field: 'template data',
          a: toHex(x.templateData),
          b: toHex(y.templateData),
        });
    }
  }
  let differingEntries = 0;
  for (let i = common; i < n; i++) if (!same(a.entries[i]!, b.entries[i]!)) differingEntries++;
  const claim = (l: LoadedList): string | undefined => {
    const c = findBootAggregateClaims(l.entries.slice(0, 1), l.format.endian)[0];
    return c ? `${c.algo}:${toHex(c.digest)}` : undefined;
  };
  const ca = claim(a);
  const cb = claim(b);
  const bootAggregate = ca === undefined || cb === undefined ? 'absent' : ca === cb ? 'same' : 'different';
  const relation =
    common === a.entries.length && common === b.entries.length
      ? 'identical'
      : common === a.entries.length
        ? 'a-prefix-of-b'
        : common === b.entries.length
          ? 'b-prefix-of-a'
          : 'diverge';
  return {
    identical: relation === 'identical',
    a: { path: a.path, entries: a.entries.length },
    b: { path: b.path, entries: b.entries.length },
    commonPrefix: common,
    relation,
    differingEntries,
    bootAggregate,
    differences,
  };
}
