/** evmctl `ima_fix` (in progress). */
import type { EvmctlCommand } from './command.ts';

export const command: EvmctlCommand = {
  name: 'ima_fix',
  usage: '',
  description: '',
  async run(_opts, _args, io) {
    io.stderr('evmctl ima_fix: not implemented yet\n');
    return 125;
  },
};
