/**
 * Allocation-free SHA-1 and SHA-256 for the replay hot path.
 *
 * Why not node:crypto: on Node 20 every `createHash`/`crypto.hash` call costs about 1-2 µs of
 * OpenSSL 3 method fetching and buffer allocation, more than hashing the ~100 bytes of an `ima-ng`
 * entry (measured with bench/list-replay.ts; SHA-NI makes OpenSSL's compression itself nearly free,
 * the call is what costs). Replay hashes every entry's template data once per bank and extends once
 * per bank, so a one-million-entry list needs four million small hashes: these classes hash a byte
 * range into a caller-owned output with preallocated state and no per-call allocation. Other banks
 * (sha384, sha512, sm3) go through node:crypto (`hash-algo.ts`). Cross-checked against node:crypto
 * in test/unit/core/ima-list.
 *
 * Two deliberate shortcuts for the sizes replay sees: the message schedule of a padding-only final
 * block (inputs whose length is a multiple of 64, e.g. a SHA-256 PCR extend of 32 ‖ 32 bytes)
 * depends only on the length, so it is expanded once and reused; and the SHA-1 rounds run as four
 * branch-free loops of 20.
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
  /**
   * Many one-shot hashes in one call: for i < count, out[outOff + i*size ..) = H(src[spans[2i] ..
   * +spans[2i+1])); a span of negative length is skipped. Offered by hashers whose per-call cost
   * exceeds the hashing (a native addon); replay then hashes a chunk's entries at once.
   */
  hashSpansInto?(src: Uint8Array, spans: Int32Array, count: number, out: Uint8Array, outOff: number): void;
  /**
   * A run of PCR extends in one call: for i < count, pcr = H(pcr ‖ values[valuesOff + i*size ..)),
   * the PCR being pcrs[pcrOff .. +size), each value it takes written to trace[traceOff + i*size ..).
   * Offered with hashSpansInto, for the same reason.
   */
  extendChainInto?: ExtendChain;
}

/** The signature of {@link FastHash.extendChainInto}, named so that wrappers can forward it. */
export type ExtendChain = (
  pcrs: Uint8Array,
  pcrOff: number,
  values: Uint8Array,
  valuesOff: number,
  count: number,
  trace: Uint8Array,
  traceOff: number,
) => void;

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

const rd32be = (b: Uint8Array, p: number): number =>
  (b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!;

abstract class BlockHash implements FastHash {
  abstract readonly size: number;
  protected readonly w: Int32Array;
  protected readonly st: Int32Array;
  /** the concatenation buffer for hash2Into's general case */
  private readonly cat = new Uint8Array(128);
  /** expanded schedule of the length-only final block for message length `padLen` */
  private readonly padW: Int32Array;
  private padLen = -1;
  constructor(wLen: number, stLen: number) {
    this.w = new Int32Array(wLen);
    this.padW = new Int32Array(wLen);
    this.st = new Int32Array(stLen);
  }
  protected abstract init(): void;
  /** extend w[0..16) to the full message schedule */
  protected abstract schedule(w: Int32Array): void;
  /** run the compression rounds over an expanded schedule */
  protected abstract rounds(w: Int32Array): void;

  /**
   * The last block when it holds nothing but padding and the length: either the 0x80 marker too
   * (len a multiple of 64) or zeros (the marker went into the block before). Its schedule depends
   * on `len` alone and is expanded once.
   */
  private lengthBlock(len: number, marker: boolean): void {
    const key = marker ? len : -2 - len;
    const w = this.padW;
    if (this.padLen !== key) {
      w.fill(0, 0, 16);
      if (marker) w[0] = 0x80 << 24;
      // 64-bit big-endian bit length; lists never hold a single value >= 2^53 bits
      w[14] = Math.floor((len * 8) / 0x100000000);
      w[15] = (len * 8) | 0;
      this.schedule(w);
      this.padLen = key;
    }
    this.rounds(w);
  }

  /**
   * Finish after `full` bytes: w[0..words) already hold the final block's whole words; `tail`
   * holds the last `len & 3` bytes (big-endian, high bytes first) of a partial word.
   */
  private finish(len: number, words: number, tail: number, out: Uint8Array, outOff: number): void {
    const w = this.w;
    const r = len & 3;
    // the 0x80 marker right after the message, in the partial word (or a fresh one)
    w[words] = tail | (0x80 << (24 - 8 * r));
    for (let i = words + 1; i < 16; i++) w[i] = 0;
    if (words < 14) {
      w[14] = Math.floor((len * 8) / 0x100000000);
      w[15] = (len * 8) | 0;
      this.schedule(w);
      this.rounds(w);
    } else {
      this.schedule(w);
      this.rounds(w);
      this.lengthBlock(len, false);
    }
    this.output(out, outOff);
  }

  private output(out: Uint8Array, outOff: number): void {
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

  hashInto(src: Uint8Array, off: number, len: number, out: Uint8Array, outOff: number): void {
    this.init();
    const w = this.w;
    const full = len & ~63;
    for (let p = off; p < off + full; p += 64) {
      for (let i = 0; i < 16; i++) w[i] = rd32be(src, p + 4 * i);
      this.schedule(w);
      this.rounds(w);
    }
    const rem = len - full;
    if (rem === 0) {
      this.lengthBlock(len, true);
      this.output(out, outOff);
      return;
    }
    // the final partial block is read word by word straight from src (no copy into a tail buffer)
    const p = off + full;
    const words = rem >> 2;
    for (let i = 0; i < words; i++) w[i] = rd32be(src, p + 4 * i);
    let tail = 0;
    for (let i = words * 4, sh = 24; i < rem; i++, sh -= 8) tail |= src[p + i]! << sh;
    this.finish(len, words, tail, out, outOff);
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
    const len = aLen + bLen;
    if ((aLen & 3) === 0 && (bLen & 3) === 0 && len <= 64) {
      // a PCR extend (20 ‖ 20, 32 ‖ 32 bytes): whole words, one data block, built in place
      this.init();
      const w = this.w;
      const na = aLen >> 2;
      const nb = bLen >> 2;
      for (let i = 0; i < na; i++) w[i] = rd32be(a, aOff + 4 * i);
      for (let i = 0; i < nb; i++) w[na + i] = rd32be(b, bOff + 4 * i);
      if (len === 64) {
        this.schedule(w);
        this.rounds(w);
        this.lengthBlock(64, true);
        this.output(out, outOff);
      } else this.finish(len, na + nb, 0, out, outOff);
      return;
    }
    const c = this.cat;
    for (let i = 0; i < aLen; i++) c[i] = a[aOff + i]!;
    for (let i = 0; i < bLen; i++) c[aLen + i] = b[bOff + i]!;
    this.hashInto(c, 0, len, out, outOff);
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
  protected schedule(w: Int32Array): void {
    for (let i = 16; i < 64; i++) {
      const x = w[i - 15]!;
      const y = w[i - 2]!;
      const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
      const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
      w[i] = (w[i - 16]! + s0 + w[i - 7]! + s1) | 0;
    }
  }
  protected rounds(w: Int32Array): void {
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
  protected schedule(w: Int32Array): void {
    for (let i = 16; i < 80; i++) {
      const x = w[i - 3]! ^ w[i - 8]! ^ w[i - 14]! ^ w[i - 16]!;
      w[i] = (x << 1) | (x >>> 31);
    }
  }
  protected rounds(w: Int32Array): void {
    const st = this.st;
    let a = st[0]!,
      b = st[1]!,
      c = st[2]!,
      d = st[3]!,
      e = st[4]!;
    let i = 0;
    for (; i < 20; i++) {
      const t = (((a << 5) | (a >>> 27)) + ((b & c) | (~b & d)) + e + 0x5a827999 + w[i]!) | 0;
      e = d;
      d = c;
      c = (b << 30) | (b >>> 2);
      b = a;
      a = t;
    }
    for (; i < 40; i++) {
      const t = (((a << 5) | (a >>> 27)) + (b ^ c ^ d) + e + 0x6ed9eba1 + w[i]!) | 0;
      e = d;
      d = c;
      c = (b << 30) | (b >>> 2);
      b = a;
      a = t;
    }
    for (; i < 60; i++) {
      const t = (((a << 5) | (a >>> 27)) + ((b & c) | (b & d) | (c & d)) + e + 0x8f1bbcdc + w[i]!) | 0;
      e = d;
      d = c;
      c = (b << 30) | (b >>> 2);
      b = a;
      a = t;
    }
    for (; i < 80; i++) {
      const t = (((a << 5) | (a >>> 27)) + (b ^ c ^ d) + e + 0xca62c1d6 + w[i]!) | 0;
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

/**
 * Where a replay gets its hashers: a bank name to a FastHash, or undefined for the default
 * (this file's sha1/sha256, node:crypto for the rest). The host layer supplies one backed by
 * OpenSSL's SHA extensions (host/native-hash.ts); core stays free of native code.
 */
export type FastHashProvider = (bank: string) => FastHash | undefined;

/** A FastHash for sha1/sha256, or undefined for banks served by node:crypto. */
export function fastHashFor(name: string): FastHash | undefined {
  if (name === 'sha1') return new FastSha1();
  if (name === 'sha256') return new FastSha256();
  return undefined;
}
