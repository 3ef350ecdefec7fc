/**
 * Reads exact byte counts from an async stream of chunks without copying content: a body is handed on
 * as subarrays of the chunks it arrived in. Only headers (a few hundred bytes) are ever joined.
 */
import { CodecError } from '../../errors.ts';

export class ByteQueue {
  readonly #it: AsyncIterator<Uint8Array>;
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  #eof = false;
  /** bytes consumed so far (the offset of the next byte) */
  position = 0;

  constructor(src: AsyncIterable<Uint8Array>) {
    this.#it = src[Symbol.asyncIterator]();
  }

  async #fill(n: number): Promise<void> {
    while (this.#buffered < n && !this.#eof) {
      const r = await this.#it.next();
      if (r.done) this.#eof = true;
      else if (r.value.length > 0) {
        this.#chunks.push(r.value);
        this.#buffered += r.value.length;
      }
    }
  }

  /** Exactly `n` bytes, or fewer only at the end of the stream (then all that was left). */
  async read(n: number): Promise<Uint8Array> {
    await this.#fill(n);
    const take = Math.min(n, this.#buffered);
    let out: Uint8Array;
    const first = this.#chunks[0];
    if (first !== undefined && first.length >= take) {
      out = first.subarray(0, take);
      this.#consume(take);
    } else {
      out = new Uint8Array(take);
      let o = 0;
      while (o < take) {
        const c = this.#chunks[0]!;
        const k = Math.min(c.length, take - o);
        out.set(c.subarray(0, k), o);
        o += k;
        this.#consume(k);
      }
    }
    return out;
  }

  #consume(k: number): void {
    const c = this.#chunks[0]!;
    if (k === c.length) this.#chunks.shift();
    else this.#chunks[0] = c.subarray(k);
    this.#buffered -= k;
    this.position += k;
  }

  /** Exactly `n` bytes or E_CODEC_TRUNCATED naming `what`. */
  async readExact(n: number, what: string, member?: string): Promise<Uint8Array> {
    const b = await this.read(n);
    if (b.length !== n)
      throw new CodecError(
        'E_CODEC_TRUNCATED',
        `${what}: needed ${n} bytes, the stream ended after ${b.length}`,
        {
          offset: this.position,
          field: what,
          ...(member !== undefined ? { member } : {}),
        },
      );
    return b;
  }

  /** Up to `n` bytes as the chunks they are in (views, valid until the next call). */
  async *stream(n: number, what: string, member?: string): AsyncGenerator<Uint8Array> {
    let left = n;
    while (left > 0) {
      if (this.#buffered === 0) await this.#fill(1);
      if (this.#buffered === 0)
        throw new CodecError(
          'E_CODEC_TRUNCATED',
          `${what}: ${left} of ${n} bytes missing at the end of the stream`,
          {
            offset: this.position,
            field: what,
            ...(member !== undefined ? { member } : {}),
          },
        );
      const c = this.#chunks[0]!;
      const k = Math.min(c.length, left);
      const piece = c.subarray(0, k);
      this.#consume(k);
      left -= k;
      yield piece;
    }
  }

  /** Skip `n` bytes (E_CODEC_TRUNCATED if the stream ends first). */
  async skip(n: number, what: string, member?: string): Promise<void> {
    for await (const _ of this.stream(n, what, member)) void _;
  }

  /** True when no byte is left. */
  async atEnd(): Promise<boolean> {
    await this.#fill(1);
    return this.#buffered === 0;
  }

  /** Release the source (stops a decompressor that is still producing). */
  async close(): Promise<void> {
    await this.#it.return?.();
  }
}
