/**
 * evmctl `ima_hash FILE`: security.ima = the file digest, type 0x01 for md4/md5/sha1 and
 * `04 ‖ algo id ‖ digest` otherwise (formats.md §3.1). The hex value is printed on stdout (evmctl
 * prints it at its default verbosity); `-n` prints without setting the xattr.
 */
import { fsetXattr } from '../../host/fs/xattr.ts';
import { withOpenFile } from '../../host/fs/open-file.ts';
import type { EvmctlCommand } from './command.ts';
import { doCmd, evmctlImaValue, hex, xattrNames } from './shared.ts';

export const command: EvmctlCommand = {
  name: 'ima_hash',
  usage: 'file',
  description: 'Make file content hash.',
  async run(opts, args, io) {
    // hashed and written through one descriptor: a symlink swapped in cannot take the label
    return doCmd(opts, args, io, 'ima_hash file', (path) =>
      withOpenFile(path, (file) => {
        const value = evmctlImaValue(path, opts, io, undefined, file);
        // like evmctl's hash_ima: `-v` logs `hash(alg): `, the value goes to stdout
        if (opts.verbose > 0) io.stderr(`hash(${opts.hashAlgo}): ${hex(value)}\n`);
        io.stdout(`${hex(value)}\n`);
        if (!opts.noXattr) fsetXattr(file.fd, xattrNames(opts).ima, value, path);
      }),
    );
  },
};
