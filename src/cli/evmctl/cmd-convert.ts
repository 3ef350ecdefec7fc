/** evmctl `convert` (in progress). */
import type { EvmctlCommand } from './command.ts';

export const command: EvmctlCommand = {
  name: 'convert',
  usage: '',
  description: '',
  async run(_opts, _args, io) {
    io.stderr('evmctl convert: not implemented yet\n');
    return 125;
  },
};
