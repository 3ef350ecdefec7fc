/** evmctl `ima_clear` (in progress). */
import type { EvmctlCommand } from './command.ts';

export const command: EvmctlCommand = {
  name: 'ima_clear',
  usage: '',
  description: '',
  async run(_opts, _args, io) {
    io.stderr('evmctl ima_clear: not implemented yet\n');
    return 125;
  },
};
