/**
 * imakit's compact reference-set file: loads in milliseconds for a million paths, because nothing
 * per path is decoded up front. Lookups binary-search a sorted path index straight in the file's
 * bytes (zero-copy views); DigestRefs are materialized only for the paths asked for.
 *
 * Layout (all integers little-endian u32 unless noted):
 *
 *   0   magic "IMAREFS\0"                    8 bytes
 *   8   version (1)
 *   12  pathCount  P
 *   16  refCount   R
 *   20  metaBytes  M     UTF-8 imakit JSON of everything but the digests (refs-json.ts, digests: {})
 *   24  stringBytes S    the paths, UTF-8, concatenated in ascending byte order (no separators)
 *   28  poolBytes  D     digest bytes and shipped security.ima values, concatenated
 *   32  reserved (0)
 *   36  meta            M bytes, then zero padding to a multiple of 4
 *       pathOffsets     (P+1) u32: path i is strings[pathOffsets[i] .. pathOffsets[i+1])
 *       firstRef        (P+1) u32: refs of path i are refs[firstRef[i] .. firstRef[i+1])
 *       refs            R records of 16 bytes:
 *                         u8 algo id (enum hash_algo), u8 digest length, u16 shipped-value length,
 *                         u32 provenance index, u32 digest offset in pool, u32 shipped-value offset
 *       strings         S bytes
 *       pool            D bytes
 *   end (no trailing bytes)
 *
 * The decoder checks the header, every size against the caps and the remaining bytes before it
 * slices, and that both index arrays are monotonic and inside their sections: one integer-only pass,
 * so a million-path file loads in milliseconds. Path bytes are compared on lookup (never decoded
 * for it); a digest record is checked when first read. `{ full: true }` checks everything up front
 * (paths sorted, unique, UTF-8 without NUL; every record).
 */
import { CodecError, ImakitError } from '../../errors.ts';
import { HASH_ALGOS, findHashAlgo } from '../hash/hash-algo.ts';
import { encodeRefsJson, refsFromJson } from './refs-json.ts';
import {
  MAX_DIGESTS_PER_PATH,
  MAX_REF_PATHS,
  MAX_REF_PATH_BYTES,
  type DigestRef,
  type DigestTable,
  type ReferenceSet,
} from './reference-set.ts';

export const REFS_MAGIC = Uint8Array.from([0x49, 0x4d, 0x41, 0x52, 0x45, 0x46, 0x53, 0x00]); // IMAREFS\0
export const REFS_BINARY_VERSION = 1;
const HEADER = 36;
const REF_RECORD = 16;
/** Caps before allocation: a 64M-path set is far beyond any distribution. */
export const MAX_REFS = 256 * 1024 * 1024;
export const MAX_META_BYTES = 256 * 1024 * 1024;
export const MAX_STRING_BYTES = 0xffffffff;

/** True when `b` starts with the compact form's magic. */
export function isRefsBinary(b: Uint8Array): boolean {
  if (b.length < REFS_MAGIC.length) return false;
  for (let i = 0; i < REFS_MAGIC.length; i++) if (b[i] !== REFS_MAGIC[i]) return false;
  return true;
}

const pad4 = (n: number): number => (n + 3) & ~3;

/** Encode a set in the compact form. */
export function encodeRefsBinary(set: ReferenceSet): Uint8Array {
  const metaText = encodeRefsJson({ ...set, digests: EMPTY_TABLE });
  const meta = Buffer.from(metaText, 'utf8');
  const paths: Buffer[] = [];
  let stringBytes = 0;
  let refCount = 0;
  let poolBytes = 0;
  for (const p of set.digests.paths()) {
    const b = Buffer.from(p, 'utf8');
    paths.push(b);
    stringBytes += b.length;
    for (const r of set.digests.get(p)!) {
      refCount++;
      poolBytes += r.digest.length + (r.imaSignature?.length ?? 0);
    }
  }
  const P = paths.length;
  const size = HEADER + pad4(meta.length) + 8 * (P + 1) + REF_RECORD * refCount + stringBytes + poolBytes;
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  out.set(REFS_MAGIC, 0);
  dv.setUint32(8, REFS_BINARY_VERSION, true);
  dv.setUint32(12, P, true);
  dv.setUint32(16, refCount, true);
  dv.setUint32(20, meta.length, true);
  dv.setUint32(24, stringBytes, true);
  dv.setUint32(28, poolBytes, true);
  out.set(meta, HEADER);
  const offs = HEADER + pad4(meta.length);
  const firsts = offs + 4 * (P + 1);
  const refs = firsts + 4 * (P + 1);
  const strings = refs + REF_RECORD * refCount;
  const pool = strings + stringBytes;
  let s = 0;
  let r = 0;
  let d = 0;
  let i = 0;
  for (const p of set.digests.paths()) {
    dv.setUint32(offs + 4 * i, s, true);
    dv.setUint32(firsts + 4 * i, r, true);
    out.set(paths[i]!, strings + s);
    s += paths[i]!.length;
    for (const ref of set.digests.get(p)!) {
      const at = refs + REF_RECORD * r;
      const algo = findHashAlgo(ref.algo)!;
      const sig = ref.imaSignature;
      if (sig && sig.length > 0xffff)
        throw new ImakitError('E_CODEC_TOO_LARGE', 'shipped security.ima value longer than 65535 bytes', {
          path: p,
        });
      out[at] = algo.id;
      out[at + 1] = ref.digest.length;
      dv.setUint16(at + 2, sig?.length ?? 0, true);
      dv.setUint32(at + 4, ref.provenance, true);
      dv.setUint32(at + 8, d, true);
      out.set(ref.digest, pool + d);
      d += ref.digest.length;
      dv.setUint32(at + 12, sig ? d : 0, true);
      if (sig) {
        out.set(sig, pool + d);
        d += sig.length;
      }
      r++;
    }
    i++;
  }
  dv.setUint32(offs + 4 * P, s, true);
  dv.setUint32(firsts + 4 * P, r, true);
  return out;
}

const EMPTY_TABLE: DigestTable = Object.freeze({
  size: 0,
  get: () => undefined,
  findDigest: () => -2,
  paths: () => [][Symbol.iterator](),
});

const bad = (
  code:
    | 'E_CODEC_TRUNCATED'
    | 'E_CODEC_BAD_LENGTH'
    | 'E_CODEC_BAD_VALUE'
    | 'E_CODEC_TOO_LARGE'
    | 'E_CODEC_TRAILING'
    | 'E_CODEC_BAD_VERSION',
  detail: string,
  offset: number,
  field: string,
): CodecError => new CodecError(code, detail, { offset, field });

/** Options of {@link decodeRefsBinary}. */
export interface DecodeRefsBinaryOptions {
  /**
   * Also check every path (strictly ascending, no NUL, UTF-8) and every digest record up front:
   * O(total bytes). Without it (the default) only integers are checked up front (header, section
   * bounds, monotonic offsets: one pass over the two index arrays), and a digest record is checked
   * when a lookup first reads it. Lookups compare bytes, so a file whose paths were not sorted can
   * only make a present path look absent (a refusal), never let a wrong path or digest through.
   * Iterating `paths()` of such a file (convert, merge) needs the full check: loaders use it there.
   */
  readonly full?: boolean;
}

/**
 * Decode the compact form without decoding any path: the returned set's `digests` reads the file's
 * bytes on lookup (zero-copy). `bytes` must not be modified afterwards.
 * @throws CodecError E_CODEC_* with the offset and field; ImakitError E_REFS_FORMAT from the meta JSON
 * @example const set = decodeRefsBinary(readFileSync('refs.imr')); set.digests.get('/usr/bin/true')
 */
export function decodeRefsBinary(bytes: Uint8Array, opts: DecodeRefsBinaryOptions = {}): ReferenceSet {
  if (bytes.length < HEADER)
    throw bad('E_CODEC_TRUNCATED', 'shorter than the header', bytes.length, 'header');
  if (!isRefsBinary(bytes)) throw bad('E_CODEC_BAD_VALUE', 'not an imakit reference set (magic)', 0, 'magic');
  // the index is read as u32 arrays: a copy only when the caller's bytes are not 4-aligned
  if (bytes.byteOffset % 4 !== 0) bytes = Uint8Array.from(bytes);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = dv.getUint32(8, true);
  if (version !== REFS_BINARY_VERSION) throw bad('E_CODEC_BAD_VERSION', `version ${version}`, 8, 'version');
  const P = dv.getUint32(12, true);
  const R = dv.getUint32(16, true);
  const M = dv.getUint32(20, true);
  const S = dv.getUint32(24, true);
  const D = dv.getUint32(28, true);
  if (dv.getUint32(32, true) !== 0)
    throw bad('E_CODEC_BAD_VALUE', 'reserved field is not zero', 32, 'reserved');
  if (P > MAX_REF_PATHS) throw bad('E_CODEC_TOO_LARGE', `${P} paths (max ${MAX_REF_PATHS})`, 12, 'pathCount');
  if (R > MAX_REFS) throw bad('E_CODEC_TOO_LARGE', `${R} digests (max ${MAX_REFS})`, 16, 'refCount');
  if (M > MAX_META_BYTES) throw bad('E_CODEC_TOO_LARGE', `${M} meta bytes`, 20, 'metaBytes');
  const need = HEADER + pad4(M) + 8 * (P + 1) + REF_RECORD * R + S + D;
  if (bytes.length < need)
    throw bad(
      'E_CODEC_TRUNCATED',
      `header declares ${need} bytes, file has ${bytes.length}`,
      bytes.length,
      'sections',
    );
  if (bytes.length > need)
    throw bad('E_CODEC_TRAILING', `${bytes.length - need} bytes after the pool`, need, 'pool');
  for (let i = HEADER + M; i < HEADER + pad4(M); i++)
    if (bytes[i] !== 0) throw bad('E_CODEC_BAD_VALUE', 'meta padding is not zero', i, 'meta');
  const metaDoc = parseMeta(bytes.subarray(HEADER, HEADER + M));
  const offs = HEADER + pad4(M);
  const firsts = offs + 4 * (P + 1);
  const refs = firsts + 4 * (P + 1);
  const strings = refs + REF_RECORD * R;
  const pool = strings + S;
  const shell = refsFromJson(metaDoc);
  if (shell.digests.size !== 0) throw bad('E_CODEC_BAD_VALUE', 'meta JSON carries digests', HEADER, 'meta');
  const off = new Uint32Array(bytes.buffer, bytes.byteOffset + offs, P + 1);
  const first = new Uint32Array(bytes.buffer, bytes.byteOffset + firsts, P + 1);
  // the integer pass: both index arrays start at 0, end at their section's size, and grow
  if (off[0] !== 0 || first[0] !== 0)
    throw bad('E_CODEC_BAD_VALUE', 'first offsets must be 0', offs, 'pathOffsets');
  if (off[P] !== S)
    throw bad('E_CODEC_BAD_LENGTH', 'last path offset is not the string size', offs + 4 * P, 'pathOffsets');
  if (first[P] !== R)
    throw bad('E_CODEC_BAD_VALUE', 'last ref index is not the ref count', firsts + 4 * P, 'firstRef');
  for (let i = 0; i < P; i++) {
    const n = off[i + 1]! - off[i]!;
    if (n <= 0 || n > MAX_REF_PATH_BYTES)
      throw bad('E_CODEC_BAD_VALUE', `path ${i}: length ${n}`, offs + 4 * i, 'pathOffsets');
    const k = first[i + 1]! - first[i]!;
    if (k <= 0 || k > MAX_DIGESTS_PER_PATH)
      throw bad('E_CODEC_BAD_VALUE', `path ${i}: ${k} digests`, firsts + 4 * i, 'firstRef');
  }
  const table = new BinaryDigestTable(bytes, P, off, first, refs, strings, pool, D, shell.provenances.length);
  if (opts.full === true) table.checkAll();
  return Object.freeze({ ...shell, digests: table });
}

function isUtf8(b: Uint8Array): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(b);
    return true;
  } catch {
    return false;
  }
}

function parseMeta(b: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(b));
  } catch (e) {
    throw new ImakitError('E_REFS_FORMAT', `meta section is not JSON: ${(e as Error).message}`, {
      offset: HEADER,
      field: 'meta',
    });
  }
}

/** The lazily read digest table over a structurally checked file. */
class BinaryDigestTable implements DigestTable {
  readonly size: number;
  readonly #b: Uint8Array;
  readonly #dv: DataView;
  readonly #off: Uint32Array;
  readonly #first: Uint32Array;
  readonly #refs: number;
  readonly #strings: number;
  readonly #pool: number;
  readonly #poolBytes: number;
  readonly #provCount: number;
  /** per record: checked once (a lookup reads only the records of the paths it finds) */
  readonly #checked: Uint8Array;
  readonly #scratch = new Uint8Array(MAX_REF_PATH_BYTES * 3);
  readonly #enc = new TextEncoder();
  constructor(
    b: Uint8Array,
    P: number,
    off: Uint32Array,
    first: Uint32Array,
    refs: number,
    strings: number,
    pool: number,
    poolBytes: number,
    provCount: number,
  ) {
    this.size = P;
    this.#b = b;
    this.#dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    this.#off = off;
    this.#first = first;
    this.#refs = refs;
    this.#strings = strings;
    this.#pool = pool;
    this.#poolBytes = poolBytes;
    this.#provCount = provCount;
    this.#checked = new Uint8Array(first[P]!);
  }

  /** The full check: paths ascending, unique, without NUL, UTF-8; every digest record. */
  checkAll(): void {
    const b = this.#b;
    const s = this.#strings;
    for (let i = 0; i < this.size; i++) {
      const a = s + this.#off[i]!;
      const e = s + this.#off[i + 1]!;
      if (i > 0 && this.#cmp(i - 1, b, a, e - a, 0) >= 0)
        throw bad(
          'E_CODEC_BAD_VALUE',
          `path ${i} is not after path ${i - 1} (index must be sorted, unique)`,
          a,
          'strings',
        );
      for (let k = a; k < e; k++)
        if (b[k] === 0) throw bad('E_CODEC_BAD_VALUE', `path ${i} contains NUL`, k, 'strings');
    }
    if (!isUtf8(b.subarray(s, s + this.#off[this.size]!)))
      throw bad('E_CODEC_BAD_VALUE', 'paths are not UTF-8', s, 'strings');
    for (let r = 0; r < this.#checked.length; r++) this.#record(r);
  }

  /** entry `i` compared with `q[qOff .. qOff+qLen)`, from byte `from` on (known equal before it) */
  #cmp(i: number, q: Uint8Array, qOff: number, qLen: number, from: number): number {
    const b = this.#b;
    const a = this.#strings + this.#off[i]!;
    const n = this.#off[i + 1]! - this.#off[i]!;
    const m = n < qLen ? n : qLen;
    let k = from;
    while (k < m && b[a + k] === q[qOff + k]) k++;
    return k === m ? n - qLen : b[a + k]! - q[qOff + k]!;
  }

  /**
   * Index of the path with these bytes, or -1. Binary search that skips the prefix the query is
   * known to share with both bounds (paths share long directory prefixes).
   */
  indexOfBytes(q: Uint8Array, qOff: number, qLen: number): number {
    const b = this.#b;
    const off = this.#off;
    const s = this.#strings;
    let lo = 0;
    let hi = this.size - 1;
    let llo = 0;
    let lhi = 0;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const a = s + off[mid]!;
      const n = off[mid + 1]! - off[mid]!;
      const m = n < qLen ? n : qLen;
      let k = llo < lhi ? llo : lhi;
      while (k < m && b[a + k] === q[qOff + k]) k++;
      const c = k === m ? n - qLen : b[a + k]! - q[qOff + k]!;
      if (c === 0) return mid;
      if (c < 0) {
        lo = mid + 1;
        llo = k;
      } else {
        hi = mid - 1;
        lhi = k;
      }
    }
    return -1;
  }

  /** index of `path`, or -1 */
  indexOf(path: string): number {
    if (path.length > MAX_REF_PATH_BYTES) return -1;
    const { written } = this.#enc.encodeInto(path, this.#scratch);
    if (written > MAX_REF_PATH_BYTES) return -1;
    return this.indexOfBytes(this.#scratch, 0, written);
  }

  /** record `r`'s byte offset, checked on first use: algorithm, digest length, provenance, pool bounds */
  #record(r: number): number {
    const at = this.#refs + REF_RECORD * r;
    if (this.#checked[r] === 1) return at;
    const b = this.#b;
    const dv = this.#dv;
    const algo = HASH_ALGOS[b[at]!];
    if (!algo) throw bad('E_CODEC_BAD_VALUE', `ref ${r}: unknown algorithm id ${b[at]}`, at, 'refs.algo');
    if (b[at + 1] !== algo.size)
      throw bad(
        'E_CODEC_BAD_VALUE',
        `ref ${r}: ${algo.name} digest length ${b[at + 1]}`,
        at + 1,
        'refs.length',
      );
    if (dv.getUint32(at + 4, true) >= this.#provCount)
      throw bad('E_CODEC_BAD_VALUE', `ref ${r}: provenance index out of range`, at + 4, 'refs.provenance');
    if (dv.getUint32(at + 8, true) + algo.size > this.#poolBytes)
      throw bad('E_CODEC_BAD_VALUE', `ref ${r}: digest outside the pool`, at + 8, 'refs.digest');
    const sigLen = dv.getUint16(at + 2, true);
    const sOff = dv.getUint32(at + 12, true);
    if (sigLen > 0 ? sOff + sigLen > this.#poolBytes : sOff !== 0)
      throw bad(
        'E_CODEC_BAD_VALUE',
        `ref ${r}: shipped value outside the pool`,
        at + 12,
        'refs.imaSignature',
      );
    this.#checked[r] = 1;
    return at;
  }

  findDigestBytes(
    pathBuf: Uint8Array,
    pathOff: number,
    pathLen: number,
    algoId: number,
    digest: Uint8Array,
    off: number,
    len: number,
  ): number {
    if (pathLen > MAX_REF_PATH_BYTES) return -2;
    const i = this.indexOfBytes(pathBuf, pathOff, pathLen);
    if (i < 0) return -2;
    const b = this.#b;
    outer: for (let r = this.#first[i]!; r < this.#first[i + 1]!; r++) {
      const at = this.#record(r);
      if (b[at] !== algoId || b[at + 1] !== len) continue;
      const d = this.#pool + this.#dv.getUint32(at + 8, true);
      for (let k = 0; k < len; k++) if (b[d + k] !== digest[off + k]) continue outer;
      return this.#dv.getUint32(at + 4, true);
    }
    return -1;
  }

  findDigest(path: string, algo: string, digest: Uint8Array, off: number, len: number): number {
    const a = findHashAlgo(algo);
    if (path.length > MAX_REF_PATH_BYTES) return -2;
    const { written } = this.#enc.encodeInto(path, this.#scratch);
    if (!a) return this.indexOfBytes(this.#scratch, 0, written) < 0 ? -2 : -1;
    return this.findDigestBytes(this.#scratch, 0, written, a.id, digest, off, len);
  }

  get(path: string): readonly DigestRef[] | undefined {
    const i = this.indexOf(path);
    return i < 0 ? undefined : this.#refsOf(i);
  }

  #refsOf(i: number): readonly DigestRef[] {
    const out: DigestRef[] = [];
    const b = this.#b;
    for (let r = this.#first[i]!; r < this.#first[i + 1]!; r++) {
      const at = this.#record(r);
      const algo = HASH_ALGOS[b[at]!]!;
      const dOff = this.#pool + this.#dv.getUint32(at + 8, true);
      const sigLen = this.#dv.getUint16(at + 2, true);
      const sOff = this.#pool + this.#dv.getUint32(at + 12, true);
      const digest = b.subarray(dOff, dOff + algo.size);
      const provenance = this.#dv.getUint32(at + 4, true);
      out.push(
        Object.freeze(
          sigLen > 0
            ? { algo: algo.name, digest, provenance, imaSignature: b.subarray(sOff, sOff + sigLen) }
            : { algo: algo.name, digest, provenance },
        ),
      );
    }
    return Object.freeze(out);
  }

  *paths(): IterableIterator<string> {
    const td = new TextDecoder('utf-8');
    for (let i = 0; i < this.size; i++) {
      const a = this.#strings + this.#off[i]!;
      const e = this.#strings + this.#off[i + 1]!;
      yield td.decode(this.#b.subarray(a, e));
    }
  }
}
