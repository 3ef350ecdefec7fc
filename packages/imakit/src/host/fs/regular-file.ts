/** The one "is this a regular file" gate before labels are read or written. */
import { lstatSync, type Stats } from 'node:fs';
import { ImakitError } from '../../errors.ts';

/**
 * lstat a path that must be a regular file: symlinks, directories and devices are refused (IMA
 * labels regular files, and xattr calls would follow a symlink to its target).
 * @throws ImakitError E_IO_READ (missing), E_IO_NOT_REGULAR
 */
export function requireRegularFile(path: string): Stats {
  let st: Stats;
  try {
    st = lstatSync(path);
  } catch (e) {
    const errno = (e as NodeJS.ErrnoException).code ?? 'error';
    throw new ImakitError('E_IO_READ', `Failed to stat: ${path} (${errno})`, { path }, { cause: e });
  }
  if (!st.isFile()) {
    const what = st.isSymbolicLink()
      ? 'a symbolic link'
      : st.isDirectory()
        ? 'a directory'
        : st.isBlockDevice() || st.isCharacterDevice()
          ? 'a device file'
          : 'not a regular file';
    throw new ImakitError('E_IO_NOT_REGULAR', `${path} is ${what}`, { path });
  }
  return st;
}
