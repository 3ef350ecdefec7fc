/**
 * Fingerprints of single list entries (checkpoint.ts): the SHA-256 of an entry's raw bytes, its
 * index, offset and length. A checkpoint keeps the first entry's (the boot_aggregate, which changes
 * with the firmware and boot chain) and the last entry's, so a list that restarted after a reboot
 * is recognised when verification resumes (issue 4 §4).
 */
import { createHash } from 'node:crypto';
import type { EntryCursor } from './binary.ts';

/** Identity of one entry of a list. */
export interface EntryFingerprint {
  readonly index: number;
  readonly offset: number;
  readonly length: number;
  /** SHA-256 over the entry's raw bytes (pcr through template data), hex */
  readonly sha256: string;
}

/** SHA-256 (hex) of `len` bytes of `buf` from `off`. */
export function entryHash(buf: Uint8Array, off: number, len: number): string {
  return createHash('sha256')
    .update(buf.subarray(off, off + len))
    .digest('hex');
}

/** Start of the cursor's entry in its buffer (the u32 pcr precedes the digest). */
export function cursorStart(c: EntryCursor): number {
  return c.digestOff - 4;
}

/** Fingerprint of the cursor's entry. */
export function fingerprintCursor(c: EntryCursor): EntryFingerprint {
  return Object.freeze({
    index: c.index,
    offset: c.offset,
    length: c.length,
    sha256: entryHash(c.buf, cursorStart(c), c.length),
  });
}

/**
 * Tracks the first and last entries of a stream at the cost of one copy of each entry (no hashing
 * until `last()` is asked for).
 */
export class BoundaryTracker {
  first: EntryFingerprint | undefined;
  private buf = new Uint8Array(1024);
  private len = 0;
  private index = -1;
  private offset = 0;

  /** Record the cursor's entry (index 0 also becomes the first entry). */
  feed(c: EntryCursor): void {
    if (c.index === 0) this.first = fingerprintCursor(c);
    if (c.length > this.buf.length) this.buf = new Uint8Array(Math.max(c.length, this.buf.length * 2));
    const s = cursorStart(c);
    this.buf.set(c.buf.subarray(s, s + c.length), 0);
    this.len = c.length;
    this.index = c.index;
    this.offset = c.offset;
  }

  /** Fingerprint of the last entry fed, or undefined when none was. */
  last(): EntryFingerprint | undefined {
    if (this.index < 0) return undefined;
    return Object.freeze({
      index: this.index,
      offset: this.offset,
      length: this.len,
      sha256: entryHash(this.buf, 0, this.len),
    });
  }
}
