/**
 * Streaming decompressors for package members and image layers, with byte budgets so that a zip bomb
 * stops at the cap instead of filling memory or running for hours. gzip comes from node:zlib; Node 20's
 * zlib has no zstd (22.15+) and no xz, so zstd is `fzstd` (pure JS) and xz `xz-decompress` (xz-embedded
 * compiled to WASM, no native build); bzip2 (deprecated in .deb by dpkg, still readable) is `seek-bzip`.
 * `.lzma` (pre-2010 .debs) is not supported: xz-embedded reads only the .xz container (tested), and
 * no other LZMA-alone decoder is a dependency.
 */
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { Decompress as ZstdDecompress } from 'fzstd';
import Bunzip from 'seek-bzip';
import * as xzModule from 'xz-decompress';
import { ImakitError } from '../../errors.ts';

export type Compression = 'none' | 'gzip' | 'xz' | 'zstd' | 'bzip2';

/** Default cap of one decompressed member (a data.tar, a layer): 16 GiB. */
export const DEFAULT_MAX_MEMBER_BYTES = 16 * 1024 * 1024 * 1024;
/** Default cap of everything decompressed by one reader run: 256 GiB. */
export const DEFAULT_MAX_TOTAL_BYTES = 256 * 1024 * 1024 * 1024;
/** bzip2 decodes a member in one synchronous call, so its output is held: cap it lower. */
export const MAX_BZIP2_BYTES = 1024 * 1024 * 1024;
/** fzstd decodes whatever a push holds; small pushes bound one step's output (a block is ≤128 KiB). */
const ZSTD_PUSH_BYTES = 16 * 1024;
// xz-decompress is a CommonJS bundle: under ESM its exports sit on `default`
const { XzReadableStream } = (xzModule as unknown as { default?: typeof xzModule }).default ?? xzModule;

/**
 * Decompressed bytes allowed: per member and in total over a run. One budget object per run (no
 * module state); pass the same one to every `decompress` call of that run.
 */
export class ByteBudget {
  readonly maxMemberBytes: number;
  readonly maxTotalBytes: number;
  used = 0;
  constructor(opts: { maxMemberBytes?: number; maxTotalBytes?: number } = {}) {
    this.maxMemberBytes = opts.maxMemberBytes ?? DEFAULT_MAX_MEMBER_BYTES;
    this.maxTotalBytes = opts.maxTotalBytes ?? DEFAULT_MAX_TOTAL_BYTES;
  }
  /** Count `n` more bytes of a member that has produced `memberSoFar` before them. */
  charge(n: number, memberSoFar: number, path: string, member: string): void {
    if (memberSoFar + n > this.maxMemberBytes)
      throw new ImakitError(
        'E_PKG_TOO_LARGE',
        `decompresses to more than ${this.maxMemberBytes} bytes (cap per member)`,
        { path, member },
      );
    if (this.used + n > this.maxTotalBytes)
      throw new ImakitError(
        'E_PKG_TOO_LARGE',
        `more than ${this.maxTotalBytes} bytes decompressed in total (cap per run)`,
        { path, member },
      );
    this.used += n;
  }
}

/** Compression of a `.deb` member from its name (`data.tar.xz`). */
export function compressionOfName(name: string, path: string): Compression {
  if (/\.tar$/.test(name)) return 'none';
  if (name.endsWith('.gz')) return 'gzip';
  if (name.endsWith('.xz')) return 'xz';
  if (name.endsWith('.zst')) return 'zstd';
  if (name.endsWith('.bz2')) return 'bzip2';
  // LZMA-alone (.lzma, pre-2010 .debs): xz-decompress (xz-embedded) reads only the .xz container, and
  // no other decoder is installed; dpkg-deb -R then -Zxz -b converts such a package
  if (name.endsWith('.lzma'))
    throw new ImakitError(
      'E_PKG_COMPRESSION',
      `member ${name} is LZMA-alone (legacy .deb), which imakit does not decompress; repack it with dpkg-deb -R and dpkg-deb -Zxz -b`,
      { path, member: name },
    );
  throw new ImakitError('E_PKG_COMPRESSION', `unsupported compression of member ${name}`, {
    path,
    member: name,
  });
}

/** Compression from the first bytes (docker save layers are named `layer.tar` whatever they hold). */
export function compressionOfMagic(b: Uint8Array): Compression {
  if (b[0] === 0x1f && b[1] === 0x8b) return 'gzip';
  if (b[0] === 0x28 && b[1] === 0xb5 && b[2] === 0x2f && b[3] === 0xfd) return 'zstd';
  if (b[0] === 0xfd && b[1] === 0x37 && b[2] === 0x7a && b[3] === 0x58 && b[4] === 0x5a) return 'xz';
  if (b[0] === 0x42 && b[1] === 0x5a && b[2] === 0x68) return 'bzip2';
  return 'none';
}

function corrupt(e: unknown, kind: Compression, path: string, member: string): ImakitError {
  if (e instanceof ImakitError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new ImakitError(
    'E_PKG_COMPRESSION',
    `${kind} stream is corrupt: ${msg}`,
    { path, member },
    { cause: e },
  );
}

async function* gunzip(src: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const gz = createGunzip({ chunkSize: 256 * 1024 });
  const input = Readable.from(src, { objectMode: false });
  input.on('error', (e) => gz.destroy(e));
  input.pipe(gz);
  try {
    for await (const c of gz) yield c as Buffer;
  } finally {
    input.unpipe(gz);
    input.destroy();
    gz.destroy();
  }
}

async function* unzstd(
  src: AsyncIterable<Uint8Array>,
  onOut: (n: number) => void,
): AsyncGenerator<Uint8Array> {
  let out: Uint8Array[] = [];
  let ended = false;
  // the handler runs per decoded block, so the budget stops a bomb inside one push
  const d = new ZstdDecompress((chunk, final) => {
    if (chunk.length > 0) {
      onOut(chunk.length);
      out.push(chunk);
    }
    if (final) ended = true;
  });
  for await (const c of src) {
    for (let o = 0; o < c.length; o += ZSTD_PUSH_BYTES) {
      d.push(c.subarray(o, Math.min(c.length, o + ZSTD_PUSH_BYTES)));
      if (out.length) {
        const ready = out;
        out = [];
        yield* ready;
      }
    }
  }
  d.push(new Uint8Array(0), true);
  if (out.length) yield* out;
  if (!ended) throw new Error('zstd frame is truncated');
}

async function* unxz(src: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const input = ReadableStream.from(src) as ReadableStream<Uint8Array>;
  const xz = new XzReadableStream(input);
  const reader = xz.getReader();
  try {
    for (;;) {
      const r = await reader.read();
      if (r.done) return;
      yield r.value;
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}

async function* bunzip(
  src: AsyncIterable<Uint8Array>,
  onOut: (n: number) => void,
): AsyncGenerator<Uint8Array> {
  const parts: Buffer[] = [];
  for await (const c of src) parts.push(Buffer.from(c));
  const chunks: Uint8Array[] = [];
  let cur = new Uint8Array(64 * 1024);
  let pos = 0;
  const sink = {
    writeByte(b: number): void {
      if (pos === cur.length) {
        onOut(pos);
        chunks.push(cur);
        cur = new Uint8Array(64 * 1024);
        pos = 0;
      }
      cur[pos++] = b;
    },
  };
  Bunzip.decode(Buffer.concat(parts), sink, true);
  onOut(pos);
  chunks.push(cur.subarray(0, pos));
  yield* chunks;
}

/**
 * Decompress `src`, charging every produced byte to `budget`.
 * @param path the package or image file (errors name it), `member` the member or layer
 * @throws ImakitError E_PKG_COMPRESSION (corrupt stream), E_PKG_TOO_LARGE (a cap was reached)
 */
export async function* decompress(
  kind: Compression,
  src: AsyncIterable<Uint8Array>,
  budget: ByteBudget,
  path: string,
  member: string,
): AsyncGenerator<Uint8Array> {
  let produced = 0;
  const charge = (n: number) => {
    budget.charge(n, produced, path, member);
    produced += n;
  };
  if (kind === 'none') {
    for await (const c of src) {
      charge(c.length);
      yield c;
    }
    return;
  }
  // zstd and bzip2 charge inside the decoder (before the output is handed on); gzip and xz are pulled
  // chunk by chunk, so charging as they arrive stops them within one chunk
  const counted = kind === 'zstd' || kind === 'bzip2';
  let inner: AsyncGenerator<Uint8Array>;
  if (kind === 'gzip') inner = gunzip(src);
  else if (kind === 'xz') inner = unxz(src);
  else if (kind === 'zstd') inner = unzstd(src, charge);
  else {
    const bz = new ByteBudget({
      maxMemberBytes: Math.min(budget.maxMemberBytes, MAX_BZIP2_BYTES),
      maxTotalBytes: Number.MAX_SAFE_INTEGER,
    });
    let bzSeen = 0;
    inner = bunzip(src, (n) => {
      bz.charge(n, bzSeen, path, member);
      bzSeen += n;
      charge(n);
    });
  }
  try {
    for (;;) {
      let r: IteratorResult<Uint8Array>;
      try {
        r = await inner.next();
      } catch (e) {
        throw corrupt(e, kind, path, member);
      }
      if (r.done) return;
      if (!counted) charge(r.value.length);
      yield r.value;
    }
  } finally {
    await inner.return(undefined).catch(() => undefined);
  }
}
