/**
 * A measurement list in either form (formats.md §1): the binary list (byte order and digest size
 * detected) or the ascii list (`PCR digest template fields…` lines), decoded to the same entries,
 * and converted between the two forms and between byte orders.
 *
 * Pure: the caller reads the bytes (host/attest-input.ts `loadListFile`) and writes the result.
 */
import type { Endian } from '../bytes/bytes.ts';
import { asciiToEntries, parseAsciiList, renderAsciiList } from './ascii.ts';
import {
  detectListFormat,
  encodeBinaryList,
  parseBinaryList,
  type ListFormat,
  type UntrustedEntry,
} from './binary.ts';
import { convertListByteOrder } from './byte-order.ts';

/** A list decoded into entries, with the form it came in. */
export interface DecodedList {
  readonly kind: 'binary' | 'ascii';
  readonly format: ListFormat;
  /** how the format was determined (for messages) */
  readonly evidence: string;
  readonly entries: UntrustedEntry[];
}

/** A decoded list and the file it was read from. */
export interface LoadedList extends DecodedList {
  readonly path: string;
}

/** Hints for {@link decodeList}: explicit choices win over `nameBank` (the bank a file name denotes). */
export interface DecodeListHints {
  readonly bank?: string;
  readonly endian?: Endian;
  readonly nameBank?: string;
}

/** True when `bytes` look like an ascii measurement list rather than a binary one. */
export function looksAscii(bytes: Uint8Array): boolean {
  const head = new TextDecoder('latin1').decode(bytes.subarray(0, 200));
  // PCR number, space, 8+ hex digits: a binary list starts with a u32 PCR word (0a 00 00 00 or
  // 00 00 00 0a), never with this, so a damaged ascii line still goes to the ascii parser, whose
  // errors name the line.
  return /^ ?\d{1,2} [0-9a-f]{8}/.test(head);
}

/**
 * Decode a whole list, ascii or binary (detected). An ascii list's bank follows its digest size
 * unless given; a binary list's format is detected from its first 64 KiB.
 * @throws CodecError from the ascii parser or the binary detector/parser
 */
export function decodeList(bytes: Uint8Array, hints: DecodeListHints = {}): DecodedList {
  const { bank, endian } = hints;
  if (looksAscii(bytes)) {
    const e = endian ?? 'le';
    const entries = asciiToEntries(parseAsciiList(new TextDecoder('latin1').decode(bytes), e));
    const size = entries[0]?.digest.length ?? 20;
    const b = bank ?? (size === 20 ? 'sha1' : size === 32 ? 'sha256' : size === 48 ? 'sha384' : 'sha512');
    return {
      kind: 'ascii',
      format: { endian: e, digestSize: size, bank: b },
      evidence: `ascii list, ${size}-byte template digests`,
      entries,
    };
  }
  const det = detectListFormat(bytes.subarray(0, 65536), { bank: bank ?? hints.nameBank, endian });
  return {
    kind: 'binary',
    format: det.format,
    evidence: det.evidence,
    entries: parseBinaryList(bytes, det.format),
  };
}

/** A list converted by {@link convertList}. */
export interface ConvertedList {
  /** ascii text, or binary bytes */
  readonly data: Uint8Array | string;
  /** byte order of the output's integers (the input's for ascii output) */
  readonly endian: Endian;
  /** what the byte-order conversion could not interpret (empty when nothing to say) */
  readonly note: string;
}

/**
 * Convert a decoded list to ascii text or to binary bytes, optionally in the other byte order
 * (`to`, binary output only; the input's order by default).
 */
export function convertList(l: DecodedList, form: 'ascii' | 'binary', to?: Endian): ConvertedList {
  if (form === 'ascii')
    return { data: renderAsciiList(l.entries, l.format.endian), endian: l.format.endian, note: '' };
  const native = encodeBinaryList(l.entries, l.format);
  if (to !== undefined && to !== l.format.endian) {
    const c = convertListByteOrder(native, l.format, to);
    return { data: c.bytes, endian: to, note: c.note };
  }
  return { data: native, endian: l.format.endian, note: '' };
}
