/** evmctl `hmac` (in progress). */
import type { EvmctlCommand } from './command.ts';

export const command: EvmctlCommand = {
  name: 'hmac',
  usage: '',
  description: '',
  async run(_opts, _args, io) {
    io.stderr('evmctl hmac: not implemented yet\n');
    return 125;
  },
};
