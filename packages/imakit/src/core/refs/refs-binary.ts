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
 * The decoder checks every size against the caps and the remaining bytes before it slices, that the
 * offsets are monotonic and inside their sections, that paths are strictly ascending, and every
 * provenance index and algorithm id; a file that passes is safe to look up without further checks.
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

/**
 * Decode the compact form. Validates the whole structure (O(paths), no per-path allocation); the
 * returned set's `digests` reads the file's bytes on lookup. `bytes` must not be modified afterwards.
 * @throws CodecError E_CODEC_* with the offset and field; ImakitError E_REFS_FORMAT from the meta JSON
 */
export function decodeRefsBinary(bytes: Uint8Array): ReferenceSet {
  if (bytes.length < HEADER)
    throw bad('E_CODEC_TRUNCATED', 'shorter than the header', bytes.length, 'header');
  if (!isRefsBinary(bytes)) throw bad('E_CODEC_BAD_VALUE', 'not an imakit reference set (magic)', 0, 'magic');
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
  const provCount = shell.provenances.length;
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // offsets, order, counts
  if (dv.getUint32(offs, true) !== 0 || dv.getUint32(firsts, true) !== 0)
    throw bad('E_CODEC_BAD_VALUE', 'first offsets must be 0', offs, 'pathOffsets');
  if (dv.getUint32(offs + 4 * P, true) !== S)
    throw bad('E_CODEC_BAD_LENGTH', 'last path offset is not the string size', offs + 4 * P, 'pathOffsets');
  if (dv.getUint32(firsts + 4 * P, true) !== R)
    throw bad('E_CODEC_BAD_VALUE', 'last ref index is not the ref count', firsts + 4 * P, 'firstRef');
  let prevStart = 0;
  let prevEnd = 0;
  for (let i = 0; i < P; i++) {
    const a = dv.getUint32(offs + 4 * i, true);
    const b = dv.getUint32(offs + 4 * i + 4, true);
    if (b <= a || b - a > MAX_REF_PATH_BYTES)
      throw bad('E_CODEC_BAD_VALUE', `path ${i}: length ${b - a}`, offs + 4 * i, 'pathOffsets');
    if (i > 0 && buf.compare(buf, strings + prevStart, strings + prevEnd, strings + a, strings + b) <= 0)
      throw bad(
        'E_CODEC_BAD_VALUE',
        `path ${i} is not after path ${i - 1} (index must be sorted, unique)`,
        strings + a,
        'strings',
      );
    for (let k = strings + a; k < strings + b; k++)
      if (bytes[k] === 0) throw bad('E_CODEC_BAD_VALUE', `path ${i} contains NUL`, k, 'strings');
    prevStart = a;
    prevEnd = b;
    const f = dv.getUint32(firsts + 4 * i, true);
    const g = dv.getUint32(firsts + 4 * i + 4, true);
    if (g <= f || g - f > MAX_DIGESTS_PER_PATH)
      throw bad('E_CODEC_BAD_VALUE', `path ${i}: ${g - f} digests`, firsts + 4 * i, 'firstRef');
  }
  if (!isUtf8(buf.subarray(strings, strings + S)))
    throw bad('E_CODEC_BAD_VALUE', 'paths are not UTF-8', strings, 'strings');
  for (let r = 0; r < R; r++) {
    const at = refs + REF_RECORD * r;
    const algo = HASH_ALGOS[bytes[at]!];
    if (!algo) throw bad('E_CODEC_BAD_VALUE', `ref ${r}: unknown algorithm id ${bytes[at]}`, at, 'refs.algo');
    if (bytes[at + 1] !== algo.size)
      throw bad(
        'E_CODEC_BAD_VALUE',
        `ref ${r}: ${algo.name} digest length ${bytes[at + 1]}`,
        at + 1,
        'refs.length',
      );
    const sigLen = dv.getUint16(at + 2, true);
    if (dv.getUint32(at + 4, true) >= provCount)
      throw bad('E_CODEC_BAD_VALUE', `ref ${r}: provenance index out of range`, at + 4, 'refs.provenance');
    const dOff = dv.getUint32(at + 8, true);
    if (dOff + algo.size > D)
      throw bad('E_CODEC_BAD_VALUE', `ref ${r}: digest outside the pool`, at + 8, 'refs.digest');
    const sOff = dv.getUint32(at + 12, true);
    if (sigLen > 0 ? sOff + sigLen > D : sOff !== 0)
      throw bad(
        'E_CODEC_BAD_VALUE',
        `ref ${r}: shipped value outside the pool`,
        at + 12,
        'refs.imaSignature',
      );
  }
  const table = new BinaryDigestTable(buf, P, offs, firsts, refs, strings, pool);
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

/** The lazily read digest table over a validated file. */
class BinaryDigestTable implements DigestTable {
  readonly size: number;
  readonly #b: Buffer;
  readonly #dv: DataView;
  readonly #offs: number;
  readonly #firsts: number;
  readonly #refs: number;
  readonly #strings: number;
  readonly #pool: number;
  readonly #scratch = Buffer.allocUnsafe(MAX_REF_PATH_BYTES * 3);
  readonly #enc = new TextEncoder();
  constructor(
    b: Buffer,
    P: number,
    offs: number,
    firsts: number,
    refs: number,
    strings: number,
    pool: number,
  ) {
    this.size = P;
    this.#b = b;
    this.#dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    this.#offs = offs;
    this.#firsts = firsts;
    this.#refs = refs;
    this.#strings = strings;
    this.#pool = pool;
  }

  #u32(at: number): number {
    return this.#dv.getUint32(at, true);
  }

  /** index of `path`, or -1 */
  indexOf(path: string): number {
    if (path.length > MAX_REF_PATH_BYTES) return -1;
    const { written } = this.#enc.encodeInto(path, this.#scratch);
    let lo = 0;
    let hi = this.size - 1;
    const s = this.#strings;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const a = s + this.#u32(this.#offs + 4 * mid);
      const b = s + this.#u32(this.#offs + 4 * mid + 4);
      const c = this.#b.compare(this.#scratch, 0, written, a, b);
      // c compares the entry (source) with the query (target)
      if (c === 0) return mid;
      if (c < 0) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  findDigest(path: string, algo: string, digest: Uint8Array, off: number, len: number): number {
    const i = this.indexOf(path);
    if (i < 0) return -2;
    const a = findHashAlgo(algo);
    if (!a) return -1;
    const f = this.#u32(this.#firsts + 4 * i);
    const g = this.#u32(this.#firsts + 4 * i + 4);
    const b = this.#b;
    outer: for (let r = f; r < g; r++) {
      const at = this.#refs + REF_RECORD * r;
      if (b[at] !== a.id || b[at + 1] !== len) continue;
      const d = this.#pool + this.#u32(at + 8);
      for (let k = 0; k < len; k++) if (b[d + k] !== digest[off + k]) continue outer;
      return this.#u32(at + 4);
    }
    return -1;
  }

  get(path: string): readonly DigestRef[] | undefined {
    const i = this.indexOf(path);
    return i < 0 ? undefined : this.#refsOf(i);
  }

  #refsOf(i: number): readonly DigestRef[] {
    const f = this.#u32(this.#firsts + 4 * i);
    const g = this.#u32(this.#firsts + 4 * i + 4);
    const out: DigestRef[] = [];
    for (let r = f; r < g; r++) {
      const at = this.#refs + REF_RECORD * r;
      const algo = HASH_ALGOS[this.#b[at]!]!;
      const dOff = this.#pool + this.#u32(at + 8);
      const sigLen = this.#dv.getUint16(at + 2, true);
      const sOff = this.#pool + this.#u32(at + 12);
      const digest = this.#b.subarray(dOff, dOff + algo.size);
      const provenance = this.#u32(at + 4);
      out.push(
        Object.freeze(
          sigLen > 0
            ? { algo: algo.name, digest, provenance, imaSignature: this.#b.subarray(sOff, sOff + sigLen) }
            : { algo: algo.name, digest, provenance },
        ),
      );
    }
    return Object.freeze(out);
  }

  *paths(): IterableIterator<string> {
    for (let i = 0; i < this.size; i++) {
      const a = this.#strings + this.#u32(this.#offs + 4 * i);
      const b = this.#strings + this.#u32(this.#offs + 4 * i + 4);
      yield this.#b.toString('utf8', a, b);
    }
  }
}
