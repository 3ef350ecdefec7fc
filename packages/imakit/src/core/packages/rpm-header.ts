/**
 * RPM lead and header structures (rpm `docs/manual/format_v4.md`, `format_header.md`, `format_lead.md`;
 * `lib/header.cc` headerVerifyInfo/headerExport). A header is an intro (magic `8E AD E8 01`, 4 reserved
 * bytes, `il` entries, `dl` data bytes), `il` 16-byte index entries `{tag, type, offset, count}` (all
 * big-endian) and the data store. Installed headers (rpmdb) are the same without the 8-byte magic.
 *
 * Decoding checks every offset, count and string against the data store before anything is sliced,
 * integers for natural alignment (as rpm does), and the region trailer of tags 61-64. The encoder lays
 * entries out in tag order with one region covering them all, which is how rpm writes a header it has
 * built (so `encodeRpmHeader(decodeRpmHeader(b)) ≡ b` for rpmbuild's headers; tested).
 */
import { CodecError } from '../../errors.ts';

export const RPM_LEAD_SIZE = 96;
export const RPM_LEAD_MAGIC = 0xedabeedb;
export const RPM_HEADER_MAGIC = 0x8eade801;
/** rpm's own caps (`hdrchkTags`, `hdrchkData`): 0xffff entries, 256 MiB of data. */
export const MAX_RPM_HEADER_ENTRIES = 0xffff;
export const MAX_RPM_HEADER_DATA = 0x0fffffff;
/** a string array count larger than the data store is impossible; this bounds the array up front */
export const MAX_RPM_ARRAY_COUNT = 0x0fffffff;

export const RpmType = Object.freeze({
  NULL: 0,
  CHAR: 1,
  INT8: 2,
  INT16: 3,
  INT32: 4,
  INT64: 5,
  STRING: 6,
  BIN: 7,
  STRING_ARRAY: 8,
  I18NSTRING: 9,
});

/** Region tags: HEADERSIGNATURES 62 (signature header), HEADERIMMUTABLE 63 (main header). */
export const REGION_TAGS = Object.freeze([61, 62, 63, 64]);

export type RpmValue = null | Uint8Array | number[] | bigint[] | string | string[];

export interface RpmEntry {
  readonly tag: number;
  readonly type: number;
  readonly count: number;
  readonly value: RpmValue;
}

export interface RpmHeader {
  /** entries in index order (the region entry, if any, first) */
  readonly entries: readonly RpmEntry[];
  /** the region tag (62/63) when the first entry is a region, with how many entries it covers */
  readonly region?: { readonly tag: number; readonly entries: number };
  /** bytes the header occupied (intro + index + data; no padding) */
  readonly size: number;
}

export interface RpmLead {
  readonly major: number;
  readonly minor: number;
  readonly type: number;
  readonly archnum: number;
  readonly name: string;
  readonly osnum: number;
  readonly signatureType: number;
}

function dv(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/**
 * Decode the 96-byte lead (historical; only the magic and signature type 5 matter to rpm).
 * @throws CodecError E_PKG_FORMAT, E_CODEC_TRUNCATED
 */
export function decodeRpmLead(b: Uint8Array): RpmLead {
  if (b.length < RPM_LEAD_SIZE)
    throw new CodecError('E_CODEC_TRUNCATED', `RPM lead needs ${RPM_LEAD_SIZE} bytes, got ${b.length}`, {
      offset: 0,
      field: 'lead',
    });
  const v = dv(b);
  if (v.getUint32(0) !== RPM_LEAD_MAGIC)
    throw new CodecError('E_PKG_FORMAT', 'not an RPM package (no edabeedb lead magic)', {
      offset: 0,
      field: 'lead magic',
    });
  const signatureType = v.getUint16(78);
  if (signatureType !== 5)
    throw new CodecError(
      'E_PKG_FORMAT',
      `RPM lead signature type ${signatureType} (only header-style 5 exists since rpm 3)`,
      {
        offset: 78,
        field: 'signature_type',
      },
    );
  const nameBytes = b.subarray(10, 76);
  const z = nameBytes.indexOf(0);
  return Object.freeze({
    major: b[4]!,
    minor: b[5]!,
    type: v.getUint16(6),
    archnum: v.getUint16(8),
    name: Buffer.from(z < 0 ? nameBytes : nameBytes.subarray(0, z)).toString('latin1'),
    osnum: v.getUint16(76),
    signatureType,
  });
}

const ALIGN: Record<number, number> = { 3: 2, 4: 4, 5: 8 };
const ELEM: Record<number, number> = { 0: 0, 1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 7: 1 };

/**
 * Decode a header. `magic`: true for headers in a package file (intro starts with the magic), false for
 * rpmdb blobs (they start at `il`). Returns the header and its size; the caller checks what follows.
 * @param b bytes starting at the header (may extend past it)
 * @param offset where `b` starts in the file (for errors)
 * @param what names the header in errors: `signature header`, `main header`, `rpmdb hnum 7`
 * @throws CodecError E_PKG_FORMAT, E_PKG_TOO_LARGE, E_CODEC_TRUNCATED (with `member` = what, field = tag)
 */
export function decodeRpmHeader(
  b: Uint8Array,
  offset: number,
  what: string,
  opts: { magic: boolean },
): RpmHeader {
  const err = (
    code: 'E_PKG_FORMAT' | 'E_PKG_TOO_LARGE' | 'E_CODEC_TRUNCATED',
    msg: string,
    at: number,
    field: string,
  ) => new CodecError(code, msg, { offset: offset + at, field, member: what });
  const intro = opts.magic ? 16 : 8;
  if (b.length < intro)
    throw err('E_CODEC_TRUNCATED', `${what} intro needs ${intro} bytes, got ${b.length}`, 0, 'intro');
  const v = dv(b);
  if (opts.magic && v.getUint32(0) !== RPM_HEADER_MAGIC)
    throw err('E_PKG_FORMAT', `${what} has no 8eade801 magic`, 0, 'magic');
  const il = v.getUint32(intro - 8);
  const dl = v.getUint32(intro - 4);
  if (il === 0 || il > MAX_RPM_HEADER_ENTRIES)
    throw err(
      'E_PKG_TOO_LARGE',
      `${what} index count ${il} outside 1..${MAX_RPM_HEADER_ENTRIES}`,
      intro - 8,
      'il',
    );
  if (dl > MAX_RPM_HEADER_DATA)
    throw err('E_PKG_TOO_LARGE', `${what} data size ${dl} over ${MAX_RPM_HEADER_DATA}`, intro - 4, 'dl');
  const size = intro + 16 * il + dl;
  if (b.length < size)
    throw err('E_CODEC_TRUNCATED', `${what} declares ${size} bytes, ${b.length} present`, 0, 'dl');
  const dataStart = intro + 16 * il;
  const data = b.subarray(dataStart, size);
  const dview = dv(data);
  const entries: RpmEntry[] = [];
  let region: RpmHeader['region'];
  for (let i = 0; i < il; i++) {
    const at = intro + 16 * i;
    const tag = v.getUint32(at);
    const type = v.getUint32(at + 4);
    const off = v.getInt32(at + 8);
    const count = v.getUint32(at + 12);
    const field = `tag ${tag}`;
    if (type > 9) throw err('E_PKG_FORMAT', `${what} tag ${tag} has unknown type ${type}`, at + 4, field);
    if (off < 0 || off > dl)
      throw err(
        'E_PKG_FORMAT',
        `${what} tag ${tag} offset ${off} outside the data store (${dl})`,
        at + 8,
        field,
      );
    if (count === 0 || count > MAX_RPM_ARRAY_COUNT)
      throw err('E_PKG_FORMAT', `${what} tag ${tag} count ${count} invalid`, at + 12, field);
    const align = ALIGN[type];
    if (align !== undefined && off % align !== 0)
      throw err(
        'E_PKG_FORMAT',
        `${what} tag ${tag} (type ${type}) offset ${off} not aligned to ${align}`,
        at + 8,
        field,
      );
    let value: RpmValue;
    if (type === RpmType.STRING || type === RpmType.STRING_ARRAY || type === RpmType.I18NSTRING) {
      if (type === RpmType.STRING && count !== 1)
        throw err('E_PKG_FORMAT', `${what} tag ${tag} STRING with count ${count}`, at + 12, field);
      if (count > dl - off)
        throw err(
          'E_PKG_FORMAT',
          `${what} tag ${tag}: ${count} strings cannot fit ${dl - off} bytes`,
          at + 12,
          field,
        );
      const strs: string[] = [];
      let p = off;
      for (let k = 0; k < count; k++) {
        const z = data.indexOf(0, p);
        if (z < 0)
          throw err(
            'E_PKG_FORMAT',
            `${what} tag ${tag} string ${k} is not NUL-terminated in the data store`,
            dataStart + p,
            field,
          );
        strs.push(Buffer.from(data.subarray(p, z)).toString('utf8'));
        p = z + 1;
      }
      value = type === RpmType.STRING ? strs[0]! : strs;
    } else {
      const elem = ELEM[type]!;
      if (count > (dl - off) / Math.max(elem, 1))
        throw err(
          'E_PKG_FORMAT',
          `${what} tag ${tag}: ${count} elements of ${elem} bytes overrun the data store`,
          at + 12,
          field,
        );
      if (type === RpmType.NULL) value = null;
      else if (type === RpmType.BIN || type === RpmType.CHAR || type === RpmType.INT8)
        value = Uint8Array.from(data.subarray(off, off + count));
      else if (type === RpmType.INT64) {
        const a: bigint[] = [];
        for (let k = 0; k < count; k++) a.push(dview.getBigUint64(off + 8 * k));
        value = a;
      } else {
        const a: number[] = [];
        for (let k = 0; k < count; k++)
          a.push(type === RpmType.INT16 ? dview.getUint16(off + 2 * k) : dview.getUint32(off + 4 * k));
        value = a;
      }
    }
    if (i === 0 && REGION_TAGS.includes(tag) && type === RpmType.BIN && count === 16) {
      // the trailer is an index entry {tag, BIN, -(16*ril), 16} stored in the data
      const t = dv(value as Uint8Array);
      const ril = -t.getInt32(8) / 16;
      if (
        t.getUint32(0) !== tag ||
        t.getUint32(4) !== RpmType.BIN ||
        t.getUint32(12) !== 16 ||
        !Number.isInteger(ril) ||
        ril < 1 ||
        ril > il
      )
        throw err('E_PKG_FORMAT', `${what} region ${tag} trailer is inconsistent`, dataStart + off, field);
      region = Object.freeze({ tag, entries: ril });
    }
    entries.push(Object.freeze({ tag, type, count, value }));
  }
  return Object.freeze({ entries: Object.freeze(entries), ...(region ? { region } : {}), size });
}

/** Pad to 8 after the signature header (format_v4.md). */
export function signaturePadding(size: number): number {
  return (8 - (size % 8)) % 8;
}

function valueBytes(e: RpmEntry): Uint8Array {
  const v = e.value;
  switch (e.type) {
    case RpmType.NULL:
      return new Uint8Array(0);
    case RpmType.CHAR:
    case RpmType.INT8:
    case RpmType.BIN:
      return v as Uint8Array;
    case RpmType.INT16:
    case RpmType.INT32: {
      const a = v as number[];
      const w = e.type === RpmType.INT16 ? 2 : 4;
      const out = new Uint8Array(a.length * w);
      const d = dv(out);
      a.forEach((x, k) => (w === 2 ? d.setUint16(2 * k, x) : d.setUint32(4 * k, x)));
      return out;
    }
    case RpmType.INT64: {
      const a = v as bigint[];
      const out = new Uint8Array(a.length * 8);
      a.forEach((x, k) => dv(out).setBigUint64(8 * k, x));
      return out;
    }
    case RpmType.STRING:
      return Buffer.from(`${v as string}\0`, 'utf8');
    default:
      return Buffer.concat((v as string[]).map((s) => Buffer.from(`${s}\0`, 'utf8')));
  }
}

function countOf(e: Pick<RpmEntry, 'type' | 'value'>): number {
  const v = e.value;
  if (e.type === RpmType.STRING || e.type === RpmType.NULL) return 1;
  if (v instanceof Uint8Array) return v.length;
  return (v as unknown[]).length;
}

/** Build an entry with its count derived from the value. */
export function rpmEntry(tag: number, type: number, value: RpmValue): RpmEntry {
  return Object.freeze({ tag, type, value, count: countOf({ type, value }) });
}

/**
 * Encode a header: entries sorted by tag, data laid out in that order with natural alignment, and when
 * `regionTag` is given one region covering every entry (its entry first, its trailer last in the data).
 * Region entries already in `entries` are dropped and rebuilt.
 */
export function encodeRpmHeader(
  entries: readonly RpmEntry[],
  opts: { magic: boolean; regionTag?: number },
): Uint8Array {
  const body = entries
    .filter((e) => !REGION_TAGS.includes(e.tag))
    .slice()
    .sort((a, b) => a.tag - b.tag);
  const il = body.length + (opts.regionTag !== undefined ? 1 : 0);
  const index: { tag: number; type: number; off: number; count: number }[] = [];
  const chunks: Uint8Array[] = [];
  let dl = 0;
  for (const e of body) {
    const align = ALIGN[e.type] ?? 1;
    const pad = (align - (dl % align)) % align;
    if (pad) {
      chunks.push(new Uint8Array(pad));
      dl += pad;
    }
    const bytes = valueBytes(e);
    index.push({ tag: e.tag, type: e.type, off: dl, count: countOf(e) });
    chunks.push(bytes);
    dl += bytes.length;
  }
  if (opts.regionTag !== undefined) {
    const trailer = new Uint8Array(16);
    const t = dv(trailer);
    t.setUint32(0, opts.regionTag);
    t.setUint32(4, RpmType.BIN);
    t.setInt32(8, -16 * il);
    t.setUint32(12, 16);
    index.unshift({ tag: opts.regionTag, type: RpmType.BIN, off: dl, count: 16 });
    chunks.push(trailer);
    dl += 16;
  }
  const intro = opts.magic ? 16 : 8;
  const out = new Uint8Array(intro + 16 * il + dl);
  const v = dv(out);
  if (opts.magic) v.setUint32(0, RPM_HEADER_MAGIC);
  v.setUint32(intro - 8, il);
  v.setUint32(intro - 4, dl);
  index.forEach((x, i) => {
    const at = intro + 16 * i;
    v.setUint32(at, x.tag);
    v.setUint32(at + 4, x.type);
    v.setInt32(at + 8, x.off);
    v.setUint32(at + 12, x.count);
  });
  let p = intro + 16 * il;
  for (const c of chunks) {
    out.set(c, p);
    p += c.length;
  }
  return out;
}

/** The value of `tag`, or undefined. */
export function rpmTag(h: RpmHeader, tag: number): RpmEntry | undefined {
  return h.entries.find((e) => e.tag === tag);
}
