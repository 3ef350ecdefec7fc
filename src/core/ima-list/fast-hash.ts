/**
 * Allocation-free SHA-1 and SHA-256 for the replay hot path.
 *
 * Why not node:crypto: on Node 20 every `createHash`/`crypto.hash` call costs about 1.2 µs of
 * OpenSSL 3 method fetching, more than hashing the ~100 bytes of an `ima-ng` entry. Replay hashes
 * every entry's template data once per bank and extends once per bank, so a one-million-entry list
 * needs four million small hashes: these classes hash a byte range into a caller-owned output with
 * preallocated state and no per-call allocation. Other banks (sha384, sha512, sm3) go through
 * node:crypto (`hash-algo.ts`). Cross-checked against node:crypto in test/unit/core/ima-list.
 */

/** A reusable one-shot hasher writing into caller buffers. Not safe for concurrent use. */
export interface FastHash {
  /** digest size in bytes */
  readonly size: number;
  /** out[outOff..outOff+size) = H(src[off..off+len)) */
  hashInto(src: Uint8Array, off: number, len: number, out: Uint8Array, outOff: number): void;
  /** out = H(a[aOff..aOff+aLen) ‖ b[bOff..bOff+bLen)); both parts at most 64 bytes (a PCR extend) */
  hash2Into(
    a: Uint8Array,
    aOff: number,
    aLen: number,
    b: Uint8Array,
    bOff: number,
    bLen: number,
    out: Uint8Array,
    outOff: number,
  ): void;
}

const K256 = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
  0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
  0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
  0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
  0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
  0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
  0xc67178f2,
]);

abstract class BlockHash implements FastHash {
  abstract readonly size: number;
  protected readonly w: Int32Array;
  protected readonly st: Int32Array;
  /** tail/padding scratch (two blocks) and the concatenation buffer for hash2Into */
  private readonly tail = new Uint8Array(128);
  private readonly cat = new Uint8Array(128);
  constructor(wLen: number, stLen: number) {
    this.w = new Int32Array(wLen);
    this.st = new Int32Array(stLen);
  }
  protected abstract init(): void;
  protected abstract block(src: Uint8Array, off: number): void;

  hashInto(src: Uint8Array, off: number, len: number, out: Uint8Array, outOff: number): void {
    this.init();
    const full = len & ~63;
    for (let p = 0; p < full; p += 64) this.block(src, off + p);
    const rem = len - full;
    const t = this.tail;
    t.fill(0);
    for (let i = 0; i < rem; i++) t[i] = src[off + full + i]!;
    t[rem] = 0x80;
    const blocks = rem < 56 ? 1 : 2;
    const end = blocks * 64;
    // 64-bit big-endian bit length; lists never hold a single value >= 2^53 bits
    const bits = len * 8;
    const hi = Math.floor(bits / 0x100000000);
    t[end - 8] = hi >>> 24;
    t[end - 7] = hi >>> 16;
    t[end - 6] = hi >>> 8;
    t[end - 5] = hi;
    t[end - 4] = bits >>> 24;
    t[end - 3] = bits >>> 16;
    t[end - 2] = bits >>> 8;
    t[end - 1] = bits;
    this.block(t, 0);
    if (blocks === 2) this.block(t, 64);
    const st = this.st;
    for (let i = 0; i < this.size >> 2; i++) {
      const v = st[i]!;
      const o = outOff + 4 * i;
      out[o] = v >>> 24;
      out[o + 1] = v >>> 16;
      out[o + 2] = v >>> 8;
      out[o + 3] = v;
    }
  }

  hash2Into(
    a: Uint8Array,
    aOff: number,
    aLen: number,
    b: Uint8Array,
    bOff: number,
    bLen: number,
    out: Uint8Array,
    outOff: number,
  ): void {
    if (aLen > 64 || bLen > 64) throw new RangeError('hash2Into parts must be at most 64 bytes');
    const c = this.cat;
    for (let i = 0; i < aLen; i++) c[i] = a[aOff + i]!;
    for (let i = 0; i < bLen; i++) c[aLen + i] = b[bOff + i]!;
    this.hashInto(c, 0, aLen + bLen, out, outOff);
  }
}

/** SHA-256 (FIPS 180-4). */
export class FastSha256 extends BlockHash {
  readonly size = 32;
  constructor() {
    super(64, 8);
  }
  protected init(): void {
    const s = this.st;
    s[0] = 0x6a09e667;
    s[1] = 0xbb67ae85;
    s[2] = 0x3c6ef372;
    s[3] = 0xa54ff53a;
    s[4] = 0x510e527f;
    s[5] = 0x9b05688c;
    s[6] = 0x1f83d9ab;
    s[7] = 0x5be0cd19;
  }
  protected block(src: Uint8Array, off: number): void {
    const w = this.w;
    for (let i = 0; i < 16; i++, off += 4)
      w[i] = (src[off]! << 24) | (src[off + 1]! << 16) | (src[off + 2]! << 8) | src[off + 3]!;
    for (let i = 16; i < 64; i++) {
      const x = w[i - 15]!;
      const y = w[i - 2]!;
      const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
      const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
      w[i] = (w[i - 16]! + s0 + w[i - 7]! + s1) | 0;
    }
    const st = this.st;
    let a = st[0]!,
      b = st[1]!,
      c = st[2]!,
      d = st[3]!,
      e = st[4]!,
      f = st[5]!,
      g = st[6]!,
      h = st[7]!;
    for (let i = 0; i < 64; i++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const t1 = (h + S1 + ((e & f) ^ (~e & g)) + K256[i]! + w[i]!) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      h = g;
      g = f;
      f = e;
      e = (d + t1) | 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) | 0;
    }
    st[0] = (st[0]! + a) | 0;
    st[1] = (st[1]! + b) | 0;
    st[2] = (st[2]! + c) | 0;
    st[3] = (st[3]! + d) | 0;
    st[4] = (st[4]! + e) | 0;
    st[5] = (st[5]! + f) | 0;
    st[6] = (st[6]! + g) | 0;
    st[7] = (st[7]! + h) | 0;
  }
}

/** SHA-1 (FIPS 180-4): still the classic list's template digest and TPM 1.2's only bank. */
export class FastSha1 extends BlockHash {
  readonly size = 20;
  constructor() {
    super(80, 5);
  }
  protected init(): void {
    const s = this.st;
    s[0] = 0x67452301;
    s[1] = 0xefcdab89;
    s[2] = 0x98badcfe;
    s[3] = 0x10325476;
    s[4] = 0xc3d2e1f0;
  }
  protected block(src: Uint8Array, off: number): void {
    const w = this.w;
    for (let i = 0; i < 16; i++, off += 4)
      w[i] = (src[off]! << 24) | (src[off + 1]! << 16) | (src[off + 2]! << 8) | src[off + 3]!;
    for (let i = 16; i < 80; i++) {
      const x = w[i - 3]! ^ w[i - 8]! ^ w[i - 14]! ^ w[i - 16]!;
      w[i] = (x << 1) | (x >>> 31);
    }
    const st = this.st;
    let a = st[0]!,
      b = st[1]!,
      c = st[2]!,
      d = st[3]!,
      e = st[4]!;
    for (let i = 0; i < 80; i++) {
      let f: number, k: number;
      if (i < 20) {
        f = (b & c) | (~b & d);
        k = 0x5a827999;
      } else if (i < 40) {
        f = b ^ c ^ d;
        k = 0x6ed9eba1;
      } else if (i < 60) {
        f = (b & c) | (b & d) | (c & d);
        k = 0x8f1bbcdc;
      } else {
        f = b ^ c ^ d;
        k = 0xca62c1d6;
      }
      const t = (((a << 5) | (a >>> 27)) + f + e + k + w[i]!) | 0;
      e = d;
      d = c;
      c = (b << 30) | (b >>> 2);
      b = a;
      a = t;
    }
    st[0] = (st[0]! + a) | 0;
    st[1] = (st[1]! + b) | 0;
    st[2] = (st[2]! + c) | 0;
    st[3] = (st[3]! + d) | 0;
    st[4] = (st[4]! + e) | 0;
  }
}

/** A FastHash for sha1/sha256, or undefined for banks served by node:crypto. */
export function fastHashFor(name: string): FastHash | undefined {
  if (name === 'sha1') return new FastSha1();
  if (name === 'sha256') return new FastSha256();
  return undefined;
}
