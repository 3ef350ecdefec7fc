/**
 * MD4 (RFC 1320). Kernel hash id 0; evmctl's ima_hash test covers it, but OpenSSL 3 only offers
 * it through the legacy provider, which Node does not load. Only used to compute legacy labels.
 */
const S = [
  [3, 7, 11, 19],
  [3, 5, 9, 13],
  [3, 9, 11, 15],
] as const;
const R2 = [0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15];
const R3 = [0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15];

const rotl = (x: number, n: number): number => (x << n) | (x >>> (32 - n));

export class Md4 {
  private h = new Uint32Array([0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476]);
  private readonly buf = new Uint8Array(64);
  private bufLen = 0;
  private total = 0;
  private readonly x = new Uint32Array(16);

  update(data: Uint8Array): this {
    this.total += data.length;
    let i = 0;
    if (this.bufLen > 0) {
      const take = Math.min(64 - this.bufLen, data.length);
      this.buf.set(data.subarray(0, take), this.bufLen);
      this.bufLen += take;
      i = take;
      if (this.bufLen === 64) {
        this.block(this.buf, 0);
        this.bufLen = 0;
      }
    }
    for (; i + 64 <= data.length; i += 64) this.block(data, i);
    if (i < data.length) {
      this.buf.set(data.subarray(i), 0);
      this.bufLen = data.length - i;
    }
    return this;
  }

  digest(): Uint8Array {
    const bits = this.total * 8;
    const padLen = this.bufLen < 56 ? 56 - this.bufLen : 120 - this.bufLen;
    const pad = new Uint8Array(padLen + 8);
    pad[0] = 0x80;
    const dv = new DataView(pad.buffer);
    dv.setUint32(padLen, bits >>> 0, true);
    dv.setUint32(padLen + 4, Math.floor(bits / 2 ** 32), true);
    this.update(pad);
    const out = new Uint8Array(16);
    const odv = new DataView(out.buffer);
    for (let k = 0; k < 4; k++) odv.setUint32(4 * k, this.h[k]!, true);
    return out;
  }

  private block(b: Uint8Array, off: number): void {
    const x = this.x;
    for (let k = 0; k < 16; k++)
      x[k] =
        b[off + 4 * k]! |
        (b[off + 4 * k + 1]! << 8) |
        (b[off + 4 * k + 2]! << 16) |
        (b[off + 4 * k + 3]! << 24);
    let [a, bb, c, d] = [this.h[0]!, this.h[1]!, this.h[2]!, this.h[3]!];
    for (let k = 0; k < 16; k++) {
      const f = (bb & c) | (~bb & d);
      const t = rotl((a + f + x[k]!) | 0, S[0][k % 4]!);
      [a, bb, c, d] = [d, t, bb, c];
    }
    for (let k = 0; k < 16; k++) {
      const g = (bb & c) | (bb & d) | (c & d);
      const t = rotl((a + g + x[R2[k]!]! + 0x5a827999) | 0, S[1][k % 4]!);
      [a, bb, c, d] = [d, t, bb, c];
    }
    for (let k = 0; k < 16; k++) {
      const hh = bb ^ c ^ d;
      const t = rotl((a + hh + x[R3[k]!]! + 0x6ed9eba1) | 0, S[2][k % 4]!);
      [a, bb, c, d] = [d, t, bb, c];
    }
    this.h[0] = (this.h[0]! + a) | 0;
    this.h[1] = (this.h[1]! + bb) | 0;
    this.h[2] = (this.h[2]! + c) | 0;
    this.h[3] = (this.h[3]! + d) | 0;
  }
}
