/** evmctl `ima_clear [-t fxm] PATH`: remove security.ima and security.evm (absent ones are fine). */
import { lstatSync } from 'node:fs';
import { ImakitError, fromSystemError } from '../../errors.ts';
import { fremoveXattr, removeXattr } from '../../host/fs/xattr.ts';
import { withOpenFile } from '../../host/fs/open-file.ts';
import type { EvmctlCommand } from './command.ts';
import { doCmd, xattrNames } from './shared.ts';

export const command: EvmctlCommand = {
  name: 'ima_clear',
  usage: '[-t fdsxm] path',
  description: 'Recursively remove IMA/EVM xattrs.',
  async run(opts, args, io) {
    const { ima, evm } = xattrNames(opts);
    return doCmd(opts, args, io, `ima_clear ${this.usage}`, (path) => {
      if (opts.verbose > 0) io.stderr(`${path}\n`);
      let st;
      try {
        st = lstatSync(path);
      } catch (e) {
        throw fromSystemError(e, 'E_IO_READ', path);
      }
      // xattr calls follow symlinks: never clear the labels of a link's target by accident
      if (st.isSymbolicLink())
        throw new ImakitError('E_IO_NOT_REGULAR', `${path} is a symbolic link`, { path });
      if (st.isFile())
        // through the opened file (O_NOFOLLOW): a symlink swapped in after lstat is not followed
        return withOpenFile(path, (f) => {
          fremoveXattr(f.fd, ima, path);
          fremoveXattr(f.fd, evm, path);
        });
      removeXattr(path, ima);
      removeXattr(path, evm);
    });
  },
};
