/**
 * A reference set: what a measurement list is allowed to contain (issue 12 part 1).
 *
 * - file digests per path, several per path, each with its algorithm, its provenance (the package,
 *   image layer, rootfs or list it came from) and, when the source carried one, the raw
 *   `security.ima` value (a signature) the package would install;
 * - allowed signing keys per keyring (key id, and the SubjectPublicKeyInfo or certificate when known);
 * - excludes: regular expressions that must match the *whole* path (imakit) or, for policies imported
 *   from Keylime, its start only (`anchor: 'prefix'`, Keylime's `re.match`), never silently mixed;
 * - `ima-buf` / critical-data references: digests per event name (`kernel_version`, dm targets, ...)
 *   and per keyring for keys measured onto `.ima` and friends (Keylime's `keyrings`);
 * - boot_aggregate values, and the file hash algorithm the set was built for.
 *
 * The set is built once (`ReferenceSetBuilder`), then frozen. Lookups go through `DigestTable`, so an
 * in-memory Map and a lazily decoded compact file (`refs-binary.ts`) serve the evaluator alike.
 * Nothing here verifies anything: evaluation (`evaluate.ts`) does, against a parsed list.
 */
import { ImakitError } from '../../errors.ts';
import { findHashAlgo } from '../hash/hash-algo.ts';

/** Where a reference came from. `kind` says the source; the other fields what is known of it. */
export type ProvenanceKind = 'deb' | 'rpm' | 'oci' | 'rootfs' | 'list' | 'keylime' | 'manual';

export interface Provenance {
  readonly kind: ProvenanceKind;
  /** package name (deb, rpm) */
  readonly name?: string;
  readonly version?: string;
  readonly arch?: string;
  /** OCI image reference or digest */
  readonly image?: string;
  /** OCI layer digest */
  readonly layer?: string;
  /** the file, directory or list the reference was read from */
  readonly source?: string;
}

/** One allowed digest of one path. */
export interface DigestRef {
  /** kernel hash algorithm name (`sha256`, `sm3`, ...) */
  readonly algo: string;
  readonly digest: Uint8Array;
  /** index into `ReferenceSet.provenances` */
  readonly provenance: number;
  /** the raw `security.ima` value shipped with the file (e.g. an rpm file signature), if any */
  readonly imaSignature?: Uint8Array;
}

/** An allowed file-signing key. Signatures by it are accepted for any path (Keylime's semantics too). */
export interface SigningKeyRef {
  /** keyring the key belongs to (`.ima`, `.builtin_trusted_keys`, `tenant`, ...) */
  readonly keyring: string;
  /** the 32-bit signature v2 key id (low bits of the SKID / SHA-1 of the public key) */
  readonly keyId: number;
  /** DER SubjectPublicKeyInfo, when the key itself is known */
  readonly spki?: Uint8Array;
  /** DER certificate, when the key came as one */
  readonly certificate?: Uint8Array;
  readonly provenance: number;
}

/**
 * An exclude. `full`: the pattern must match the whole path (imakit's semantics). `prefix`: the
 * pattern must match at the start only (Keylime's `re.match`); kept for policies imported from Keylime
 * so they convert back losslessly, and named in every verdict that relies on it.
 */
export interface ExcludeRule {
  readonly pattern: string;
  readonly anchor: 'full' | 'prefix';
  readonly provenance: number;
}

/** An allowed `ima-buf` digest for an event name (`kernel_version`, `dm_table_load`, ...). */
export interface BufRef {
  readonly name: string;
  readonly algo: string;
  readonly digest: Uint8Array;
  readonly provenance: number;
}

/** An allowed digest of a key measured onto a keyring (`ima-buf` with the keyring's name). */
export interface KeyringDigestRef {
  readonly keyring: string;
  readonly algo: string;
  readonly digest: Uint8Array;
  readonly provenance: number;
}

export interface BootAggregateRef {
  readonly algo: string;
  readonly digest: Uint8Array;
  readonly provenance: number;
}

/** Path → allowed digests. Implemented by a Map (built sets) and by the compact file's index. */
export interface DigestTable {
  readonly size: number;
  get(path: string): readonly DigestRef[] | undefined;
  /** every path, in ascending UTF-8 byte order */
  paths(): IterableIterator<string>;
  /**
   * The evaluator's allocation-free lookup: the provenance index of the reference of `path` with
   * this algorithm and digest (`digest[off .. off+len)`), -1 when the path has none such, -2 when
   * the path is not in the table.
   */
  findDigest(path: string, algo: string, digest: Uint8Array, off: number, len: number): number;
  /**
   * As findDigest, with the path given as its UTF-8 bytes `pathBuf[pathOff .. pathOff+pathLen)` (the
   * list's own bytes: no string is made). Optional: tables that key by string leave it out.
   */
  findDigestBytes?(
    pathBuf: Uint8Array,
    pathOff: number,
    pathLen: number,
    algoId: number,
    digest: Uint8Array,
    off: number,
    len: number,
  ): number;
}

/** `findDigest` over a path's references. */
export function findInRefs(
  refs: readonly DigestRef[] | undefined,
  algo: string,
  digest: Uint8Array,
  off: number,
  len: number,
): number {
  if (!refs) return -2;
  outer: for (const r of refs) {
    if (r.algo !== algo || r.digest.length !== len) continue;
    for (let i = 0; i < len; i++) if (r.digest[i] !== digest[off + i]) continue outer;
    return r.provenance;
  }
  return -1;
}

export interface ReferenceSetMeta {
  /** free text naming what made the set */
  readonly generator?: string;
  readonly timestamp?: string;
  /** Keylime's `release` */
  readonly release?: number;
}

export interface ReferenceSet {
  readonly meta: ReferenceSetMeta;
  /** file-digest algorithm the set was built for (the kernel's `ima_hash`); undefined: any */
  readonly hashAlgo?: string;
  /** Keylime's `ima.log_hash_alg` (template hash algorithm), kept for a lossless round trip */
  readonly logHashAlgo?: string;
  readonly digests: DigestTable;
  readonly keys: readonly SigningKeyRef[];
  readonly excludes: readonly ExcludeRule[];
  readonly bufs: readonly BufRef[];
  readonly keyringDigests: readonly KeyringDigestRef[];
  /** keyrings whose measured keys are not learned (Keylime's `ima.ignored_keyrings`; `*` = all) */
  readonly ignoredKeyrings: readonly string[];
  readonly bootAggregates: readonly BootAggregateRef[];
  readonly provenances: readonly Provenance[];
}

/** Caps (style.md practice 2): absurd inputs are refused before anything is allocated for them. */
export const MAX_REF_PATHS = 64 * 1024 * 1024;
export const MAX_REF_PATH_BYTES = 4096;
export const MAX_DIGESTS_PER_PATH = 4096;
export const MAX_PATTERN_LENGTH = 4096;
export const MAX_PROVENANCES = 16 * 1024 * 1024;

/** What `addDigest` takes: `digest` as bytes or lowercase/uppercase hex. */
export interface DigestInput {
  readonly algo: string;
  readonly digest: Uint8Array | string;
  readonly provenance: Provenance;
  readonly imaSignature?: Uint8Array;
}

function provenanceKey(p: Provenance): string {
  return [p.kind, p.name, p.version, p.arch, p.image, p.layer, p.source].map((x) => x ?? '').join('\0');
}

/** Canonical algorithm name, or E_HASH_UNKNOWN naming where it was given. */
export function canonicalAlgo(algo: string, where: string): ImakitError | string {
  const a = findHashAlgo(algo.toLowerCase());
  if (!a) return new ImakitError('E_HASH_UNKNOWN', `unknown hash algorithm '${algo}'`, { field: where });
  return a.name;
}

function algoOrThrow(algo: string, where: string): { name: string; size: number } {
  const a = findHashAlgo(algo.toLowerCase());
  if (!a) throw new ImakitError('E_HASH_UNKNOWN', `unknown hash algorithm '${algo}'`, { field: where });
  return a;
}

const HEX_RE = /^[0-9a-fA-F]*$/;

/** Decode a digest given as hex (or copy bytes) and check its size for `algo`. */
export function digestBytes(algo: string, digest: Uint8Array | string, where: string): Uint8Array {
  const a = algoOrThrow(algo, where);
  let bytes: Uint8Array;
  if (typeof digest === 'string') {
    if (digest.length !== a.size * 2 || !HEX_RE.test(digest))
      throw new ImakitError('E_CODEC_BAD_HEX', `'${digest}' is not a ${a.name} digest in hex`, {
        field: where,
      });
    bytes = Uint8Array.from(Buffer.from(digest, 'hex'));
  } else {
    if (digest.length !== a.size)
      throw new ImakitError(
        'E_CODEC_BAD_LENGTH',
        `${a.name} digest must be ${a.size} bytes (got ${digest.length})`,
        { field: where },
      );
    bytes = Uint8Array.from(digest);
  }
  return bytes;
}

/**
 * Compile an exclude so that a bad pattern is an error naming it (Keylime drops *all* its excludes
 * when one is invalid). The pattern is JavaScript RegExp syntax; unicode mode catches stray escapes.
 */
export function compileExclude(rule: Pick<ExcludeRule, 'pattern' | 'anchor'>, where: string): RegExp {
  if (rule.pattern.length > MAX_PATTERN_LENGTH)
    throw new ImakitError('E_REFS_PATTERN', `exclude pattern longer than ${MAX_PATTERN_LENGTH}`, {
      field: where,
    });
  try {
    return new RegExp(rule.anchor === 'full' ? `^(?:${rule.pattern})$` : `^(?:${rule.pattern})`, 'u');
  } catch (e) {
    throw new ImakitError(
      'E_REFS_PATTERN',
      `invalid exclude pattern '${rule.pattern}': ${(e as Error).message}`,
      { field: where, token: rule.pattern },
      { cause: e },
    );
  }
}

/** A Map-backed DigestTable whose paths() yields UTF-8 byte order. */
class MapDigestTable implements DigestTable {
  readonly #map: Map<string, readonly DigestRef[]>;
  readonly #sorted: readonly string[];
  constructor(map: Map<string, readonly DigestRef[]>) {
    this.#map = map;
    this.#sorted = Object.freeze(sortUtf8([...map.keys()]));
  }
  get size(): number {
    return this.#map.size;
  }
  get(path: string): readonly DigestRef[] | undefined {
    return this.#map.get(path);
  }
  paths(): IterableIterator<string> {
    return this.#sorted[Symbol.iterator]();
  }
  findDigest(path: string, algo: string, digest: Uint8Array, off: number, len: number): number {
    return findInRefs(this.#map.get(path), algo, digest, off, len);
  }
}

/** Sort strings by UTF-8 bytes (JS `<` compares UTF-16 units, which differs above U+FFFF). */
export function sortUtf8(paths: string[]): string[] {
  const enc = paths.map((p) => Buffer.from(p, 'utf8'));
  const idx = paths.map((_, i) => i);
  idx.sort((a, b) => Buffer.compare(enc[a]!, enc[b]!));
  return idx.map((i) => paths[i]!);
}

/** Wrap a ready Map as a DigestTable (frozen arrays expected). */
export function digestTableOf(map: Map<string, readonly DigestRef[]>): DigestTable {
  return new MapDigestTable(map);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

/**
 * Collects references from any number of sources, then `build()`s a frozen ReferenceSet.
 * Duplicates (same path, algorithm, digest and provenance) collapse; the same digest from two
 * packages is kept twice, so a diff by package stays exact.
 *
 * @example
 *   const b = new ReferenceSetBuilder({ hashAlgo: 'sha256' });
 *   b.addDigest('/usr/bin/true', { algo: 'sha256', digest: hex, provenance: { kind: 'deb', name: 'coreutils' } });
 *   const set = b.build();
 */
export class ReferenceSetBuilder {
  readonly #digests = new Map<string, DigestRef[]>();
  readonly #provIndex = new Map<string, number>();
  readonly #provenances: Provenance[] = [];
  readonly #keys: SigningKeyRef[] = [];
  readonly #excludes: ExcludeRule[] = [];
  readonly #bufs: BufRef[] = [];
  readonly #keyringDigests: KeyringDigestRef[] = [];
  readonly #ignored = new Set<string>();
  readonly #boot: BootAggregateRef[] = [];
  #meta: ReferenceSetMeta;
  #hashAlgo: string | undefined;
  #logHashAlgo: string | undefined;

  constructor(opts: { hashAlgo?: string; logHashAlgo?: string; meta?: ReferenceSetMeta } = {}) {
    this.#hashAlgo = opts.hashAlgo === undefined ? undefined : algoOrThrow(opts.hashAlgo, 'hashAlgo').name;
    this.#logHashAlgo =
      opts.logHashAlgo === undefined ? undefined : algoOrThrow(opts.logHashAlgo, 'logHashAlgo').name;
    this.#meta = opts.meta ?? {};
  }

  /** Intern a provenance; returns its index. */
  provenance(p: Provenance): number {
    const k = provenanceKey(p);
    const have = this.#provIndex.get(k);
    if (have !== undefined) return have;
    if (this.#provenances.length >= MAX_PROVENANCES)
      throw new ImakitError('E_CODEC_TOO_LARGE', `more than ${MAX_PROVENANCES} provenances`);
    const i = this.#provenances.length;
    this.#provenances.push(Object.freeze({ ...p }));
    this.#provIndex.set(k, i);
    return i;
  }

  setHashAlgo(algo: string | undefined): this {
    this.#hashAlgo = algo === undefined ? undefined : algoOrThrow(algo, 'hashAlgo').name;
    return this;
  }

  setLogHashAlgo(algo: string | undefined): this {
    this.#logHashAlgo = algo === undefined ? undefined : algoOrThrow(algo, 'logHashAlgo').name;
    return this;
  }

  setMeta(meta: ReferenceSetMeta): this {
    this.#meta = { ...meta };
    return this;
  }

  get pathCount(): number {
    return this.#digests.size;
  }

  /** Allow `digest` (algorithm `algo`) for `path`. @throws E_REFS_PATH, E_HASH_UNKNOWN, E_CODEC_BAD_HEX */
  addDigest(path: string, d: DigestInput): this {
    checkPath(path);
    const algo = algoOrThrow(d.algo, `digests[${path}]`).name;
    const digest = digestBytes(algo, d.digest, `digests[${path}]`);
    return this.addRef(path, {
      algo,
      digest,
      provenance: this.provenance(d.provenance),
      imaSignature: d.imaSignature && Uint8Array.from(d.imaSignature),
    });
  }

  /** Add an already-checked reference whose provenance index belongs to this builder. */
  addRef(path: string, ref: DigestRef): this {
    let list = this.#digests.get(path);
    if (!list) {
      if (this.#digests.size >= MAX_REF_PATHS)
        throw new ImakitError('E_CODEC_TOO_LARGE', `more than ${MAX_REF_PATHS} paths`);
      list = [];
      this.#digests.set(path, list);
    }
    for (const r of list)
      if (
        r.algo === ref.algo &&
        r.provenance === ref.provenance &&
        sameBytes(r.digest, ref.digest) &&
        (r.imaSignature === undefined) === (ref.imaSignature === undefined) &&
        (r.imaSignature === undefined || sameBytes(r.imaSignature, ref.imaSignature!))
      )
        return this;
    if (list.length >= MAX_DIGESTS_PER_PATH)
      throw new ImakitError('E_CODEC_TOO_LARGE', `more than ${MAX_DIGESTS_PER_PATH} digests`, { path });
    list.push(
      Object.freeze(
        ref.imaSignature === undefined
          ? { algo: ref.algo, digest: ref.digest, provenance: ref.provenance }
          : { ...ref },
      ),
    );
    return this;
  }

  /** Allow signatures by this key (on `keyring`). */
  addSignatureKey(k: {
    keyring: string;
    keyId: number;
    spki?: Uint8Array;
    certificate?: Uint8Array;
    provenance: Provenance;
  }): this {
    if (!Number.isInteger(k.keyId) || k.keyId < 0 || k.keyId > 0xffffffff)
      throw new ImakitError('E_KEYID_BAD', `key id ${k.keyId} is not a 32-bit value`);
    const provenance = this.provenance(k.provenance);
    const dup = this.#keys.find(
      (x) =>
        x.keyring === k.keyring &&
        x.keyId === k.keyId &&
        (x.spki === undefined) === (k.spki === undefined) &&
        (x.spki === undefined || sameBytes(x.spki, k.spki!)),
    );
    if (dup) return this;
    const ref: SigningKeyRef = {
      keyring: k.keyring,
      keyId: k.keyId >>> 0,
      provenance,
      ...(k.spki ? { spki: Uint8Array.from(k.spki) } : {}),
      ...(k.certificate ? { certificate: Uint8Array.from(k.certificate) } : {}),
    };
    this.#keys.push(Object.freeze(ref));
    return this;
  }

  /** Exclude paths matching `pattern` (checked now: an invalid pattern is E_REFS_PATTERN naming it). */
  addExclude(pattern: string, opts: { anchor?: 'full' | 'prefix'; provenance: Provenance }): this {
    const anchor = opts.anchor ?? 'full';
    compileExclude({ pattern, anchor }, `excludes[${this.#excludes.length}]`);
    if (this.#excludes.some((e) => e.pattern === pattern && e.anchor === anchor)) return this;
    this.#excludes.push(Object.freeze({ pattern, anchor, provenance: this.provenance(opts.provenance) }));
    return this;
  }

  addBuf(name: string, d: DigestInput): this {
    const algo = algoOrThrow(d.algo, `ima-buf[${name}]`).name;
    const digest = digestBytes(algo, d.digest, `ima-buf[${name}]`);
    if (!this.#bufs.some((b) => b.name === name && b.algo === algo && sameBytes(b.digest, digest)))
      this.#bufs.push(Object.freeze({ name, algo, digest, provenance: this.provenance(d.provenance) }));
    return this;
  }

  addKeyringDigest(keyring: string, d: DigestInput): this {
    const algo = algoOrThrow(d.algo, `keyrings[${keyring}]`).name;
    const digest = digestBytes(algo, d.digest, `keyrings[${keyring}]`);
    if (
      !this.#keyringDigests.some(
        (b) => b.keyring === keyring && b.algo === algo && sameBytes(b.digest, digest),
      )
    )
      this.#keyringDigests.push(
        Object.freeze({ keyring, algo, digest, provenance: this.provenance(d.provenance) }),
      );
    return this;
  }

  addIgnoredKeyring(keyring: string): this {
    this.#ignored.add(keyring);
    return this;
  }

  addBootAggregate(d: DigestInput): this {
    const algo = algoOrThrow(d.algo, 'boot_aggregate').name;
    const digest = digestBytes(algo, d.digest, 'boot_aggregate');
    if (!this.#boot.some((b) => b.algo === algo && sameBytes(b.digest, digest)))
      this.#boot.push(Object.freeze({ algo, digest, provenance: this.provenance(d.provenance) }));
    return this;
  }

  /** Merge another set in, re-interning its provenances. */
  addSet(s: ReferenceSet): this {
    const map = s.provenances.map((p) => this.provenance(p));
    for (const path of s.digests.paths())
      for (const r of s.digests.get(path)!) this.addRef(path, { ...r, provenance: map[r.provenance]! });
    for (const k of s.keys) this.addSignatureKey({ ...k, provenance: s.provenances[k.provenance]! });
    for (const e of s.excludes)
      this.addExclude(e.pattern, { anchor: e.anchor, provenance: s.provenances[e.provenance]! });
    for (const b of s.bufs) this.addBuf(b.name, { ...b, provenance: s.provenances[b.provenance]! });
    for (const k of s.keyringDigests)
      this.addKeyringDigest(k.keyring, { ...k, provenance: s.provenances[k.provenance]! });
    for (const k of s.ignoredKeyrings) this.addIgnoredKeyring(k);
    for (const b of s.bootAggregates)
      this.addBootAggregate({ ...b, provenance: s.provenances[b.provenance]! });
    return this;
  }

  build(): ReferenceSet {
    const map = new Map<string, readonly DigestRef[]>();
    for (const [p, l] of this.#digests) map.set(p, Object.freeze(l.slice()));
    return Object.freeze({
      meta: Object.freeze({ ...this.#meta }),
      ...(this.#hashAlgo !== undefined ? { hashAlgo: this.#hashAlgo } : {}),
      ...(this.#logHashAlgo !== undefined ? { logHashAlgo: this.#logHashAlgo } : {}),
      digests: new MapDigestTable(map),
      keys: Object.freeze(this.#keys.slice()),
      excludes: Object.freeze(this.#excludes.slice()),
      bufs: Object.freeze(this.#bufs.slice()),
      keyringDigests: Object.freeze(this.#keyringDigests.slice()),
      ignoredKeyrings: Object.freeze([...this.#ignored].sort()),
      bootAggregates: Object.freeze(this.#boot.slice()),
      provenances: Object.freeze(this.#provenances.slice()),
    });
  }
}

/** Paths are absolute, at most MAX_REF_PATH_BYTES of UTF-8, without NUL. */
export function checkPath(path: string): void {
  if (typeof path !== 'string' || path.length === 0 || path.includes('\0'))
    throw new ImakitError('E_REFS_PATH', 'a path must be a non-empty string without NUL', { path });
  if (Buffer.byteLength(path, 'utf8') > MAX_REF_PATH_BYTES)
    throw new ImakitError('E_REFS_PATH', `path longer than ${MAX_REF_PATH_BYTES} bytes`, {
      path: path.slice(0, 80),
    });
}
