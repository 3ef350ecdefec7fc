/**
 * evmctl `ima_hash FILE`: security.ima = the file digest, type 0x01 for md4/md5/sha1 and
 * `04 ‖ algo id ‖ digest` otherwise (formats.md §3.1). The hex value is printed on stdout (evmctl
 * prints it at its default verbosity); `-n` prints without setting the xattr.
 */
import { setXattr } from '../../host/fs/xattr.ts';
import type { EvmctlCommand } from './command.ts';
import { doCmd, evmctlImaValue, hex, xattrNames } from './shared.ts';

export const command: EvmctlCommand = {
  name: 'ima_hash',
  usage: 'file',
  description: 'Make file content hash.',
  async run(opts, args, io) {
    return doCmd(opts, args, io, 'ima_hash file', (path) => {
      const value = evmctlImaValue(path, opts, io);
      // like evmctl's hash_ima: `-v` logs `hash(alg): `, the value goes to stdout
      if (opts.verbose > 0) io.stderr(`hash(${opts.hashAlgo}): ${hex(value)}\n`);
      io.stdout(`${hex(value)}\n`);
      if (!opts.noXattr) setXattr(path, xattrNames(opts).ima, value);
    });
  },
};
