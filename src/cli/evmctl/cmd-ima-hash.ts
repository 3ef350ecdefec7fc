/**
 * evmctl `ima_hash FILE`: security.ima = the file digest, type 0x01 for md4/md5/sha1 and
 * `04 ‖ algo id ‖ digest` otherwise (formats.md §3.1). The hex value is printed on stdout (evmctl
 * prints it at its default verbosity); `-n` prints without setting the xattr.
 */
import { setXattr } from '../../host/xattr.ts';
import { digestFile, hashValue } from '../../host/label-file.ts';
import type { EvmctlCommand } from './command.ts';
import type { EvmctlOptions } from './options.ts';
import type { CliIo } from '../io.ts';
import { doCmd, evmctlAlgo, hex, requireRegularFile, xattrNames } from './shared.ts';

/** Compute (and unless `-n`, write) the security.ima hash of one file; returns the value. */
export function imaHashValue(path: string, opts: EvmctlOptions): Uint8Array {
  const algo = evmctlAlgo(opts.hashAlgo);
  requireRegularFile(path);
  const [digest] = digestFile(path, [algo]);
  return hashValue(algo, digest!);
}

/** Print like evmctl's hash_ima: `-v` logs `hash(alg): `, the value goes to stdout. */
export function printHash(io: CliIo, opts: EvmctlOptions, value: Uint8Array): void {
  if (opts.verbose > 0) io.stderr(`hash(${opts.hashAlgo}): ${hex(value)}\n`);
  io.stdout(`${hex(value)}\n`);
}

export const command: EvmctlCommand = {
  name: 'ima_hash',
  usage: 'file',
  description: 'Make file content hash.',
  async run(opts, args, io) {
    return doCmd(opts, args, io, 'ima_hash file', (path) => {
      const value = imaHashValue(path, opts);
      printHash(io, opts, value);
      if (!opts.noXattr) setXattr(path, xattrNames(opts).ima, value);
    });
  },
};
