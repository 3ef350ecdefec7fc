/**
 * What every package and image reader yields: one regular file with its digests and what the source
 * said about it, ready for `ReferenceSetBuilder.addDigest`. Readers are async generators so a whole
 * apt archive or image streams through with flat memory.
 */
import { open } from 'node:fs/promises';
import { createHasher } from '../../core/hash/hash-algo.ts';
import type { Provenance } from '../../core/refs/reference-set.ts';
import { fromSystemError } from '../../errors.ts';

export interface PackageFileRecord {
  /** absolute path the file is installed at */
  readonly path: string;
  readonly size: number;
  /** permission bits (and for rpm the full st_mode) */
  readonly mode: number;
  /** algorithm name → lowercase hex digest of the content */
  readonly digests: Readonly<Record<string, string>>;
  /** the MD5 the package database recorded (dpkg md5sums), when there is one */
  readonly md5?: string;
  /** the raw `security.ima` value the source ships for the file (rpm signature, pax xattr) */
  readonly imaSignature?: Uint8Array;
  readonly provenance: Provenance;
}

export interface ReaderOptions {
  /** digest algorithms to compute where content is hashed (deb, dpkg, OCI); default sha256 */
  readonly algos?: readonly string[];
}

/** Hash a stream with several algorithms at once (and md5 when asked); returns hex by algorithm. */
export async function hashStream(
  src: AsyncIterable<Uint8Array>,
  algos: readonly string[],
): Promise<{ digests: Record<string, string>; size: number }> {
  const hs = algos.map((a) => [a, createHasher(a)] as const);
  let size = 0;
  for await (const c of src) {
    size += c.length;
    for (const [, h] of hs) h.update(c);
  }
  const digests: Record<string, string> = {};
  for (const [a, h] of hs) digests[a] = Buffer.from(h.digest()).toString('hex');
  return { digests, size };
}

/** Read `length` bytes of `path` from `start` (all of it when undefined) in fresh chunks. */
export async function* readRange(
  path: string,
  start = 0,
  length?: number,
  chunk = 1024 * 1024,
): AsyncGenerator<Uint8Array> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    throw fromSystemError(e, 'E_IO_READ', path);
  }
  try {
    let pos = start;
    let left = length ?? Number.POSITIVE_INFINITY;
    while (left > 0) {
      const buf = Buffer.allocUnsafe(Math.min(chunk, left));
      let n: number;
      try {
        ({ bytesRead: n } = await fh.read(buf, 0, buf.length, pos));
      } catch (e) {
        throw fromSystemError(e, 'E_IO_READ', path);
      }
      if (n === 0) return;
      pos += n;
      left -= n;
      yield buf.subarray(0, n);
    }
  } finally {
    await fh.close();
  }
}
