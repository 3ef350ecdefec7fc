/** evmctl `ima_setxattr` (in progress). */
import type { EvmctlCommand } from './command.ts';

export const command: EvmctlCommand = {
  name: 'ima_setxattr',
  usage: '',
  description: '',
  async run(_opts, _args, io) {
    io.stderr('evmctl ima_setxattr: not implemented yet\n');
    return 125;
  },
};
