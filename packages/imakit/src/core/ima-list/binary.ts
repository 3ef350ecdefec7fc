/**
 * The binary measurement list codec (`binary_runtime_measurements[_<alg>]`, formats.md §1.2, §1.4;
 * security/integrity/ima/ima_fs.c `ima_measurements_show`).
 *
 * Entry: u32 pcr ‖ digest(D) ‖ u32 name_len ‖ name ‖ [u32 data_len] ‖ template data, where D is the
 * bank's digest size and the data length is absent for the legacy `ima` template (whose data is
 * d(20) ‖ u32 strlen ‖ name). Integers are host order, or little-endian under
 * `ima_canonical_fmt`; the byte order is DETECTED from the first entry and reported (pitfall 6).
 *
 * The scanner works on (buffer, offset) pairs and fills a reused cursor so replay of a long list
 * allocates nothing per entry; `streamBinaryList` walks chunks of any source with memory bounded by
 * the chunk size plus the largest entry. Every length is checked before any slice or allocation: a
 * template-data length of 4 GiB is an E_CODEC_TOO_LARGE error, never an allocation.
 *
 * Parsing yields UNTRUSTED entries (style.md practice 3): the template name and pcr are not covered
 * by the template digest; only replay ties the data to a PCR.
 */
import { CodecError } from '../../errors.ts';
import { latin1, type Endian } from '../bytes/bytes.ts';
import { findHashAlgo } from '../hash/hash-algo.ts';
import { LEGACY_DIGEST_SIZE } from './fields.ts';

/** Largest template data accepted (evmctl uses 4 KiB, too small for modsig/evm-sig entries). */
export const MAX_TEMPLATE_DATA_LEN = 16 * 1024 * 1024;
/** Largest template name (format strings of custom templates included). */
export const MAX_TEMPLATE_NAME_LEN = 255;
/** PCR indexes a TPM has (evmctl's bound). */
export const MAX_PCR = 23;

/** How a binary list is encoded. */
export interface ListFormat {
  /** byte order of the integer fields ('le' = canonical / LE host; 'be' = big-endian host native) */
  readonly endian: Endian;
  /** template digest size: 20 for the classic (sha1) list, else the per-bank file's digest size */
  readonly digestSize: number;
  /** name of the bank the digests belong to, when known (per-bank file name or size) */
  readonly bank: string;
}

/** The classic list: SHA-1 digests, little-endian. */
export const DEFAULT_FORMAT: ListFormat = Object.freeze({ endian: 'le', digestSize: 20, bank: 'sha1' });

/** A reused, mutable view of the entry just scanned. Offsets are into `buf`. */
export interface EntryCursor {
  buf: Uint8Array;
  /** 0-based entry index in the whole list */
  index: number;
  /** absolute byte offset of the entry in the whole list */
  offset: number;
  /** total entry length in bytes */
  length: number;
  pcr: number;
  digestOff: number;
  nameOff: number;
  nameLen: number;
  /** hashed template data (for the legacy template: d ‖ u32 len ‖ name) */
  dataOff: number;
  dataLen: number;
  legacy: boolean;
}

/** A fresh cursor. */
export function newCursor(): EntryCursor {
  return {
    buf: new Uint8Array(0),
    index: 0,
    offset: 0,
    length: 0,
    pcr: 0,
    digestOff: 0,
    nameOff: 0,
    nameLen: 0,
    dataOff: 0,
    dataLen: 0,
    legacy: false,
  };
}

/** One parsed, untrusted entry (a copy independent of the source buffer). */
export interface UntrustedEntry {
  readonly index: number;
  readonly offset: number;
  /** PCR the entry claims to have been extended into (not covered by the digest) */
  readonly pcr: number;
  /** template digest as listed (all zero for a violation) */
  readonly digest: Uint8Array;
  /** template name as listed (not covered by the digest) */
  readonly templateName: string;
  /** the hashed template data (legacy `ima`: d ‖ u32 strlen ‖ name) */
  readonly templateData: Uint8Array;
}

const isLegacyName = (b: Uint8Array, off: number, len: number): boolean =>
  len === 3 && b[off] === 0x69 && b[off + 1] === 0x6d && b[off + 2] === 0x61; // "ima"

function rd32(b: Uint8Array, p: number, le: boolean): number {
  return le
    ? (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0
    : ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;
}

/**
 * Scan one entry of `buf` starting at `pos` (absolute list offset `absBase + pos`) into `c`.
 * @returns the position after the entry, or -1 when `buf` ends inside the entry (more bytes needed)
 * @throws CodecError E_LIST_ENTRY (bad pcr), E_CODEC_TOO_LARGE (absurd length) naming entry and offset
 */
export function scanEntry(
  buf: Uint8Array,
  pos: number,
  end: number,
  fmt: ListFormat,
  index: number,
  absBase: number,
  c: EntryCursor,
  maxData = MAX_TEMPLATE_DATA_LEN,
): number {
  const le = fmt.endian === 'le';
  const D = fmt.digestSize;
  if (end - pos < 4) return -1;
  const pcr = rd32(buf, pos, le);
  if (pcr > MAX_PCR)
    throw new CodecError(
      'E_LIST_ENTRY',
      `pcr ${pcr} out of range 0..${MAX_PCR}${pcr > 0xffffff ? ' (wrong byte order?)' : ''}`,
      {
        offset: absBase + pos,
        field: 'pcr',
        entry: index,
      },
    );
  let p = pos + 4;
  if (end - p < D + 4) return -1;
  const digestOff = p;
  p += D;
  const nameLen = rd32(buf, p, le);
  if (nameLen === 0 || nameLen > MAX_TEMPLATE_NAME_LEN)
    throw new CodecError(
      'E_LIST_ENTRY',
      `template name length ${nameLen} out of range 1..${MAX_TEMPLATE_NAME_LEN}`,
      {
        offset: absBase + p,
        field: 'template name length',
        entry: index,
      },
    );
  p += 4;
  if (end - p < nameLen) return -1;
  const nameOff = p;
  p += nameLen;
  const legacy = isLegacyName(buf, nameOff, nameLen);
  let dataOff: number, dataLen: number;
  if (legacy) {
    // ima: d(20) ‖ u32 strlen(name) ‖ name — no template-data length word (pitfall 2)
    if (end - p < LEGACY_DIGEST_SIZE + 4) return -1;
    const n = rd32(buf, p + LEGACY_DIGEST_SIZE, le);
    if (n > maxData)
      throw new CodecError('E_CODEC_TOO_LARGE', `legacy name length ${n} exceeds ${maxData}`, {
        offset: absBase + p + LEGACY_DIGEST_SIZE,
        field: 'n',
        entry: index,
      });
    dataOff = p;
    dataLen = LEGACY_DIGEST_SIZE + 4 + n;
    if (end - p < dataLen) return -1;
  } else {
    if (end - p < 4) return -1;
    dataLen = rd32(buf, p, le);
    if (dataLen > maxData)
      throw new CodecError('E_CODEC_TOO_LARGE', `template data length ${dataLen} exceeds ${maxData}`, {
        offset: absBase + p,
        field: 'template data length',
        entry: index,
      });
    p += 4;
    dataOff = p;
    if (end - p < dataLen) return -1;
  }
  const next = dataOff + dataLen;
  c.buf = buf;
  c.index = index;
  c.offset = absBase + pos;
  c.length = next - pos;
  c.pcr = pcr;
  c.digestOff = digestOff;
  c.nameOff = nameOff;
  c.nameLen = nameLen;
  c.dataOff = dataOff;
  c.dataLen = dataLen;
  c.legacy = legacy;
  return next;
}

/** Copy the cursor's entry into an independent UntrustedEntry. */
export function cursorToEntry(c: EntryCursor, digestSize: number): UntrustedEntry {
  return Object.freeze({
    index: c.index,
    offset: c.offset,
    pcr: c.pcr,
    digest: c.buf.slice(c.digestOff, c.digestOff + digestSize),
    templateName: latin1(c.buf.subarray(c.nameOff, c.nameOff + c.nameLen)),
    templateData: c.buf.slice(c.dataOff, c.dataOff + c.dataLen),
  });
}

/** Template name of the cursor's entry. */
export function cursorTemplateName(c: EntryCursor): string {
  return latin1(c.buf.subarray(c.nameOff, c.nameOff + c.nameLen));
}

/** Evidence for a detected list format, reported to the user rather than silently assumed. */
export interface FormatDetection {
  readonly format: ListFormat;
  /** how it was decided */
  readonly evidence: string;
}

const PLAUSIBLE_SIZES = [20, 32, 48, 64];

function bankForSize(size: number): string {
  return size === 20 ? 'sha1' : size === 32 ? 'sha256' : size === 48 ? 'sha384' : 'sha512';
}

/** Try to scan up to `probe` entries with `fmt`; returns how many parsed (Infinity-safe). */
function probeFormat(bytes: Uint8Array, fmt: ListFormat, probe: number): number {
  const c = newCursor();
  let pos = 0;
  let n = 0;
  try {
    while (n < probe && pos < bytes.length) {
      const next = scanEntry(bytes, pos, bytes.length, fmt, n, 0, c);
      if (next < 0) return n > 0 ? n : -1;
      const name = cursorTemplateName(c);
      if (!/^[\x21-\x7e]+$/.test(name)) return n > 0 ? n : -1;
      pos = next;
      n++;
    }
  } catch {
    return n > 0 ? n : -1;
  }
  return n;
}

/**
 * Why the first entry fails to parse under the reading that gets farthest into it (a PCR in
 * range, then the furthest failing offset): a 4 GiB template-data length or an entry cut short
 * is then named instead of only "no byte order fits".
 */
function firstEntryFailure(
  head: Uint8Array,
  endians: readonly Endian[],
  sizes: readonly number[],
  bank: string | undefined,
): { how: string; offset: number; field: string; reason: string } | undefined {
  let best: { how: string; offset: number; field: string; reason: string } | undefined;
  for (const endian of endians)
    for (const size of sizes) {
      const fmt: ListFormat = { endian, digestSize: size, bank: bank ?? bankForSize(size) };
      const how = `${endian === 'le' ? 'little' : 'big'}-endian, ${size}-byte ${fmt.bank} digests`;
      let found: { how: string; offset: number; field: string; reason: string };
      try {
        const next = scanEntry(head, 0, head.length, fmt, 0, 0, newCursor());
        if (next >= 0) continue; // parses, but the template name is not printable
        found = {
          how,
          offset: head.length,
          field: 'entry',
          reason: `entry 0 is cut short at offset ${head.length}`,
        };
      } catch (e) {
        if (!(e instanceof CodecError)) throw e;
        const offset = e.context.offset ?? 0;
        const reason = e.message.replace(/^entry \d+, offset \d+(, field [^:]+)?: /, '');
        found = { how, offset, field: e.context.field ?? 'entry', reason };
      }
      // a reading whose template name parsed beats one that failed at the name length
      const stage = (f: { field: string }): number =>
        f.field === 'pcr' ? 0 : f.field === 'template name length' ? 1 : 2;
      if (stage(found) === 0) continue;
      if (!best || stage(found) > stage(best) || (stage(found) === stage(best) && found.offset > best.offset))
        best = found;
    }
  return best;
}

/**
 * Detect byte order and digest size from the start of a list. A bank hint (from a
 * `*_runtime_measurements_<alg>` file name or the caller) fixes the digest size.
 * @throws CodecError E_LIST_ENDIAN when neither byte order yields a plausible first entry
 */
export function detectListFormat(
  head: Uint8Array,
  hint: { bank?: string; endian?: Endian } = {},
): FormatDetection {
  const hinted = hint.bank !== undefined ? findHashAlgo(hint.bank) : undefined;
  if (hint.bank !== undefined && hinted === undefined)
    throw new CodecError('E_LIST_ENDIAN', `unknown bank '${hint.bank}'`, { offset: 0, field: 'bank' });
  if (head.length === 0)
    return {
      format: { endian: hint.endian ?? 'le', digestSize: hinted?.size ?? 20, bank: hinted?.name ?? 'sha1' },
      evidence: 'empty list',
    };
  const endians: Endian[] = hint.endian ? [hint.endian] : ['le', 'be'];
  const sizes = hinted ? [hinted.size] : PLAUSIBLE_SIZES;
  let best: { fmt: ListFormat; n: number } | undefined;
  for (const endian of endians)
    for (const size of sizes) {
      const fmt: ListFormat = { endian, digestSize: size, bank: hinted?.name ?? bankForSize(size) };
      const n = probeFormat(head, fmt, 8);
      if (n > (best?.n ?? 0)) best = { fmt, n };
    }
  if (!best) {
    const leP = rd32(head, 0, true);
    const beP = head.length >= 4 ? rd32(head, 0, false) : 0;
    const why = firstEntryFailure(head, endians, sizes, hinted?.name);
    throw new CodecError(
      'E_LIST_ENDIAN',
      `no byte order/digest size yields a valid first entry (pcr word reads ${leP} little-endian, ${beP} big-endian)` +
        (why ? `; the closest reading (${why.how}): ${why.reason}` : ''),
      { offset: why?.offset ?? 0, field: why?.field ?? 'pcr', entry: 0 },
    );
  }
  const f = Object.freeze(best.fmt);
  return {
    format: f,
    evidence:
      `${f.endian === 'le' ? 'little-endian (canonical or LE host)' : 'big-endian (host order of a BE kernel without ima_canonical_fmt)'}` +
      `, ${f.digestSize}-byte ${f.bank} template digests${hinted ? ' (from the bank name)' : ''}; ${best.n} leading entries parse`,
  };
}

/**
 * Iterate the entries of an in-memory list, reusing one cursor.
 * @throws CodecError on malformed input (E_CODEC_TRUNCATED at the end of a cut entry)
 */
export function* iterateBinaryList(
  bytes: Uint8Array,
  fmt: ListFormat,
  cursor = newCursor(),
): Generator<EntryCursor> {
  let pos = 0;
  let index = 0;
  while (pos < bytes.length) {
    const next = scanEntry(bytes, pos, bytes.length, fmt, index, 0, cursor);
    if (next < 0)
      throw new CodecError(
        'E_CODEC_TRUNCATED',
        `entry ${index} is cut short (${bytes.length - pos} bytes left)`,
        {
          offset: pos,
          field: 'entry',
          entry: index,
        },
      );
    yield cursor;
    pos = next;
    index++;
  }
}

/** Parse a whole in-memory list into untrusted entries. */
export function parseBinaryList(bytes: Uint8Array, fmt: ListFormat = DEFAULT_FORMAT): UntrustedEntry[] {
  const out: UntrustedEntry[] = [];
  for (const c of iterateBinaryList(bytes, fmt)) out.push(cursorToEntry(c, fmt.digestSize));
  return out;
}

/**
 * Stream the entries of a list arriving in chunks (e.g. 1 MiB reads of a file). Memory stays at
 * one chunk plus one carried partial entry. The yielded cursor is reused: copy what you keep.
 * @param startIndex / startOffset  where the chunks begin in the whole list (resuming a checkpoint)
 */
export async function* streamBinaryList(
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  fmt: ListFormat,
  opts: { startIndex?: number; startOffset?: number; maxTemplateData?: number } = {},
): AsyncGenerator<EntryCursor> {
  const c = newCursor();
  let index = opts.startIndex ?? 0;
  let abs = opts.startOffset ?? 0; // absolute offset of work[0]
  let carry: Uint8Array = new Uint8Array(0);
  const maxData = opts.maxTemplateData ?? MAX_TEMPLATE_DATA_LEN;
  for await (const chunk of chunks) {
    let work: Uint8Array;
    if (carry.length === 0) work = chunk;
    else {
      work = new Uint8Array(carry.length + chunk.length);
      work.set(carry, 0);
      work.set(chunk, carry.length);
    }
    let pos = 0;
    for (;;) {
      const next = scanEntry(work, pos, work.length, fmt, index, abs, c, maxData);
      if (next < 0) break;
      yield c;
      pos = next;
      index++;
    }
    // keep the partial entry; copy so the caller may reuse its chunk buffer
    carry = work.slice(pos);
    abs += pos;
  }
  if (carry.length > 0)
    throw new CodecError(
      'E_CODEC_TRUNCATED',
      `entry ${index} is cut short (${carry.length} bytes at the end)`,
      {
        offset: abs,
        field: 'entry',
        entry: index,
      },
    );
}

/**
 * Scan a list arriving in chunks synchronously, calling `onEntry` with a reused cursor for every
 * complete entry (the replay hot path: no promise or generator step per entry, unlike
 * streamBinaryList). The cursor is valid only during the call; chunks may be reused by the caller
 * once `push` returns (the partial tail is copied).
 */
/**
 * Sees a chunk's complete entries before they are fed one by one ({@link ChunkScanner.push}):
 * `spans` holds each entry's template data as (offset, length) pairs in `buf` (length -1 for a
 * legacy `ima` entry), `fields` its (offset in `buf`, pcr, length) triples.
 */
export type BatchHook = (
  buf: Uint8Array,
  spans: Int32Array,
  count: number,
  firstIndex: number,
  fields: Int32Array,
) => void;

export class ChunkScanner {
  /** index of the next entry */
  index: number;
  /** absolute offset of the next entry */
  offset: number;
  private carry: Uint8Array = new Uint8Array(0);
  private joined: Uint8Array = new Uint8Array(0);
  private readonly c = newCursor();
  private readonly maxData: number;
  constructor(
    readonly fmt: ListFormat,
    opts: { startIndex?: number; startOffset?: number; maxTemplateData?: number } = {},
  ) {
    this.index = opts.startIndex ?? 0;
    this.offset = opts.startOffset ?? 0;
    this.maxData = opts.maxTemplateData ?? MAX_TEMPLATE_DATA_LEN;
  }

  /**
   * Scan every complete entry of the carried tail plus `chunk`. With `onBatch`, the chunk's entries
   * are scanned first and `onBatch` sees where their template data lies (a batch hasher's spans:
   * offset and length pairs in `buf`, length -1 for a legacy `ima` entry) before `onEntry` sees
   * them one by one; an entry that does not parse is thrown after the ones before it were seen,
   * as without a batch.
   * @throws CodecError E_LIST_ENTRY / E_CODEC_TOO_LARGE naming entry and offset
   */
  push(chunk: Uint8Array, onEntry: (c: EntryCursor) => void, onBatch?: BatchHook): void {
    if (onBatch !== undefined) return this.pushBatch(chunk, onEntry, onBatch);
    const work = this.afterCarry(chunk);
    const c = this.c;
    const fmt = this.fmt;
    const maxData = this.maxData;
    const end = work.length;
    const abs = this.offset;
    let pos = 0;
    let index = this.index;
    try {
      for (;;) {
        const next = scanEntry(work, pos, end, fmt, index, abs, c, maxData);
        if (next < 0) break;
        onEntry(c);
        pos = next;
        index++;
      }
    } finally {
      this.index = index;
      this.offset = abs + pos;
    }
    this.carry = pos === end ? new Uint8Array(0) : work.slice(pos);
  }

  /** The carried tail of the last chunk followed by `chunk` (`chunk` itself when nothing is carried). */
  private afterCarry(chunk: Uint8Array): Uint8Array {
    if (this.carry.length === 0) return chunk;
    // one joined buffer, reused: a fresh MiB per chunk is external garbage the young-generation
    // GC rarely sees on an allocation-free replay, and it piles up in RSS (issue 4)
    const need = this.carry.length + chunk.length;
    if (this.joined.length < need) this.joined = new Uint8Array(need + (need >>> 3));
    const work = this.joined.subarray(0, need);
    work.set(this.carry, 0);
    work.set(chunk, this.carry.length);
    return work;
  }

  /** per entry of a batch: its offset in the work buffer, pcr and length (the rest is derived) */
  private fields = new Int32Array(0);
  private spans = new Int32Array(0);

  private pushBatch(chunk: Uint8Array, onEntry: (c: EntryCursor) => void, onBatch: BatchHook): void {
    const work = this.afterCarry(chunk);
    const c = this.c;
    const fmt = this.fmt;
    const end = work.length;
    const abs = this.offset;
    const first = this.index;
    let pos = 0;
    let n = 0;
    let failure: unknown;
    // pass 1: scan and record
    try {
      for (;;) {
        const next = scanEntry(work, pos, end, fmt, first + n, abs, c, this.maxData);
        if (next < 0) break;
        if (3 * n === this.fields.length) this.grow();
        this.fields[3 * n] = pos;
        this.fields[3 * n + 1] = c.pcr;
        this.fields[3 * n + 2] = c.length;
        this.spans[2 * n] = c.dataOff;
        this.spans[2 * n + 1] = c.legacy ? -1 : c.dataLen;
        pos = next;
        n++;
      }
    } catch (e) {
      failure = e;
    }
    // pass 2: the batch, then every entry through the one cursor (offsets derived as scanEntry sets them)
    const f = this.fields;
    const spans = this.spans;
    const D = fmt.digestSize;
    let index = first;
    try {
      if (n > 0) onBatch(work, spans, n, first, f);
      c.buf = work;
      for (let i = 0; i < n; i++) {
        const at = f[3 * i]!;
        const legacy = spans[2 * i + 1]! < 0;
        c.index = index;
        c.offset = abs + at;
        c.pcr = f[3 * i + 1]!;
        c.length = f[3 * i + 2]!;
        c.digestOff = at + 4;
        c.nameOff = at + 8 + D;
        c.dataOff = spans[2 * i]!;
        c.nameLen = c.dataOff - (legacy ? 0 : 4) - c.nameOff;
        c.dataLen = at + c.length - c.dataOff;
        c.legacy = legacy;
        onEntry(c);
        index++;
      }
    } finally {
      this.index = index;
      this.offset = abs + (index === first + n ? pos : f[3 * (index - first)]!);
    }
    if (failure !== undefined) throw failure;
    this.carry = pos === end ? new Uint8Array(0) : work.slice(pos);
  }

  private grow(): void {
    const size = Math.max(1024, this.fields.length / 3) * 2;
    const f = new Int32Array(3 * size);
    f.set(this.fields);
    this.fields = f;
    const s = new Int32Array(2 * size);
    s.set(this.spans);
    this.spans = s;
  }

  /**
   * The list ended: a carried partial entry is an error.
   * @throws CodecError E_CODEC_TRUNCATED
   */
  end(): void {
    if (this.carry.length > 0)
      throw new CodecError(
        'E_CODEC_TRUNCATED',
        `entry ${this.index} is cut short (${this.carry.length} bytes at the end)`,
        { offset: this.offset, field: 'entry', entry: this.index },
      );
  }
}

/**
 * Encode entries into a binary list.
 * @throws RangeError when a digest does not have the format's size
 */
export function encodeBinaryList(
  entries: readonly UntrustedEntry[],
  fmt: ListFormat = DEFAULT_FORMAT,
): Uint8Array {
  let n = 0;
  for (const e of entries) {
    if (e.digest.length !== fmt.digestSize)
      throw new RangeError(
        `entry ${e.index}: digest is ${e.digest.length} bytes, format needs ${fmt.digestSize}`,
      );
    n +=
      4 +
      fmt.digestSize +
      4 +
      e.templateName.length +
      (e.templateName === 'ima' ? 0 : 4) +
      e.templateData.length;
  }
  const out = new Uint8Array(n);
  const dv = new DataView(out.buffer);
  const le = fmt.endian === 'le';
  let p = 0;
  for (const e of entries) {
    dv.setUint32(p, e.pcr, le);
    out.set(e.digest, p + 4);
    p += 4 + fmt.digestSize;
    const name = Buffer.from(e.templateName, 'latin1');
    dv.setUint32(p, name.length, le);
    out.set(name, p + 4);
    p += 4 + name.length;
    if (e.templateName !== 'ima') {
      dv.setUint32(p, e.templateData.length, le);
      p += 4;
    }
    out.set(e.templateData, p);
    p += e.templateData.length;
  }
  return out;
}
