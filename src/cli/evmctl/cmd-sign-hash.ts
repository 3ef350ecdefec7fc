/** evmctl `sign_hash` (in progress). */
import type { EvmctlCommand } from './command.ts';

export const command: EvmctlCommand = {
  name: 'sign_hash',
  usage: '',
  description: '',
  async run(_opts, _args, io) {
    io.stderr('evmctl sign_hash: not implemented yet\n');
    return 125;
  },
};
