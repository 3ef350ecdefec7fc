/** evmctl `verify` (in progress). */
import type { EvmctlCommand } from './command.ts';

export const command: EvmctlCommand = {
  name: 'verify',
  usage: '',
  description: '',
  async run(_opts, _args, io) {
    io.stderr('evmctl verify: not implemented yet\n');
    return 125;
  },
};
