/**
 * Read measurement lists from files in fixed-size chunks (flat memory for lists of any length).
 * securityfs lists report size 0, so reading goes until EOF rather than by stat size.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { fromSystemError } from '../../errors.ts';

/** Default read size. */
export const LIST_CHUNK = 1 << 20;

/**
 * Yield the file's bytes in chunks. By default a fresh buffer per chunk: a streaming parser may keep
 * a view of the previous chunk's tail while the next one arrives. With `reuse` ONE buffer is
 * refilled for every chunk (flat memory, no garbage per MiB) — only for consumers that are done with
 * a chunk when they ask for the next, like verifyMeasurementList (its scanner copies the tail).
 * @param start byte position to begin at (resuming from a checkpoint)
 * @throws ImakitError E_IO_READ
 */
export function* readFileChunks(
  path: string,
  chunk = LIST_CHUNK,
  start = 0,
  reuse = false,
): Generator<Uint8Array> {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw fromSystemError(e, 'E_IO_READ', path);
  }
  let position = start;
  let shared: Uint8Array | undefined;
  try {
    for (;;) {
      const buf = reuse && shared !== undefined ? shared : new Uint8Array(chunk);
      if (reuse) shared = buf;
      let n: number;
      try {
        // from the start: sequential reads (a FIFO or a pipe has no position: ESPIPE)
        n = readSync(fd, buf, 0, chunk, start === 0 ? null : position);
      } catch (e) {
        throw fromSystemError(e, 'E_IO_READ', path);
      }
      if (n === 0) return;
      position += n;
      yield n === chunk ? buf : buf.subarray(0, n);
    }
  } finally {
    closeSync(fd);
  }
}
