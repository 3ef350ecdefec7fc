/** evmctl `ima_sign` (in progress). */
import type { EvmctlCommand } from './command.ts';

export const command: EvmctlCommand = {
  name: 'ima_sign',
  usage: '',
  description: '',
  async run(_opts, _args, io) {
    io.stderr('evmctl ima_sign: not implemented yet\n');
    return 125;
  },
};
