/** evmctl `ima_verify` (in progress). */
import type { EvmctlCommand } from './command.ts';

export const command: EvmctlCommand = {
  name: 'ima_verify',
  usage: '',
  description: '',
  async run(_opts, _args, io) {
    io.stderr('evmctl ima_verify: not implemented yet\n');
    return 125;
  },
};
