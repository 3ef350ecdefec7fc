/**
 * evmctl `ima_sign FILE`: a v2 signature over H_alg(file) → security.ima `03 02 …` (formats.md §3.2).
 * The value is printed in hex on stdout; `-f` also writes `FILE.sig`; `-n` does not set the xattr.
 *
 * Compatibility: evmctl before 1.0 took the key as the second positional argument
 * (`evmctl ima_sign FILE KEY`, still in guides); when `--key` is absent that argument is the key.
 */
import { writeFileSync } from 'node:fs';
import { fromSystemError } from '../../errors.ts';
import { setXattr } from '../../host/fs/xattr.ts';
import type { EvmctlCommand } from './command.ts';
import { doCmd, evmctlImaValue, hex, loadSigner, xattrNames } from './shared.ts';

/** Write `FILE.sig` (the full xattr value, type byte included). */
export function writeSigFile(path: string, value: Uint8Array): void {
  try {
    writeFileSync(`${path}.sig`, value);
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
    return doCmd(opts, args, io, `ima_sign ${this.usage}`, (path) => {
      const value = evmctlImaValue(path, opts, io, key);
      io.stdout(`${hex(value)}\n`);
      if (opts.sigfile) writeSigFile(path, value);
      if (!opts.noXattr) setXattr(path, xattrNames(opts).ima, value);
    });
  },
};
