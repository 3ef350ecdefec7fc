/**
 * Big-endian TPM 2.0 marshalling (TPM 2.0 Library Part 1 §18, Part 2 §5-§11): a bounds-checked
 * reader and a growable writer, the two primitives every TPM structure codec in this folder uses.
 *
 * Strictness (style.md practice 2): every declared size is checked against the remaining bytes and
 * against a named cap BEFORE any slice or allocation; `end()` rejects trailing bytes. Integers are
 * unsigned; u64 is a bigint (clock, firmwareVersion) because JS numbers lose bits above 2^53.
 *
 * @example
 * const w = new TpmWriter();
 * w.u16(0x000b); w.tpm2b(digest);
 * const r = new TpmReader(w.finish());
 * const alg = r.u16('hashAlg'); const d = r.tpm2b('digest', 64); r.end('TPM2B_DIGEST');
 */
import { CodecError, type ErrorCode } from '../../errors.ts';

/** Largest TPM2B a codec may accept unless a structure names a smaller cap (TPM2B_MAX_BUFFER-ish). */
export const MAX_TPM2B = 4096;

/**
 * A forward-only, bounds-checked big-endian reader. Offsets in errors are absolute (`base` +
 * position), so a reader over an inner field still reports where in the whole input it was.
 */
export class TpmReader {
  readonly bytes: Uint8Array;
  readonly base: number;
  pos = 0;
  private readonly dv: DataView;
  constructor(bytes: Uint8Array, base = 0) {
    if (!(bytes instanceof Uint8Array)) throw new TypeError('TpmReader: bytes must be a Uint8Array');
    this.bytes = bytes;
    this.base = base;
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  /** Bytes left to read. */
  get remaining(): number {
    return this.bytes.length - this.pos;
  }
  /** Absolute offset of the next byte. */
  get offset(): number {
    return this.base + this.pos;
  }
  /** Throw E_CODEC_TRUNCATED unless `n` more bytes are available. */
  need(n: number, field: string): void {
    if (n > this.bytes.length - this.pos)
      throw new CodecError('E_CODEC_TRUNCATED', `${field}: need ${n} bytes, ${this.remaining} left`, {
        offset: this.offset,
        field,
      });
  }
  u8(field: string): number {
    this.need(1, field);
    return this.bytes[this.pos++]!;
  }
  u16(field: string): number {
    this.need(2, field);
    const v = this.dv.getUint16(this.pos);
    this.pos += 2;
    return v;
  }
  u32(field: string): number {
    this.need(4, field);
    const v = this.dv.getUint32(this.pos);
    this.pos += 4;
    return v;
  }
  u64(field: string): bigint {
    this.need(8, field);
    const v = this.dv.getBigUint64(this.pos);
    this.pos += 8;
    return v;
  }
  /** A view (no copy) of the next `n` bytes. */
  bytesView(n: number, field: string): Uint8Array {
    this.need(n, field);
    const v = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
  /**
   * A TPM2B: u16 size then that many bytes (a view). `max` is the structure's cap (e.g. the
   * largest digest, 64), checked before the bytes are touched.
   */
  tpm2b(field: string, max: number = MAX_TPM2B): Uint8Array {
    const at = this.offset;
    const n = this.u16(`${field}.size`);
    if (n > max)
      throw new CodecError('E_CODEC_TOO_LARGE', `${field}: size ${n} exceeds the maximum ${max}`, {
        offset: at,
        field,
      });
    return this.bytesView(n, field);
  }
  /**
   * A TPM2B whose contents are one structure (TPM2B_PUBLIC, TPM2B_ATTEST, ...): returns a reader
   * over exactly the contents; the caller decodes and calls `end()` on it.
   */
  sized(field: string, max: number = MAX_TPM2B): TpmReader {
    const base = this.offset + 2;
    return new TpmReader(this.tpm2b(field, max), base);
  }
  /** Throw E_CODEC_TRAILING if anything is left. */
  end(field: string): void {
    if (this.pos !== this.bytes.length)
      throw new CodecError('E_CODEC_TRAILING', `${this.remaining} trailing bytes after ${field}`, {
        offset: this.offset,
        field,
      });
  }
  /** Raise a codec error at the current position (or `offset`). */
  fail(code: ErrorCode, detail: string, field: string, offset = this.offset): never {
    throw new CodecError(code, detail, { offset, field });
  }
}

/** A growable big-endian writer. `finish()` returns exactly the bytes written. */
export class TpmWriter {
  private buf: Uint8Array;
  private dv: DataView;
  private len = 0;
  constructor(initial = 256) {
    this.buf = new Uint8Array(initial);
    this.dv = new DataView(this.buf.buffer);
  }
  /** Bytes written so far. */
  get length(): number {
    return this.len;
  }
  private grow(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const b = new Uint8Array(cap);
    b.set(this.buf.subarray(0, this.len));
    this.buf = b;
    this.dv = new DataView(b.buffer);
  }
  u8(v: number): this {
    checkUint(v, 0xff, 'u8');
    this.grow(1);
    this.buf[this.len++] = v;
    return this;
  }
  u16(v: number): this {
    checkUint(v, 0xffff, 'u16');
    this.grow(2);
    this.dv.setUint16(this.len, v);
    this.len += 2;
    return this;
  }
  u32(v: number): this {
    checkUint(v, 0xffffffff, 'u32');
    this.grow(4);
    this.dv.setUint32(this.len, v);
    this.len += 4;
    return this;
  }
  u64(v: bigint): this {
    if (typeof v !== 'bigint' || v < 0n || v > 0xffffffffffffffffn)
      throw new RangeError('u64 must be a bigint in [0, 2^64)');
    this.grow(8);
    this.dv.setBigUint64(this.len, v);
    this.len += 8;
    return this;
  }
  /** Raw bytes, no size prefix. */
  bytes(b: Uint8Array): this {
    this.grow(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
    return this;
  }
  /** A TPM2B: u16 size ‖ bytes. */
  tpm2b(b: Uint8Array): this {
    if (b.length > 0xffff) throw new RangeError(`TPM2B of ${b.length} bytes exceeds 65535`);
    return this.u16(b.length).bytes(b);
  }
  /** Overwrite a u16 at `at` (for a size written before its contents). */
  patchU16(at: number, v: number): this {
    checkUint(v, 0xffff, 'u16');
    this.dv.setUint16(at, v);
    return this;
  }
  /** Overwrite a u32 at `at` (a command's size header). */
  patchU32(at: number, v: number): this {
    checkUint(v, 0xffffffff, 'u32');
    this.dv.setUint32(at, v);
    return this;
  }
  /**
   * Write a sized structure: reserves the u16 size, runs `body`, then fills the size in.
   * @example w.sized((w) => encodeTpmtPublicInto(w, pub)) // TPM2B_PUBLIC
   */
  sized(body: (w: TpmWriter) => void): this {
    const at = this.len;
    this.u16(0);
    body(this);
    const n = this.len - at - 2;
    if (n > 0xffff) throw new RangeError(`sized structure of ${n} bytes exceeds 65535`);
    return this.patchU16(at, n);
  }
  /** A copy of exactly the bytes written. */
  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

function checkUint(v: number, max: number, label: string): void {
  if (!Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`${label} out of range: ${v}`);
}

/**
 * Decode a whole buffer with `fn` and reject trailing bytes: the top-level entry point of every
 * structure codec here.
 * @throws CodecError from `fn`, or E_CODEC_TRAILING
 */
export function decodeAll<T>(bytes: Uint8Array, fn: (r: TpmReader) => T, what: string): T {
  const r = new TpmReader(bytes);
  const v = fn(r);
  r.end(what);
  return v;
}

/** Encode with a fresh writer. */
export function encodeWith(fn: (w: TpmWriter) => void): Uint8Array {
  const w = new TpmWriter();
  fn(w);
  return w.finish();
}
