/**
 * A regular file opened once for labelling: its content is hashed and its xattrs are read and
 * written through the same descriptor, so nothing that happens to the path in between (a symlink or
 * another file renamed over it) can redirect a write (issue 10 item 15). Opened O_NOFOLLOW (a
 * symlink at the path is refused, never followed) and O_NONBLOCK (a FIFO swapped in cannot block).
 */
import { closeSync, constants, fstatSync, openSync, type BigIntStats } from 'node:fs';
import { ImakitError, fromSystemError } from '../../errors.ts';

/** An open regular file. The opener closes it ({@link closeFile} or {@link withOpenFile}). */
export interface OpenFile {
  /** the path it was opened by (for messages; it may name another file by now) */
  readonly path: string;
  readonly fd: number;
  /** fstat at open */
  readonly stat: BigIntStats;
}

/** What a non-regular file is, for E_IO_NOT_REGULAR. */
function kindOf(st: BigIntStats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isBlockDevice() || st.isCharacterDevice()) return 'a device file';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * Open `path` read-only without following a final symlink and check it is a regular file.
 * @throws ImakitError E_IO_NOT_REGULAR (symlink, directory, device, FIFO, socket), E_IO_READ
 */
export function openRegularFile(path: string): OpenFile {
  if (typeof path !== 'string' || path.length === 0) throw new TypeError('path must be a non-empty string');
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ELOOP')
      throw new ImakitError('E_IO_NOT_REGULAR', `${path} is a symbolic link`, { path });
    throw fromSystemError(e, 'E_IO_READ', path);
  }
  try {
    const stat = fstatSync(fd, { bigint: true });
    if (!stat.isFile()) throw new ImakitError('E_IO_NOT_REGULAR', `${path} is ${kindOf(stat)}`, { path });
    return Object.freeze({ path, fd, stat });
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/** Close an {@link OpenFile} (errors on close are ignored: it was opened read-only). */
export function closeFile(f: OpenFile): void {
  try {
    closeSync(f.fd);
  } catch {
    // EBADF would be a double close by the caller; nothing was written through this descriptor
  }
}

/** Run `fn` on `path` opened by {@link openRegularFile}, closing it afterwards. */
export function withOpenFile<T>(path: string, fn: (f: OpenFile) => T): T {
  const f = openRegularFile(path);
  try {
    return fn(f);
  } finally {
    closeFile(f);
  }
}

/** A fresh fstat of an open file. @throws ImakitError E_IO_READ */
export function fstatFile(f: OpenFile): BigIntStats {
  try {
    return fstatSync(f.fd, { bigint: true });
  } catch (e) {
    throw fromSystemError(e, 'E_IO_READ', f.path);
  }
}
