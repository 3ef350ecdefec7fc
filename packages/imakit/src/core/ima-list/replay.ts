/**
 * Measurement-list replay (formats.md §1.8): recompute every entry's template digest per bank,
 * extend the PCR the entry names, and compare with given PCR values after EVERY entry so a list
 * that runs ahead of the quoted PCR is accepted at the matching prefix (as evmctl does).
 *
 * Hot path: one reused cursor, per-bank scratch buffers, one hash of the template data per bank and
 * one extend per bank; no allocation per entry.
 *
 * What replay establishes: the list's template data (prefix) extends to the given PCR values. It
 * does NOT establish that the PCR values came from a TPM (a verified quote does), nor that the
 * named files had these contents on disk, nor anything about fields the digest does not cover
 * (pcr index and template name are checked only through the PCR they were extended into).
 */
import { bytesEqual } from '../bytes/bytes.ts';
import { resolveHashAlgo } from '../hash/hash-algo.ts';
import type { PcrValues } from '../tcg/pcr-values.ts';
import { PCR_COUNT } from '../tcg/pcr-values.ts';
import { MAX_PCR, type EntryCursor, type ListFormat } from './binary.ts';
import { isPaddedMode, type BankMode } from './quirks.ts';
import { BankHasher } from './template-digest.ts';
import type { FastHashProvider } from './fast-hash.ts';

/** How violations (all-zero listed digests) are extended. */
export type ViolationMode = 'ones' | 'zeros';

/** A listed template digest that does not match the template data. */
export interface DigestMismatch {
  readonly index: number;
  readonly offset: number;
  readonly bank: string;
  /** digest as listed */
  readonly listed: Uint8Array;
  /** digest of the template data */
  readonly computed: Uint8Array;
}

/** Result for one PCR of one bank. */
export interface PcrOutcome {
  readonly pcr: number;
  readonly value: Uint8Array;
  readonly expected: Uint8Array | undefined;
  /** entries the list extended into this PCR */
  readonly entries: number;
  /**
   * match: the whole list replays to `expected`; prefix: only entries up to `matchedThrough` do
   * (the list ran ahead of the PCR read); mismatch: no prefix does; unchecked: no expected value.
   */
  readonly status: 'match' | 'prefix' | 'mismatch' | 'unchecked';
  /** index of the last list entry covered by the matching prefix (-1: the empty prefix) */
  readonly matchedThrough: number | undefined;
}

/** Result for one bank. */
export interface BankOutcome {
  readonly bank: string;
  readonly mode: BankMode;
  readonly pcrs: readonly PcrOutcome[];
}

/** Serializable replay state (checkpoint.ts). */
export interface ReplayState {
  /** entries consumed */
  readonly entries: number;
  /** bank → PCR → current value */
  readonly pcrs: PcrValues;
  /** bank → PCR → entries extended */
  readonly counts: ReadonlyMap<number, number>;
}

/** Options of a replay. */
export interface ReplayOptions {
  readonly format: ListFormat;
  /** banks to replay (default: the list's bank) */
  readonly banks?: readonly string[];
  /** values to compare with after every entry */
  readonly expected?: PcrValues;
  /** 'ones' like the kernel (default); 'zeros' is evmctl without --ignore-violations */
  readonly violations?: ViolationMode;
  /** per-bank mode (quirks); default strict */
  readonly modes?: Readonly<Record<string, BankMode>>;
  /** continue from this state (checkpoint) */
  readonly from?: ReplayState;
  /** keep at most this many digest mismatches (default 16) */
  readonly maxMismatches?: number;
  /**
   * use the LISTED digest of the list's bank instead of the computed one (diagnosis: tells an
   * altered digest column from altered data)
   */
  readonly useListedDigests?: boolean;
  /**
   * check every listed digest against its template data (default true). A replay of other banks
   * running beside one that checks (a worker, see BankOffload) turns it off: the check costs one
   * hash of the list's bank per entry.
   */
  readonly verifyListed?: boolean;
  /**
   * extend the list's bank with the LISTED digests, not recomputed (verifyListed must be off).
   * Sound only when the caller also checks a recomputed bank against its PCRs (verify.ts: the
   * template data is then bound by that bank and the listed digests by the list's bank).
   */
  readonly extendListed?: boolean;
  /**
   * banks whose values to extend are computed elsewhere (a worker: {@link ListReplayer.valuesInto})
   * and handed in with {@link ListReplayer.applyDeferred}, in entry order
   */
  readonly deferred?: readonly string[];
  /**
   * banks whose values are computed but not extended: written out by
   * {@link ListReplayer.valuesInto} for a replay elsewhere to extend (the other side's `deferred`)
   */
  readonly emitted?: readonly string[];
  /**
   * entries whose index has all these bits set get their deferred banks' values computed on the
   * deferred side (feed) and skipped by the emitting side (valuesInto): balances the two threads.
   * Both sides must use the same mask; 0 (default) shares nothing.
   */
  readonly shareMask?: number;
  /**
   * hashers to use instead of the defaults (host/native-hash.ts); the results are identical. Not
   * sent to a worker (a function does not clone): the worker supplies its own.
   */
  readonly hashes?: FastHashProvider;
}

/** Outcome and state of banks replayed elsewhere. */
export interface RemoteReplayResult {
  readonly banks: readonly BankOutcome[];
  readonly state: ReplayState;
  readonly violations: number;
}

/**
 * A replay of some banks running elsewhere (e.g. a worker thread: host/list-replay-offload.ts)
 * over the same chunks as the local pass. Only the PCR extend chain is sequential, and each bank's
 * chain is independent, so banks split cleanly across threads.
 */
export interface RemoteReplay {
  /** hand over the next chunk (the callee copies it); resolves when the caller may send more */
  push(chunk: Uint8Array): Promise<void>;
  /** the list ended: the remote banks' outcome */
  finish(): Promise<RemoteReplayResult>;
  /** stop early (an error in the local pass); never throws */
  abort(): void;
  /**
   * With `valuesOnly`: the values to extend (every remote bank's value per entry, banks in order)
   * of the entries completed by the oldest pushed chunk not yet taken
   */
  nextValues(): Promise<DeferredValues>;
  /** give a buffer from nextValues back for reuse */
  release(values: Uint8Array): void;
}

/** Values to extend for a run of entries, computed elsewhere. */
export interface DeferredValues {
  readonly values: Uint8Array;
  readonly count: number;
}

/**
 * Starts a RemoteReplay for `opts` (whose `banks` are the banks to replay remotely). With
 * `valuesOnly` the remote side only computes the values to extend (ListReplayer.valuesInto) and
 * returns them through nextValues; the caller extends them (ListReplayer.applyDeferred).
 */
export type BankOffload = (opts: ReplayOptions & { readonly valuesOnly?: boolean }) => RemoteReplay;

interface BankState {
  readonly bank: string;
  readonly size: number;
  readonly hasher: BankHasher;
  readonly mode: BankMode;
  readonly pcrs: Uint8Array; // PCR_COUNT × size
  readonly value: Uint8Array; // scratch: the value extended
  readonly expected: (Uint8Array | undefined)[];
  readonly lastMatch: Int32Array; // per PCR: index of last matching entry, -2 none
  readonly finalMatch: boolean[];
  readonly deferred: boolean;
  /** template digests of the current batch ({@link ListReplayer.prepare}), when this bank takes them */
  batch: Uint8Array | undefined;
  /** the PCR values after each entry of the current batch, when prepare extended it (a chain) */
  trace: Uint8Array | undefined;
  chained: boolean;
}

/** Incremental replay over cursors; `feed` each entry in order, then `outcome()`. */
export class ListReplayer {
  readonly format: ListFormat;
  private readonly banks: BankState[];
  private readonly live: BankState[];
  private readonly deferredBanks: BankState[];
  /** stride of a deferred value run: the deferred banks' sizes summed */
  readonly deferredStride: number;
  /** banks computed for valuesInto and not extended here */
  private readonly emittedBanks: BankState[];
  /** bytes valuesInto writes per entry */
  readonly emittedStride: number;
  /** PCR of every entry fed but not yet applied to the deferred banks (a FIFO) */
  private pending = new Uint8Array(0);
  /** values computed here for shared entries, per pending slot (deferredStride bytes each) */
  private pendVals = new Uint8Array(0);
  private readonly shareMask: number;
  private pendHead = 0;
  private pendTail = 0;
  private deferredIndex: number;
  private readonly extendListed: boolean;
  private readonly listHasher: BankHasher;
  private readonly listComputed: Uint8Array;
  private readonly sha1: BankHasher | undefined;
  private readonly sha1Computed = new Uint8Array(20);
  private readonly violations: ViolationMode;
  private readonly counts = new Int32Array(PCR_COUNT);
  private readonly maxMismatches: number;
  private readonly useListed: boolean;
  private readonly verifyListed: boolean;
  private entries: number;
  /** the batch of {@link prepare}: its buffer, first entry index and size */
  private batchBuf: Uint8Array | undefined;
  private batchFirst = 0;
  private batchCount = 0;
  private batchSpans: Int32Array = new Int32Array(0);
  /** the list bank's template digests of the batch (verifyListed) */
  private listBatch: Uint8Array | undefined;
  readonly mismatches: DigestMismatch[] = [];
  /** entries with an all-zero listed digest */
  violationCount = 0;

  constructor(opts: ReplayOptions) {
    this.format = opts.format;
    this.violations = opts.violations ?? 'ones';
    this.maxMismatches = opts.maxMismatches ?? 16;
    this.useListed = opts.useListedDigests ?? false;
    this.listHasher = new BankHasher(opts.format.bank, opts.hashes);
    if (this.listHasher.size !== opts.format.digestSize)
      throw new RangeError(
        `bank ${opts.format.bank} has ${this.listHasher.size}-byte digests, format says ${opts.format.digestSize}`,
      );
    this.listComputed = new Uint8Array(this.listHasher.size);
    const names = opts.banks ?? [opts.format.bank];
    const padded = names.some((b) => opts.modes?.[b] !== undefined && isPaddedMode(opts.modes[b]!));
    // padded modes extend the (computed) list-bank digest: they need the check's result
    this.verifyListed = (opts.verifyListed ?? true) || padded;
    this.extendListed = (opts.extendListed ?? false) && !this.verifyListed;
    this.shareMask = opts.shareMask ?? 0;
    this.sha1 = padded && opts.format.bank !== 'sha1' ? new BankHasher('sha1', opts.hashes) : undefined;
    this.entries = opts.from?.entries ?? 0;
    this.deferredIndex = this.entries;
    const deferred = new Set((opts.deferred ?? []).map((b) => resolveHashAlgo(b).name));
    if (opts.from) for (const [pcr, n] of opts.from.counts) this.counts[pcr] = n;
    const emitted = new Set((opts.emitted ?? []).map((b) => resolveHashAlgo(b).name));
    const all = names.map((b) => {
      const a = resolveHashAlgo(b);
      const size = a.size;
      const pcrs = new Uint8Array(PCR_COUNT * size);
      const prior = opts.from?.pcrs.get(a.name);
      if (prior) for (const [pcr, v] of prior) pcrs.set(v, pcr * size);
      const exp = opts.expected?.get(a.name);
      const expected = Array.from({ length: PCR_COUNT }, (_, i) => exp?.get(i));
      const lastMatch = new Int32Array(PCR_COUNT).fill(-2);
      // the empty prefix matches when the PCR is still at its starting value
      for (let i = 0; i < PCR_COUNT; i++)
        if (expected[i] && bytesEqual(expected[i]!, pcrs.subarray(i * size, (i + 1) * size)))
          lastMatch[i] = this.entries - 1;
      return {
        bank: a.name,
        size,
        hasher: new BankHasher(a, opts.hashes),
        mode: opts.modes?.[a.name] ?? 'strict',
        pcrs,
        value: new Uint8Array(size),
        expected,
        lastMatch,
        finalMatch: [],
        deferred: deferred.has(a.name),
        batch: undefined,
        trace: undefined,
        chained: false,
      };
    });
    this.banks = all.filter((b) => !emitted.has(b.bank));
    this.emittedBanks = all.filter((b) => emitted.has(b.bank));
    this.emittedStride = this.emittedBanks.reduce((n, b) => n + b.size, 0);
    this.live = this.banks.filter((b) => !b.deferred);
    this.deferredBanks = this.banks.filter((b) => b.deferred);
    this.deferredStride = this.deferredBanks.reduce((n, b) => n + b.size, 0);
  }

  /** Number of entries consumed (including those of the state it resumed from). */
  get count(): number {
    return this.entries;
  }

  /** True when some bank's hasher batches: then {@link prepare} is worth a chunk's pre-scan. */
  get batches(): boolean {
    return this.listHasher.batches || this.banks.some((b) => b.hasher.batches);
  }

  /**
   * Hash the template data of a batch of entries about to be fed (ChunkScanner.push's `onBatch`)
   * in one call per bank, where the hasher batches (a native one: its per-call cost exceeds the
   * hashing). {@link feed} then takes the digests from the batch; entries outside it, and legacy
   * entries (span length -1), are hashed one by one as without a batch. Same results either way.
   */
  prepare(buf: Uint8Array, spans: Int32Array, count: number, firstIndex: number, fields?: Int32Array): void {
    this.batchBuf = undefined;
    this.batchCount = 0;
    for (const b of this.banks) b.chained = false;
    const batch = (h: BankHasher, prev: Uint8Array | undefined): Uint8Array => {
      const out =
        prev !== undefined && prev.length >= count * h.size ? prev : new Uint8Array(count * h.size * 2);
      h.spansInto(buf, spans, count, out);
      return out;
    };
    const listBatches = this.verifyListed && this.listHasher.batches;
    let any = false;
    if (listBatches) {
      this.listBatch = batch(this.listHasher, this.listBatch);
      any = true;
    }
    for (const b of this.banks) {
      // the banks valueFor hashes: strict, and not the list's own when that is checked or listed;
      // not a deferred bank (hashed elsewhere, here only for shared entries)
      const hashes =
        b.mode === 'strict' &&
        !b.deferred &&
        !(b.bank === this.format.bank && (this.verifyListed || this.extendListed)) &&
        b.hasher.batches;
      if (hashes) {
        b.batch = batch(b.hasher, b.batch);
        any = true;
        if (fields !== undefined && b.hasher.chains) this.chain(b, buf, spans, count, fields);
      }
    }
    if (!any) return;
    this.batchBuf = buf;
    this.batchFirst = firstIndex;
    this.batchCount = count;
    this.batchSpans = spans;
  }

  /**
   * Extend bank b over the whole batch now, in runs of entries into the same PCR, with the values
   * valueFor would give (the template digest; a violation's 0xff or zero value; a legacy entry's
   * digest hashed here): {@link feed} then only compares each PCR value with the expected one.
   */
  private chain(b: BankState, buf: Uint8Array, spans: Int32Array, count: number, fields: Int32Array): void {
    const S = b.size;
    const vals = b.batch!;
    const D = this.format.digestSize;
    for (let i = 0; i < count; i++) {
      const at = fields[3 * i]!;
      let violation = true;
      for (let k = at + 4; k < at + 4 + D; k++)
        if (buf[k] !== 0) {
          violation = false;
          break;
        }
      if (violation) vals.fill(this.violations === 'zeros' ? 0 : 0xff, i * S, (i + 1) * S);
      else if (spans[2 * i + 1]! < 0) {
        const off = spans[2 * i]!;
        b.hasher.templateDigestInto(buf, off, at + fields[3 * i + 2]! - off, true, vals, i * S);
      }
    }
    if (b.trace === undefined || b.trace.length < count * S) b.trace = new Uint8Array(vals.length);
    for (let i = 0; i < count;) {
      const pcr = fields[3 * i + 1]!;
      let j = i + 1;
      while (j < count && fields[3 * j + 1] === pcr) j++;
      b.hasher.chainInto(b.pcrs, pcr * S, vals, i * S, j - i, b.trace, i * S);
      i = j;
    }
    b.chained = true;
  }

  /** Note a match of PCR `pcr` of bank b, at trace[off..), with its expected value. */
  private noteMatch(b: BankState, pcr: number, trace: Uint8Array, off: number, index: number): void {
    const exp = b.expected[pcr];
    if (exp === undefined) return;
    for (let i = 0; i < b.size; i++) if (exp[i] !== trace[off + i]) return;
    b.lastMatch[pcr] = index;
  }

  /** The entry's slot in the current batch, or -1 (not in it, or legacy). */
  private slot(c: EntryCursor): number {
    if (c.buf !== this.batchBuf) return -1;
    const i = c.index - this.batchFirst;
    return i >= 0 && i < this.batchCount && this.batchSpans[2 * i + 1]! >= 0 ? i : -1;
  }

  /** Violation check and (verifyListed) the listed-digest check of one entry; true: a violation. */
  private check(c: EntryCursor): boolean {
    const buf = c.buf;
    const D = this.format.digestSize;
    let violation = true;
    for (let i = 0; i < D; i++)
      if (buf[c.digestOff + i] !== 0) {
        violation = false;
        break;
      }
    if (violation) this.violationCount++;
    else if (this.verifyListed) {
      const i = this.listBatch !== undefined ? this.slot(c) : -1;
      if (i >= 0) copyInto(this.listComputed, this.listBatch!, i * D, D);
      else this.listHasher.templateDigestInto(buf, c.dataOff, c.dataLen, c.legacy, this.listComputed, 0);
      let eq = true;
      for (let i = 0; i < D; i++)
        if (this.listComputed[i] !== buf[c.digestOff + i]) {
          eq = false;
          break;
        }
      if (!eq) {
        const listed = buf.slice(c.digestOff, c.digestOff + D);
        if (this.mismatches.length < this.maxMismatches)
          this.mismatches.push({
            index: c.index,
            offset: c.offset,
            bank: this.format.bank,
            listed,
            computed: this.listComputed.slice(),
          });
        if (this.useListed) this.listComputed.set(listed);
      }
      if (this.sha1) this.sha1.templateDigestInto(buf, c.dataOff, c.dataLen, c.legacy, this.sha1Computed, 0);
    }
    return violation;
  }

  /**
   * The value bank `b` extends for this entry: into b.value, or (returns true) the listed digest
   * at c.digestOff (extendListed: extended straight from the list buffer, no copy).
   */
  private valueFor(b: BankState, c: EntryCursor, violation: boolean): boolean {
    const v = b.value;
    if (violation) {
      if (this.violations === 'zeros') v.fill(0);
      else if (b.mode === 'sha1-padded') {
        v.fill(0);
        v.fill(0xff, 0, 20);
      } else v.fill(0xff);
    } else if (b.mode !== 'strict') {
      v.fill(0);
      v.set(this.format.bank === 'sha1' ? this.listComputed : this.sha1Computed, 0);
    } else if (b.bank === this.format.bank && this.verifyListed) v.set(this.listComputed);
    else if (b.bank === this.format.bank && this.extendListed) return true;
    else {
      const i = b.batch !== undefined ? this.slot(c) : -1;
      if (i >= 0) copyInto(v, b.batch!, i * b.size, b.size);
      else b.hasher.templateDigestInto(c.buf, c.dataOff, c.dataLen, c.legacy, v, 0);
    }
    return false;
  }

  /** Extend PCR `pcr` of bank b with src[srcOff..) and note a match with the expected value. */
  private extend(b: BankState, pcr: number, src: Uint8Array, srcOff: number, index: number): void {
    const off = pcr * b.size;
    b.hasher.extendInto(b.pcrs, off, src, srcOff, b.pcrs, off);
    const exp = b.expected[pcr];
    if (exp !== undefined) {
      for (let i = 0; i < b.size; i++) if (exp[i] !== b.pcrs[off + i]) return;
      b.lastMatch[pcr] = index;
    }
  }

  /** Replay one entry (deferred banks: queued until applyDeferred). */
  feed(c: EntryCursor): void {
    const pcr = c.pcr;
    const violation = this.check(c);
    // indexed loops here and below: an array iterator per entry was the replay's garbage (heap profile)
    const live = this.live;
    for (let i = 0; i < live.length; i++) {
      const b = live[i]!;
      // a chained bank was extended over the whole batch by prepare: only the comparison is left
      if (b.chained && c.buf === this.batchBuf) {
        const k = c.index - this.batchFirst;
        this.noteMatch(b, pcr, b.trace!, k * b.size, this.entries);
      } else if (this.valueFor(b, c, violation)) this.extend(b, pcr, c.buf, c.digestOff, this.entries);
      else this.extend(b, pcr, b.value, 0, this.entries);
    }
    if (this.deferredBanks.length > 0) {
      if (this.pendTail === this.pending.length) {
        // full: slide the unapplied run to the front, or double when it fills more than half
        const n = this.pendTail - this.pendHead;
        const S = this.deferredStride;
        if (n * 2 >= this.pending.length) {
          const size = Math.max(4096, this.pending.length * 2);
          const grown = new Uint8Array(size);
          grown.set(this.pending.subarray(this.pendHead, this.pendTail));
          this.pending = grown;
          if (this.shareMask !== 0) {
            const vals = new Uint8Array(size * S);
            vals.set(this.pendVals.subarray(this.pendHead * S, this.pendTail * S));
            this.pendVals = vals;
          }
        } else {
          this.pending.copyWithin(0, this.pendHead, this.pendTail);
          this.pendVals.copyWithin(0, this.pendHead * S, this.pendTail * S);
        }
        this.pendHead = 0;
        this.pendTail = n;
      }
      const m = this.shareMask;
      if (m !== 0 && (c.index & m) === m) {
        // a shared entry: this side computes the deferred banks' values now (the cursor is live)
        let o = this.pendTail * this.deferredStride;
        const banks = this.deferredBanks;
        for (let i = 0; i < banks.length; i++) {
          const b = banks[i]!;
          if (this.valueFor(b, c, violation))
            this.pendVals.set(c.buf.subarray(c.digestOff, c.digestOff + b.size), o);
          else this.pendVals.set(b.value, o);
          o += b.size;
        }
        this.pending[this.pendTail++] = pcr | 0x80;
      } else this.pending[this.pendTail++] = pcr;
    }
    this.counts[pcr]!++;
    this.entries++;
  }

  /**
   * Replay one entry in the extended banks and write the emitted banks' values to extend into
   * out[outOff..) ({@link emittedStride} bytes, banks in order): a remote replay's half of
   * {@link applyDeferred}.
   */
  valuesInto(c: EntryCursor, out: Uint8Array, outOff: number): void {
    const pcr = c.pcr;
    const violation = this.check(c);
    const live = this.live;
    for (let i = 0; i < live.length; i++) {
      const b = live[i]!;
      if (this.valueFor(b, c, violation)) this.extend(b, pcr, c.buf, c.digestOff, this.entries);
      else this.extend(b, pcr, b.value, 0, this.entries);
    }
    let o = outOff;
    const m = this.shareMask;
    const emitted = this.emittedBanks;
    if (m === 0 || (c.index & m) !== m)
      for (let i = 0; i < emitted.length; i++) {
        const b = emitted[i]!;
        if (this.valueFor(b, c, violation)) out.set(c.buf.subarray(c.digestOff, c.digestOff + b.size), o);
        else out.set(b.value, o);
        o += b.size;
      }
    this.counts[pcr]!++;
    this.entries++;
  }

  /** Entries fed and not yet applied to the deferred banks. */
  get pendingCount(): number {
    return this.pendTail - this.pendHead;
  }

  /**
   * Extend the deferred banks for the next `count` pending entries with values computed elsewhere
   * (per entry: each deferred bank's value, banks in order, {@link deferredStride} bytes).
   */
  applyDeferred(values: Uint8Array, count: number): void {
    if (count > this.pendTail - this.pendHead || values.length < count * this.deferredStride)
      throw new RangeError(`${count} deferred values for ${this.pendTail - this.pendHead} pending entries`);
    let o = 0;
    const S = this.deferredStride;
    for (let k = 0; k < count; k++) {
      const slot = this.pendHead++;
      const p = this.pending[slot]!;
      // a shared entry (bit 7): its values were computed here, the emitter's slot is unused
      const src = p & 0x80 ? this.pendVals : values;
      let so = p & 0x80 ? slot * S : o;
      const banks = this.deferredBanks;
      for (let i = 0; i < banks.length; i++) {
        const b = banks[i]!;
        this.extend(b, p & 0x7f, src, so, this.deferredIndex);
        so += b.size;
      }
      o += S;
      this.deferredIndex++;
    }
    if (this.pendHead === this.pendTail) this.pendHead = this.pendTail = 0;
  }

  private assertApplied(): void {
    if (this.pendTail !== this.pendHead)
      throw new Error(`${this.pendTail - this.pendHead} entries not applied to the deferred banks`);
  }

  /** The current state (for checkpoints). */
  state(): ReplayState {
    this.assertApplied();
    const pcrs = new Map<string, Map<number, Uint8Array>>();
    const counts = new Map<number, number>();
    for (let i = 0; i <= MAX_PCR; i++) if (this.counts[i]! > 0) counts.set(i, this.counts[i]!);
    for (const b of this.banks) {
      const m = new Map<number, Uint8Array>();
      for (const i of counts.keys()) m.set(i, b.pcrs.slice(i * b.size, (i + 1) * b.size));
      pcrs.set(b.bank, m);
    }
    return Object.freeze({ entries: this.entries, pcrs, counts });
  }

  /** Per-bank outcome for every PCR the list touched or that has an expected value. */
  outcome(): BankOutcome[] {
    this.assertApplied();
    return this.banks.map((b) => {
      const pcrs: PcrOutcome[] = [];
      for (let i = 0; i < PCR_COUNT; i++) {
        const n = this.counts[i]!;
        if (n === 0) continue;
        const value = b.pcrs.slice(i * b.size, (i + 1) * b.size);
        const expected = b.expected[i];
        const last = b.lastMatch[i]!;
        const status =
          expected === undefined
            ? 'unchecked'
            : bytesEqual(expected, value)
              ? 'match'
              : last >= -1
                ? 'prefix'
                : 'mismatch';
        pcrs.push(
          Object.freeze({
            pcr: i,
            value,
            expected,
            entries: n,
            status,
            matchedThrough: status === 'match' ? this.entries - 1 : last >= -1 ? last : undefined,
          }),
        );
      }
      return Object.freeze({ bank: b.bank, mode: b.mode, pcrs: Object.freeze(pcrs) });
    });
  }
}

/** dst[0..n) = src[off..off+n), without the view subarray would allocate */
function copyInto(dst: Uint8Array, src: Uint8Array, off: number, n: number): void {
  for (let k = 0; k < n; k++) dst[k] = src[off + k]!;
}

/** True when every checked PCR of the bank matched (fully or at a prefix) and at least one was checked. */
export function bankPassed(b: BankOutcome): boolean {
  const checked = b.pcrs.filter((p) => p.status !== 'unchecked');
  return checked.length > 0 && checked.every((p) => p.status === 'match' || p.status === 'prefix');
}
