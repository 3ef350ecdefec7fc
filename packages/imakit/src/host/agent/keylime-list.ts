/**
 * The IMA list as Keylime's pull API serves it: ascii lines from entry N (`ima_ml_entry`), with the
 * semantics of rust-keylime's keylime/src/ima/measurement_list.rs `MeasurementList::read`:
 *
 * - 0 ≤ N ≤ count: the lines from entry N (N = count: empty, "nothing new yet");
 * - N > count: the verifier's idea of the list is wrong (a reboot restarted it): the whole list,
 *   and the answer says it starts at entry 0.
 *
 * Like rust-keylime it remembers where recent entry counts end (bounded), so the next read starts
 * from the nearest known position at or before N instead of the start of the file: the list is
 * not re-read in full each time. The file is either the kernel's binary list (the default,
 * securityfs `binary_runtime_measurements`: each entry rendered as the kernel's ascii line) or an
 * ascii list (`ascii_runtime_measurements`, passed through). A binary read that ends inside an
 * entry (the kernel appending meanwhile) stops before it; the rest comes next time.
 */
import {
  detectListFormat,
  newCursor,
  parseBinaryList,
  scanEntry,
  type ListFormat,
} from '../../core/ima-list/binary.ts';
import { renderAsciiList } from '../../core/ima-list/ascii.ts';
import { looksAscii } from '../../core/ima-list/list-form.ts';
import { readListFrom } from './evidence.ts';

/** One answer: the ascii text from `entry`, and how many entries the list has now. */
export interface KeylimeListSlice {
  readonly text: string;
  /** the entry the text starts at (`ima_measurement_list_entry`) */
  readonly entry: number;
  /** entries in the list at the time of the read */
  readonly count: number;
}

export interface KeylimeListReader {
  /** @throws ImakitError E_IO_READ; CodecError for a binary list that cannot be decoded */
  read(nth: number): KeylimeListSlice;
}

/** rust-keylime keeps 32 (entries, bytes) positions; so do we. */
const MAX_POSITIONS = 32;
const NL = 0x0a;

/** A reader over `path` (binary or ascii, detected at the first non-empty read). */
export function keylimeListReader(path: string): KeylimeListReader {
  // entries → byte offset where entry `entries` starts; bounded, oldest dropped first
  const positions = new Map<number, number>([[0, 0]]);
  let kind: { ascii: true } | { ascii: false; format: ListFormat } | undefined;
  const remember = (entries: number, bytes: number): void => {
    if (positions.has(entries)) return;
    if (positions.size >= MAX_POSITIONS) {
      const oldest = [...positions.keys()].find((k) => k !== 0);
      if (oldest !== undefined) positions.delete(oldest);
    }
    positions.set(entries, bytes);
  };

  const read = (nth: number, again: boolean): KeylimeListSlice => {
    let from = 0;
    for (const k of positions.keys()) if (k <= nth && k > from) from = k;
    const at = positions.get(from)!;
    const slice = readListFrom(path, at);
    const b = slice.bytes;
    if (kind === undefined && at === 0 && b.length > 0)
      kind = looksAscii(b) ? { ascii: true } : { ascii: false, format: detectListFormat(b).format };
    let count = from;
    let text = '';
    let consumed = 0;
    if (kind === undefined || kind.ascii) {
      let start = -1;
      for (let i = 0; i < b.length; i++) {
        if (count === nth && start < 0) start = i;
        if (b[i] === NL) {
          count++;
          consumed = i + 1;
        }
      }
      if (count === nth && start < 0) start = consumed;
      if (start >= 0) text = new TextDecoder().decode(b.subarray(start, consumed));
    } else {
      const c = newCursor();
      let pos = 0;
      let startPos = -1;
      for (;;) {
        if (count === nth && startPos < 0) startPos = pos;
        const next = scanEntry(b, pos, b.length, kind.format, count, at, c);
        if (next < 0) break;
        pos = next;
        count++;
      }
      consumed = pos;
      if (startPos >= 0 && startPos < consumed)
        text = renderAsciiList(parseBinaryList(b.subarray(startPos, consumed), kind.format));
    }
    remember(count, at + consumed);
    if (nth > count) {
      if (again) throw new RangeError(`entry ${nth} beyond ${count} twice`); // cannot happen: nth 0
      return read(0, true);
    }
    return Object.freeze({ text, entry: nth, count });
  };
  return Object.freeze({ read: (nth: number) => read(nth, false) });
}
