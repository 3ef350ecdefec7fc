/**
 * evmctl `ima_fix [-t fxm] PATH`: open each file read-only so a kernel booted with
 * `ima_appraise=fix` labels it (formats.md §6.2). `-t x` skips files that already have both xattrs.
 */
import { closeSync, openSync } from 'node:fs';
import { fromSystemError } from '../../errors.ts';
import type { EvmctlCommand } from './command.ts';
import { doCmd, hasBothLabels } from './shared.ts';

export const command: EvmctlCommand = {
  name: 'ima_fix',
  usage: '[-t fdsxm] path',
  description: 'Recursively fix IMA/EVM xattrs in fix mode.',
  async run(opts, args, io) {
    const skipLabelled = opts.searchType?.includes('x') ?? false;
    return doCmd(opts, args, io, `ima_fix ${this.usage}`, (path) => {
      if (opts.verbose > 0) io.stderr(`${path}\n`);
      if (skipLabelled && hasBothLabels(path, opts)) return;
      try {
        closeSync(openSync(path, 'r'));
      } catch (e) {
        throw fromSystemError(e, 'E_IO_READ', path);
      }
    });
  },
};
