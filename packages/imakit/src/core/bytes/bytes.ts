/**
 * Byte helpers shared by every codec: guards, hex, concatenation, and a bounds-checked reader.
 *
 * The reader checks every declared length against the remaining bytes BEFORE slicing or
 * allocating (style.md practice 2), and reports problems as CodecError with the absolute offset.
 */
import { CodecError, type ErrorCode } from '../../errors.ts';

/** Throw TypeError unless `x` is a Uint8Array (optionally of exactly `len` bytes). Misuse guard. */
export function assertBytes(x: unknown, len?: number, label = 'value'): asserts x is Uint8Array {
  if (!(x instanceof Uint8Array)) throw new TypeError(`${label} must be a Uint8Array`);
  if (len !== undefined && x.length !== len)
    throw new RangeError(`${label} must be ${len} bytes, got ${x.length}`);
}

const HEX = '0123456789abcdef';
const HEX_TABLE: readonly string[] = Array.from({ length: 256 }, (_, i) => HEX[i >> 4]! + HEX[i & 15]!);

/** Lowercase hex of the bytes. */
export function toHex(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += HEX_TABLE[b[i]!];
  return s;
}

/**
 * Parse hex text (either case, even length, no separators) into bytes.
 * @throws CodecError E_CODEC_BAD_HEX naming the offending character offset.
 */
export function fromHex(s: string, field = 'hex'): Uint8Array {
  if (s.length % 2 !== 0)
    throw new CodecError('E_CODEC_BAD_HEX', 'odd number of hex digits', { offset: s.length, field });
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) {
    const hi = hexVal(s.charCodeAt(2 * i));
    const lo = hexVal(s.charCodeAt(2 * i + 1));
    if (hi < 0 || lo < 0)
      throw new CodecError('E_CODEC_BAD_HEX', `invalid hex digit near '${s.slice(2 * i, 2 * i + 2)}'`, {
        offset: 2 * i,
        field,
      });
    out[i] = (hi << 4) | lo;
  }
  return out;
}

function hexVal(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** Concatenate byte arrays into a new array. */
export function concatBytes(...parts: readonly Uint8Array[]): Uint8Array {
  return concatByteList(parts);
}

/** Concatenate a list of byte arrays (any length: no argument spreading) into a new array. */
export function concatByteList(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Constant-length-independent equality (not constant time; use crypto.timingSafeEqual for secrets). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** True if every byte is zero. */
export function isAllZero(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

const enc = new TextEncoder();
/** UTF-8 bytes of a string. */
export function utf8(s: string): Uint8Array {
  return enc.encode(s);
}

/** Bytes to a JS string, one char per byte (latin1): kernel names are bytes, not UTF-8. */
export function latin1(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1');
}

/** Byte order of integer fields. */
export type Endian = 'le' | 'be';

/** u32 as 4 bytes. */
export function u32Bytes(v: number, endian: Endian): Uint8Array {
  const b = new Uint8Array(4);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, v >>> 0, endian === 'le');
  return b;
}

/** u16 as 2 bytes. */
export function u16Bytes(v: number, endian: Endian): Uint8Array {
  const b = new Uint8Array(2);
  new DataView(b.buffer).setUint16(0, v & 0xffff, endian === 'le');
  return b;
}

/**
 * A forward-only, bounds-checked reader over a byte view. Offsets in errors are absolute
 * (`base` + position) so a sub-reader over a field still reports where in the whole input it was.
 */
export class ByteReader {
  readonly bytes: Uint8Array;
  pos = 0;
  readonly base: number;
  private readonly dv: DataView;
  constructor(bytes: Uint8Array, base = 0) {
    this.bytes = bytes;
    this.base = base;
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  get remaining(): number {
    return this.bytes.length - this.pos;
  }
  get offset(): number {
    return this.base + this.pos;
  }
  /** Throw E_CODEC_TRUNCATED unless `n` more bytes are available. */
  need(n: number, field: string): void {
    if (n < 0 || n > this.remaining)
      throw new CodecError('E_CODEC_TRUNCATED', `${field}: need ${n} bytes, ${this.remaining} left`, {
        offset: this.offset,
        field,
      });
  }
  u8(field: string): number {
    this.need(1, field);
    return this.bytes[this.pos++]!;
  }
  u16(field: string, endian: Endian): number {
    this.need(2, field);
    const v = this.dv.getUint16(this.pos, endian === 'le');
    this.pos += 2;
    return v;
  }
  u32(field: string, endian: Endian): number {
    this.need(4, field);
    const v = this.dv.getUint32(this.pos, endian === 'le');
    this.pos += 4;
    return v;
  }
  u64(field: string, endian: Endian): bigint {
    this.need(8, field);
    const v = this.dv.getBigUint64(this.pos, endian === 'le');
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
  /** All remaining bytes as a view. */
  rest(): Uint8Array {
    const v = this.bytes.subarray(this.pos);
    this.pos = this.bytes.length;
    return v;
  }
  /** Throw E_CODEC_TRAILING if anything is left. */
  end(field: string): void {
    if (this.remaining !== 0)
      throw new CodecError('E_CODEC_TRAILING', `${this.remaining} trailing bytes after ${field}`, {
        offset: this.offset,
        field,
      });
  }
  /** Raise a codec error at the current position. */
  fail(code: ErrorCode, detail: string, field: string, offset = this.offset): never {
    throw new CodecError(code, detail, { offset, field });
  }
}
