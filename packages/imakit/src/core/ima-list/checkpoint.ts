/**
 * Incremental verification of a growing measurement list (issue 4 §4).
 *
 * A checkpoint records where a verification stopped: the number of entries and the byte offset
 * after the last one, the replayed PCR values of every bank (with the bank's replay mode, e.g. the
 * padded-SHA-1 quirk it passed with), how violations were extended, and fingerprints (SHA-256 of
 * the raw bytes) of the first entry — the boot_aggregate, which changes with the boot chain — and
 * of the last entry. Verification resumes from it on a longer list by replaying only the new
 * entries. Feeding ranges that were already covered (overlapping or repeated) changes nothing:
 * entries before the checkpoint's offset are skipped, and the entry at the last-entry offset is
 * compared with its fingerprint.
 *
 * A list that restarted (the machine rebooted; IMA lists live in RAM) is detected and reported
 * instead of being replayed onto stale PCR values: a different first entry, a list shorter than
 * the checkpoint, a different entry at the last entry's offset, or entry boundaries that do not
 * fall where the checkpoint says.
 *
 * Establishes no more than the verification that produced the checkpoint (verify.ts): the
 * checkpoint's PCR values are computed values, trusted only as far as the caller trusts the
 * checkpoint file. A reboot that re-measured byte-identical entries up to the checkpoint cannot be
 * told apart from the same boot, but the replay from there is still sound (same PCR state).
 */
import { CodecError, ImakitError } from '../../errors.ts';
import { fromHex, toHex } from '../bytes/bytes.ts';
import { findHashAlgo } from '../hash/hash-algo.ts';
import type { PcrValues } from '../tcg/pcr-values.ts';
import { MAX_PCR, newCursor, scanEntry, type ListFormat } from './binary.ts';
import { cursorStart, entryHash, type EntryFingerprint } from './entry-fingerprint.ts';
import { BANK_MODES, type BankMode } from './quirks.ts';
import {
  bankPassed,
  ListReplayer,
  type BankOutcome,
  type DigestMismatch,
  type ReplayState,
  type ViolationMode,
} from './replay.ts';
import { verifyMeasurementList, type ListSource, type ListVerdict } from './verify.ts';
import type { FastHashProvider } from './fast-hash.ts';

/** Checkpoint format version. */
export const CHECKPOINT_VERSION = 1;

/** Where a verification stopped. */
export interface ListCheckpoint {
  readonly version: typeof CHECKPOINT_VERSION;
  readonly format: ListFormat;
  /** entries covered */
  readonly entries: number;
  /** byte offset after the last covered entry */
  readonly offset: number;
  readonly violationMode: ViolationMode;
  readonly violations: number;
  /** the banks replayed and how */
  readonly banks: readonly { readonly bank: string; readonly mode: BankMode }[];
  /** replayed PCR values and per-PCR entry counts */
  readonly state: ReplayState;
  readonly firstEntry: EntryFingerprint | undefined;
  readonly lastEntry: EntryFingerprint | undefined;
}

/** Why a list is considered restarted. */
export interface ListRestart {
  readonly reason: 'first-entry' | 'shorter' | 'last-entry' | 'boundary';
  /** entry index / byte offset where the difference was seen */
  readonly entry?: number;
  readonly offset?: number;
  readonly detail: string;
}

/** An empty checkpoint: verification from the start of the list. */
export function emptyCheckpoint(
  format: ListFormat,
  banks: readonly string[],
  violationMode: ViolationMode = 'ones',
): ListCheckpoint {
  return Object.freeze({
    version: CHECKPOINT_VERSION,
    format,
    entries: 0,
    offset: 0,
    violationMode,
    violations: 0,
    banks: Object.freeze(banks.map((bank) => Object.freeze({ bank, mode: 'strict' as BankMode }))),
    state: Object.freeze({ entries: 0, pcrs: new Map(), counts: new Map() }),
    firstEntry: undefined,
    lastEntry: undefined,
  });
}

/** The checkpoint at the end of a full verification (use only from a passing verdict). */
export function checkpointFromVerdict(v: ListVerdict): ListCheckpoint {
  return Object.freeze({
    version: CHECKPOINT_VERSION,
    format: v.format.format,
    entries: v.entries,
    offset: v.bytes,
    violationMode: v.violationMode,
    violations: v.violations,
    banks: Object.freeze(v.banks.map((b) => Object.freeze({ bank: b.bank, mode: b.mode }))),
    state: v.state,
    firstEntry: v.firstEntry,
    lastEntry: v.lastEntry,
  });
}

/** Result of feeding a range. */
export interface FeedResult {
  /** bytes of `bytes` consumed (complete entries); the rest is an incomplete entry */
  readonly consumed: number;
  readonly newEntries: number;
  /** entries already covered by the checkpoint */
  readonly skipped: number;
}

/**
 * Resumes a replay from a checkpoint over ranges of the list. Ranges must begin at an entry
 * boundary at or before the checkpoint's offset; covered entries are skipped (idempotent).
 */
export class ListResumer {
  readonly from: ListCheckpoint;
  private readonly replayer: ListReplayer;
  private readonly cursor = newCursor();
  private entries: number;
  private offset: number;
  private violations: number;
  private first: EntryFingerprint | undefined;
  private last: EntryFingerprint | undefined;
  private restartFinding: ListRestart | undefined;
  private skippedTotal = 0;

  constructor(cp: ListCheckpoint, opts: { expected?: PcrValues; hashes?: FastHashProvider } = {}) {
    this.from = cp;
    this.replayer = new ListReplayer({
      format: cp.format,
      banks: cp.banks.map((b) => b.bank),
      modes: Object.fromEntries(cp.banks.map((b) => [b.bank, b.mode])),
      violations: cp.violationMode,
      expected: opts.expected,
      from: cp.state,
      hashes: opts.hashes,
    });
    this.entries = cp.entries;
    this.offset = cp.offset;
    this.violations = cp.violations;
    this.first = cp.firstEntry;
    this.last = cp.lastEntry;
  }

  /** Set when the list was found to have restarted; further input is ignored. */
  get restart(): ListRestart | undefined {
    return this.restartFinding;
  }
  /** Entries skipped because the checkpoint already covered them. */
  get skipped(): number {
    return this.skippedTotal;
  }
  /** Template digests that did not match their data among the new entries. */
  get mismatches(): readonly DigestMismatch[] {
    return this.replayer.mismatches;
  }

  /**
   * Feed `bytes`, a range of the list starting at absolute byte offset `startOffset` (an entry
   * boundary).
   * @throws ImakitError E_CHECKPOINT when the range starts after the checkpoint (a gap) or does
   *   not start at an entry boundary; CodecError for malformed entries
   */
  feedRange(bytes: Uint8Array, startOffset: number): FeedResult {
    if (this.restartFinding) return { consumed: bytes.length, newEntries: 0, skipped: 0 };
    if (!Number.isSafeInteger(startOffset) || startOffset < 0)
      throw new RangeError(`startOffset must be a non-negative integer (got ${startOffset})`);
    if (startOffset > this.offset)
      throw new ImakitError(
        'E_CHECKPOINT',
        `range starts at byte ${startOffset}, after the checkpoint's offset ${this.offset}: entries in between are missing`,
        { offset: startOffset },
      );
    // the boundaries we know: the list start, the last covered entry, the checkpoint's end
    const lastFp = this.currentLast();
    const aligned = startOffset === 0 || startOffset === this.offset || startOffset === lastFp?.offset;
    let index = startOffset === this.offset ? this.entries : startOffset === 0 ? 0 : (lastFp?.index ?? -1);
    const c = this.cursor;
    let pos = 0;
    let newEntries = 0;
    let skipped = 0;
    for (;;) {
      const abs = startOffset + pos;
      const next = scanEntry(bytes, pos, bytes.length, this.from.format, Math.max(index, 0), startOffset, c);
      if (next < 0) break;
      if (abs < this.offset) {
        if (abs === 0 && this.first && !this.sameAs(this.first, c))
          return this.restarted(pos, {
            reason: 'first-entry',
            entry: 0,
            offset: 0,
            detail:
              'the first entry (boot_aggregate) differs from the checkpoint’s: the list restarted (reboot)',
          });
        if (lastFp && abs === lastFp.offset && !this.sameAs(lastFp, c))
          return this.restarted(pos, {
            reason: 'last-entry',
            entry: lastFp.index,
            offset: abs,
            detail: `entry ${lastFp.index} at byte ${abs} differs from the checkpoint’s last entry: the list restarted (reboot) or was rewritten`,
          });
        if (abs + c.length > this.offset) {
          const detail = `an entry spans bytes ${abs}..${abs + c.length}, across the checkpoint’s end at byte ${this.offset}`;
          if (!aligned)
            throw new ImakitError(
              'E_CHECKPOINT',
              `${detail}: the range does not start at an entry boundary`,
              { offset: abs },
            );
          return this.restarted(pos, {
            reason: 'boundary',
            offset: abs,
            detail: `${detail}: the list changed`,
          });
        }
        skipped++;
        if (index >= 0) index++;
        pos = next;
        continue;
      }
      // abs === this.offset: a new entry
      c.index = this.entries;
      if (c.index === 0) this.first = this.fingerprint(c);
      let violation = true;
      for (let i = 0; i < this.from.format.digestSize && violation; i++)
        if (c.buf[c.digestOff + i] !== 0) violation = false;
      if (violation) this.violations++;
      this.replayer.feed(c);
      this.last = undefined;
      this.lastCursorCopy(c);
      this.entries++;
      this.offset += c.length;
      newEntries++;
      index = this.entries;
      pos = next;
    }
    this.skippedTotal += skipped;
    return { consumed: pos, newEntries, skipped };
  }

  /**
   * Declare the total length of the list just read: a list shorter than the checkpoint restarted.
   */
  finish(totalBytes: number): void {
    if (this.restartFinding || totalBytes >= this.from.offset) return;
    this.restartFinding = Object.freeze({
      reason: 'shorter',
      offset: totalBytes,
      detail: `the list has ${totalBytes} bytes, fewer than the ${this.from.offset} the checkpoint covered: the list restarted (reboot)`,
    });
  }

  /** Per-bank outcome so far (see ListReplayer.outcome). */
  outcome(): BankOutcome[] {
    return this.replayer.outcome();
  }

  /** The checkpoint after everything fed so far. */
  checkpoint(): ListCheckpoint {
    const st = this.replayer.state();
    return Object.freeze({
      ...this.from,
      entries: this.entries,
      offset: this.offset,
      violations: this.violations,
      state: st,
      firstEntry: this.first,
      lastEntry: this.currentLast(),
    });
  }

  private lastBuf: Uint8Array | undefined;
  private lastMeta: { index: number; offset: number; length: number } | undefined;
  private lastCursorCopy(c: typeof this.cursor): void {
    const s = cursorStart(c);
    this.lastBuf = c.buf.slice(s, s + c.length);
    this.lastMeta = { index: c.index, offset: c.offset, length: c.length };
  }
  private currentLast(): EntryFingerprint | undefined {
    if (this.last) return this.last;
    if (!this.lastBuf || !this.lastMeta) return this.from.lastEntry;
    this.last = Object.freeze({ ...this.lastMeta, sha256: entryHash(this.lastBuf, 0, this.lastBuf.length) });
    return this.last;
  }
  private fingerprint(c: typeof this.cursor): EntryFingerprint {
    return Object.freeze({
      index: c.index,
      offset: c.offset,
      length: c.length,
      sha256: entryHash(c.buf, cursorStart(c), c.length),
    });
  }
  private sameAs(f: EntryFingerprint, c: typeof this.cursor): boolean {
    return f.length === c.length && f.sha256 === entryHash(c.buf, cursorStart(c), c.length);
  }
  private restarted(pos: number, r: ListRestart): FeedResult {
    this.restartFinding = Object.freeze(r);
    return { consumed: pos, newEntries: 0, skipped: 0 };
  }
}

/** Result of resuming a verification. */
export interface ResumeVerdict {
  readonly status: 'pass' | 'fail';
  readonly detail: string;
  /** set when the list restarted; the list was then verified from its start (`full`) */
  readonly restart?: ListRestart;
  readonly full?: ListVerdict;
  readonly resumedFrom: { readonly entries: number; readonly offset: number };
  readonly newEntries: number;
  readonly skippedEntries: number;
  readonly banks: readonly BankOutcome[];
  readonly mismatches: readonly DigestMismatch[];
  /** the checkpoint to store for next time (meaningful when status is 'pass') */
  readonly checkpoint: ListCheckpoint;
  readonly notEstablished: readonly string[];
}

/** Options of resumeMeasurementList. */
export interface ResumeOptions {
  readonly expected?: PcrValues;
  /**
   * open the list at a byte offset (a file read from a position); without it the whole list is
   * read and the covered part is scanned without hashing
   */
  readonly seek?: (offset: number) => AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
  readonly onProgress?: (bytes: number) => void;
  /** hashers to use instead of the defaults (host/native-hash.ts); the verdict is the same */
  readonly hashes?: FastHashProvider;
}

/**
 * Resume verification of the list read from `src` (from its start) at checkpoint `cp`. When the
 * list restarted, it is verified from its start instead and the restart is reported.
 * @throws CodecError for malformed entries (naming entry and offset); E_CHECKPOINT for misuse
 */
export async function resumeMeasurementList(
  src: ListSource,
  cp: ListCheckpoint,
  opts: ResumeOptions = {},
): Promise<ResumeVerdict> {
  const r = new ListResumer(cp, { expected: opts.expected, hashes: opts.hashes });
  if (opts.seek && cp.firstEntry) {
    // check the first entry (the boot_aggregate) before seeking: a reboot is named as such
    let head: Uint8Array = new Uint8Array(0);
    for await (const chunk of src()) {
      head = head.length === 0 ? chunk : concat(head, chunk);
      if (head.length >= cp.firstEntry.length) break;
    }
    r.feedRange(head, 0); // covered entries are skipped: feeding them again changes nothing
  }
  // re-read the last covered entry so a rewritten list is noticed even when seeking
  const start = opts.seek && cp.lastEntry ? cp.lastEntry.offset : 0;
  const chunks = r.restart ? [] : opts.seek && cp.lastEntry ? opts.seek(start) : src();
  let carry: Uint8Array = new Uint8Array(0);
  let abs = start;
  for await (const chunk of chunks) {
    const work = carry.length === 0 ? chunk : concat(carry, chunk);
    const f = r.feedRange(work, abs);
    abs += f.consumed;
    carry = work.slice(f.consumed);
    opts.onProgress?.(abs);
    if (r.restart) break;
  }
  if (!r.restart && carry.length > 0)
    throw new CodecError('E_CODEC_TRUNCATED', `entry is cut short (${carry.length} bytes at the end)`, {
      offset: abs,
      field: 'entry',
    });
  if (!r.restart) r.finish(abs);
  const notEstablished = [
    'that the checkpoint itself is genuine (it is trusted as given)',
    'that the PCR values came from a TPM (no quote was verified)',
    'that the measured files are trustworthy',
  ];
  if (r.restart) {
    const full = await verifyMeasurementList(src, {
      expected: opts.expected,
      banks: cp.banks.map((b) => b.bank),
      violations: cp.violationMode,
      hashes: opts.hashes,
    });
    return Object.freeze({
      status: full.status,
      detail: `${r.restart.detail}; verified the new list from its start: ${full.detail}`,
      restart: r.restart,
      full,
      resumedFrom: { entries: 0, offset: 0 },
      newEntries: full.entries,
      skippedEntries: 0,
      banks: full.banks,
      mismatches: full.mismatches,
      checkpoint: checkpointFromVerdict(full),
      notEstablished,
    });
  }
  const banks = r.outcome();
  const checked = banks.some((b) => b.pcrs.some((p) => p.status !== 'unchecked'));
  const failedBanks = banks.filter((b) => b.pcrs.some((p) => p.status !== 'unchecked') && !bankPassed(b));
  const cpNow = r.checkpoint();
  const added = cpNow.entries - cp.entries;
  const status = checked && failedBanks.length === 0 && r.mismatches.length === 0 ? 'pass' : 'fail';
  const detail = !checked
    ? 'no PCR value was given for any PCR the list extends: nothing was checked'
    : r.mismatches.length > 0
      ? `entry ${r.mismatches[0]!.index}: template data does not hash to its listed digest`
      : status === 'pass'
        ? `${added} new entries after entry ${cp.entries - 1} replay to the given PCRs (${banks.map((b) => b.bank).join(', ')}), ${cpNow.entries} in all`
        : `no prefix of the ${added} new entries replays to ${failedBanks.map((b) => b.bank).join(', ')} from the checkpoint's PCR values`;
  return Object.freeze({
    status,
    detail,
    resumedFrom: { entries: cp.entries, offset: cp.offset },
    newEntries: added,
    skippedEntries: r.skipped,
    banks,
    mismatches: r.mismatches,
    checkpoint: cpNow,
    notEstablished,
  });
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** JSON form of a checkpoint (hex values, plain objects). */
export function checkpointToJson(cp: ListCheckpoint): Record<string, unknown> {
  const pcrs: Record<string, Record<string, string>> = {};
  for (const [bank, m] of cp.state.pcrs) {
    pcrs[bank] = {};
    for (const [i, v] of m) pcrs[bank]![String(i)] = toHex(v);
  }
  // every replayed bank is written, even with no PCR values yet (an empty list): parseCheckpoint
  // requires each bank of `banks`, so the JSON of an empty list must still read back
  for (const { bank } of cp.banks) pcrs[bank] ??= {};
  return {
    version: cp.version,
    format: { endian: cp.format.endian, digestSize: cp.format.digestSize, bank: cp.format.bank },
    entries: cp.entries,
    offset: cp.offset,
    violationMode: cp.violationMode,
    violations: cp.violations,
    banks: cp.banks.map((b) => ({ bank: b.bank, mode: b.mode })),
    pcrs,
    counts: Object.fromEntries([...cp.state.counts].map(([k, v]) => [String(k), v])),
    firstEntry: cp.firstEntry ?? null,
    lastEntry: cp.lastEntry ?? null,
  };
}

function bad(detail: string, field: string): never {
  throw new CodecError('E_CHECKPOINT', detail, { offset: 0, field });
}
const isObj = (x: unknown): x is Record<string, unknown> =>
  typeof x === 'object' && x !== null && !Array.isArray(x);
const isCount = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;

function fingerprintFrom(x: unknown, field: string): EntryFingerprint | undefined {
  if (x === null || x === undefined) return undefined;
  if (
    !isObj(x) ||
    !isCount(x.index) ||
    !isCount(x.offset) ||
    !isCount(x.length) ||
    typeof x.sha256 !== 'string'
  )
    bad('malformed entry fingerprint', field);
  if (!/^[0-9a-f]{64}$/.test(x.sha256)) bad('fingerprint sha256 must be 64 hex digits', field);
  return Object.freeze({ index: x.index, offset: x.offset, length: x.length, sha256: x.sha256 });
}

/**
 * Parse a checkpoint from its JSON text (checkpointToJson).
 * @throws CodecError E_CHECKPOINT naming the field
 */
export function parseCheckpoint(text: string): ListCheckpoint {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch (e) {
    bad(`not JSON: ${(e as Error).message}`, 'checkpoint');
  }
  if (!isObj(o)) bad('expected an object', 'checkpoint');
  if (o.version !== CHECKPOINT_VERSION) bad(`unsupported version ${String(o.version)}`, 'version');
  const f = o.format;
  if (
    !isObj(f) ||
    (f.endian !== 'le' && f.endian !== 'be') ||
    typeof f.bank !== 'string' ||
    !isCount(f.digestSize)
  )
    bad('malformed format', 'format');
  const fa = findHashAlgo(f.bank);
  if (!fa || fa.size !== f.digestSize)
    bad(`bank ${f.bank} does not have ${f.digestSize}-byte digests`, 'format');
  if (!isCount(o.entries) || !isCount(o.offset) || !isCount(o.violations))
    bad('malformed counters', 'entries');
  if (o.violationMode !== 'ones' && o.violationMode !== 'zeros')
    bad('violationMode must be ones|zeros', 'violationMode');
  if (!Array.isArray(o.banks) || o.banks.length === 0) bad('banks must be a non-empty array', 'banks');
  const banks = o.banks.map((b: unknown) => {
    if (!isObj(b) || typeof b.bank !== 'string' || !BANK_MODES.includes(b.mode as BankMode))
      bad('malformed bank', 'banks');
    if (!findHashAlgo(b.bank)) bad(`unknown bank ${b.bank}`, 'banks');
    return Object.freeze({ bank: b.bank, mode: b.mode as BankMode });
  });
  if (!isObj(o.pcrs) || !isObj(o.counts)) bad('pcrs and counts must be objects', 'pcrs');
  const counts = new Map<number, number>();
  let total = 0;
  for (const [k, v] of Object.entries(o.counts)) {
    const i = Number(k);
    if (!Number.isInteger(i) || i < 0 || i > MAX_PCR || !isCount(v))
      bad(`bad count for PCR '${k}'`, 'counts');
    counts.set(i, v);
    total += v;
  }
  if (total !== o.entries) bad(`per-PCR counts add up to ${total}, not ${o.entries} entries`, 'counts');
  const pcrs = new Map<string, Map<number, Uint8Array>>();
  for (const { bank } of banks) {
    const m = o.pcrs[bank];
    if (!isObj(m)) bad(`no PCR values for bank ${bank}`, 'pcrs');
    const size = findHashAlgo(bank)!.size;
    const vals = new Map<number, Uint8Array>();
    for (const i of counts.keys()) {
      const h = m[String(i)];
      if (typeof h !== 'string') bad(`bank ${bank} lacks PCR ${i}`, 'pcrs');
      const v = fromHex(h, `pcrs.${bank}.${i}`);
      if (v.length !== size) bad(`bank ${bank} PCR ${i}: ${v.length} bytes, expected ${size}`, 'pcrs');
      vals.set(i, v);
    }
    pcrs.set(bank, vals);
  }
  const firstEntry = fingerprintFrom(o.firstEntry, 'firstEntry');
  const lastEntry = fingerprintFrom(o.lastEntry, 'lastEntry');
  if (o.entries > 0 && (!firstEntry || !lastEntry))
    bad('a non-empty checkpoint needs both fingerprints', 'lastEntry');
  if (lastEntry && (lastEntry.index !== o.entries - 1 || lastEntry.offset + lastEntry.length !== o.offset))
    bad('the last entry does not end at the checkpoint offset', 'lastEntry');
  return Object.freeze({
    version: CHECKPOINT_VERSION,
    format: Object.freeze({ endian: f.endian, digestSize: f.digestSize, bank: fa.name }),
    entries: o.entries,
    offset: o.offset,
    violationMode: o.violationMode,
    violations: o.violations,
    banks: Object.freeze(banks),
    state: Object.freeze({ entries: o.entries, pcrs, counts }),
    firstEntry,
    lastEntry,
  });
}
