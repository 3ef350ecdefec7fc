/**
 * Differences between two reference sets, by package (issue 12 part 4): which paths were added,
 * removed or changed (their allowed digests differ), grouped under the provenance that explains
 * them (`deb:name`, `rpm:name`, `oci:image`, `rootfs`, ...), so an update can be reviewed per package
 * before it is rolled out.
 */
import { toHex } from '../bytes/bytes.ts';
import type { DigestRef, Provenance, ReferenceSet } from './reference-set.ts';

export interface PathChange {
  readonly path: string;
  /** allowed digests before / after, `algo:hex` */
  readonly before: readonly string[];
  readonly after: readonly string[];
}

export interface PackageDiff {
  /** `kind:name` (packages), `oci:image`, or the kind alone */
  readonly package: string;
  /** versions seen before / after */
  readonly before: readonly string[];
  readonly after: readonly string[];
  readonly added: readonly string[];
  readonly removed: readonly string[];
  readonly changed: readonly PathChange[];
}

export interface RefsDiff {
  readonly added: number;
  readonly removed: number;
  readonly changed: number;
  readonly unchanged: number;
  readonly packages: readonly PackageDiff[];
  /** excludes, keys and boot_aggregate values that differ */
  readonly other: readonly string[];
}

/** A package key: what a provenance names, without the version. */
export function packageKey(p: Provenance | undefined): string {
  if (!p) return 'unknown';
  if (p.name !== undefined) return `${p.kind}:${p.name}${p.arch ? `:${p.arch}` : ''}`;
  if (p.image !== undefined) return `${p.kind}:${p.image}`;
  return p.kind;
}

const refText = (r: DigestRef): string => `${r.algo}:${toHex(r.digest)}`;

function texts(refs: readonly DigestRef[] | undefined): string[] {
  return refs ? [...new Set(refs.map(refText))].sort() : [];
}

interface Acc {
  before: Set<string>;
  after: Set<string>;
  added: string[];
  removed: string[];
  changed: PathChange[];
}

/** Compare `a` (old) with `b` (new); paths are walked in merged sorted order, once. */
export function diffReferenceSets(a: ReferenceSet, b: ReferenceSet): RefsDiff {
  const pk = new Map<string, Acc>();
  const acc = (k: string): Acc => {
    let x = pk.get(k);
    if (!x) pk.set(k, (x = { before: new Set(), after: new Set(), added: [], removed: [], changed: [] }));
    return x;
  };
  const pkgOf = (s: ReferenceSet, refs: readonly DigestRef[] | undefined): string =>
    packageKey(refs && refs.length > 0 ? s.provenances[refs[0]!.provenance] : undefined);
  const versions = (s: ReferenceSet, refs: readonly DigestRef[] | undefined, into: Set<string>): void => {
    for (const r of refs ?? []) {
      const v = s.provenances[r.provenance]?.version;
      if (v !== undefined) into.add(v);
    }
  };
  let added = 0;
  let removed = 0;
  let changed = 0;
  let unchanged = 0;
  const ia = a.digests.paths();
  const ib = b.digests.paths();
  let na = ia.next();
  let nb = ib.next();
  const cmp = (x: string, y: string): number => Buffer.compare(Buffer.from(x), Buffer.from(y));
  while (!na.done || !nb.done) {
    const c = na.done ? 1 : nb.done ? -1 : cmp(na.value, nb.value);
    if (c < 0) {
      const refs = a.digests.get(na.value as string);
      const x = acc(pkgOf(a, refs));
      versions(a, refs, x.before);
      x.removed.push(na.value as string);
      removed++;
      na = ia.next();
    } else if (c > 0) {
      const refs = b.digests.get(nb.value as string);
      const x = acc(pkgOf(b, refs));
      versions(b, refs, x.after);
      x.added.push(nb.value as string);
      added++;
      nb = ib.next();
    } else {
      const path = na.value as string;
      const ra = a.digests.get(path);
      const rb = b.digests.get(path);
      const ta = texts(ra);
      const tb = texts(rb);
      const x = acc(pkgOf(b, rb));
      versions(a, ra, x.before);
      versions(b, rb, x.after);
      if (ta.length !== tb.length || ta.some((t, i) => t !== tb[i])) {
        x.changed.push({ path, before: ta, after: tb });
        changed++;
      } else unchanged++;
      na = ia.next();
      nb = ib.next();
    }
  }
  const other: string[] = [];
  const setOf = (xs: readonly string[]): Set<string> => new Set(xs);
  const cmpSets = (what: string, xa: readonly string[], xb: readonly string[]): void => {
    const sa = setOf(xa);
    const sb = setOf(xb);
    for (const x of sb) if (!sa.has(x)) other.push(`${what} added: ${x}`);
    for (const x of sa) if (!sb.has(x)) other.push(`${what} removed: ${x}`);
  };
  cmpSets(
    'exclude',
    a.excludes.map((e) => `${e.anchor}:${e.pattern}`),
    b.excludes.map((e) => `${e.anchor}:${e.pattern}`),
  );
  cmpSets(
    'key',
    a.keys.map((k) => `${k.keyring}:${k.keyId.toString(16).padStart(8, '0')}`),
    b.keys.map((k) => `${k.keyring}:${k.keyId.toString(16).padStart(8, '0')}`),
  );
  cmpSets(
    'boot_aggregate',
    a.bootAggregates.map((x) => `${x.algo}:${toHex(x.digest)}`),
    b.bootAggregates.map((x) => `${x.algo}:${toHex(x.digest)}`),
  );
  const packages = [...pk.entries()]
    .filter(([, x]) => x.added.length + x.removed.length + x.changed.length > 0)
    .sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0))
    .map(([k, x]) =>
      Object.freeze({
        package: k,
        before: [...x.before].sort(),
        after: [...x.after].sort(),
        added: x.added,
        removed: x.removed,
        changed: x.changed,
      }),
    );
  return Object.freeze({ added, removed, changed, unchanged, packages, other });
}
