/**
 * evmctl `ima_sign FILE`: a v2 signature over H_alg(file) → security.ima `03 02 …` (formats.md §3.2).
 * The value is printed in hex on stdout; `-f` also writes `FILE.sig`; `-n` does not set the xattr.
 *
 * Compatibility: evmctl before 1.0 took the key as the second positional argument
 * (`evmctl ima_sign FILE KEY`, still in guides); when `--key` is absent that argument is the key.
 */
import { closeSync, constants, openSync, writeSync } from 'node:fs';
import { fromSystemError } from '../../errors.ts';
import { fsetXattr } from '../../host/fs/xattr.ts';
import { withOpenFile } from '../../host/fs/open-file.ts';
import type { EvmctlCommand } from './command.ts';
import { doCmd, evmctlImaValue, hex, loadSigner, xattrNames } from './shared.ts';

/** Write `FILE.sig` (the full xattr value, type byte included). */
export function writeSigFile(path: string, value: Uint8Array): void {
  try {
    // O_NOFOLLOW: a symlink planted at FILE.sig must not redirect the write to its target
    const fd = openSync(
      `${path}.sig`,
      constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW,
      0o644,
    );
    try {
      writeSync(fd, value);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    throw fromSystemError(e, 'E_IO_WRITE', `${path}.sig`);
  }
}

export const command: EvmctlCommand = {
  name: 'ima_sign',
  usage: '[--sigfile] [--key key] [--pass[=<password>]] file',
  description: 'Make file content signature.',
  async run(opts, args, io) {
    const key = loadSigner(opts, args[1]);
    // signed and written through one descriptor: a symlink swapped in cannot take the signature
    return doCmd(opts, args, io, `ima_sign ${this.usage}`, (path) =>
      withOpenFile(path, (file) => {
        const value = evmctlImaValue(path, opts, io, key, file);
        io.stdout(`${hex(value)}\n`);
        if (opts.sigfile) writeSigFile(path, value);
        if (!opts.noXattr) fsetXattr(file.fd, xattrNames(opts).ima, value, path);
      }),
    );
  },
};
