/**
 * Byte-order conversion of a binary measurement list: canonical (little-endian,
 * `ima_canonical_fmt`) <-> host order of a big-endian kernel (formats.md §1.2, pitfall 6).
 *
 * Converted: the entry's pcr, template-name length and template-data length words; inside the
 * template data of a known template, every field's length word and the integer fields whose content
 * follows the byte order (`iuid`, `igid` u32, `imode` u16, each u32 of `xattrlengths`); for the
 * legacy `ima` template, its name-length word. Not converted: digests, names, signatures.
 *
 * What the conversion cannot change: the template digests. The kernel hashed the template data in
 * the byte order it was written in, so a converted list carries digests over the ORIGINAL bytes;
 * replaying it needs converting back (the conversion is its own exact inverse). The result says so.
 */
import { CodecError } from '../../errors.ts';
import type { Endian } from '../bytes/bytes.ts';
import { iterateBinaryList, type ListFormat } from './binary.ts';
import { LEGACY_DIGEST_SIZE } from './fields.ts';
import { lookupTemplate } from './templates.ts';
import { cursorTemplateName } from './binary.ts';

/** Result of a conversion. */
export interface ByteOrderConversion {
  readonly bytes: Uint8Array;
  readonly from: Endian;
  readonly to: Endian;
  readonly entries: number;
  /** entries of unknown templates: only their outer words were converted */
  readonly uninterpreted: number;
  readonly note: string;
}

function swap(b: Uint8Array, p: number, n: 2 | 4): void {
  if (n === 2) {
    const t = b[p]!;
    b[p] = b[p + 1]!;
    b[p + 1] = t;
    return;
  }
  let t = b[p]!;
  b[p] = b[p + 3]!;
  b[p + 3] = t;
  t = b[p + 1]!;
  b[p + 1] = b[p + 2]!;
  b[p + 2] = t;
}

function rd32(b: Uint8Array, p: number, le: boolean): number {
  return le
    ? (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0
    : ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;
}

/**
 * Convert a whole in-memory list from `fmt.endian` to `to`. The input is not modified.
 * @throws CodecError for a malformed list (naming entry and offset) or template data whose field
 *   lengths do not tile it (E_LIST_TEMPLATE)
 */
export function convertListByteOrder(bytes: Uint8Array, fmt: ListFormat, to: Endian): ByteOrderConversion {
  const out = bytes.slice();
  let entries = 0;
  let uninterpreted = 0;
  if (fmt.endian !== to) {
    const le = fmt.endian === 'le';
    for (const c of iterateBinaryList(bytes, fmt)) {
      entries++;
      const start = c.digestOff - 4;
      swap(out, start, 4); // pcr
      swap(out, c.nameOff - 4, 4); // template name length
      if (c.legacy) {
        swap(out, c.dataOff + LEGACY_DIGEST_SIZE, 4);
        continue;
      }
      swap(out, c.dataOff - 4, 4); // template data length
      const tpl = lookupTemplate(cursorTemplateName(c));
      if (!tpl) {
        uninterpreted++;
        continue;
      }
      let p = c.dataOff;
      const end = c.dataOff + c.dataLen;
      for (const [k, id] of tpl.fields.entries()) {
        if (end - p < 4)
          throw new CodecError('E_LIST_TEMPLATE', `field ${k} (${id}): missing length word`, {
            offset: p,
            entry: c.index,
            field: id,
          });
        const len = rd32(bytes, p, le);
        if (len > end - p - 4)
          throw new CodecError('E_LIST_TEMPLATE', `field ${k} (${id}): length ${len} exceeds the data`, {
            offset: p,
            entry: c.index,
            field: id,
          });
        swap(out, p, 4);
        const d = p + 4;
        if ((id === 'iuid' || id === 'igid') && len === 4) swap(out, d, 4);
        else if (id === 'imode' && len === 2) swap(out, d, 2);
        else if (id === 'xattrlengths' && len % 4 === 0) for (let q = 0; q < len; q += 4) swap(out, d + q, 4);
        p = d + len;
      }
      if (p !== end)
        throw new CodecError('E_LIST_TEMPLATE', `${end - p} bytes after the last field`, {
          offset: p,
          entry: c.index,
          field: 'template data',
        });
    }
  } else for (const _ of iterateBinaryList(bytes, fmt)) entries++;
  return Object.freeze({
    bytes: out,
    from: fmt.endian,
    to,
    entries,
    uninterpreted,
    note:
      fmt.endian === to
        ? 'already in the requested byte order: copied unchanged'
        : 'template digests were kept: they cover the template data in the ORIGINAL byte order, so the ' +
          'converted list replays only after converting it back',
  });
}
