/** evmctl `sign` (in progress). */
import type { EvmctlCommand } from './command.ts';

export const command: EvmctlCommand = {
  name: 'sign',
  usage: '',
  description: '',
  async run(_opts, _args, io) {
    io.stderr('evmctl sign: not implemented yet\n');
    return 125;
  },
};
