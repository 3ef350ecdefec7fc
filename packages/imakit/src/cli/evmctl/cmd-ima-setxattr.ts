/**
 * evmctl `ima_setxattr [--sigfile SIG] FILE`: set security.ima from `FILE.sig`, or with `-f` from
 * the named SIG file. Unlike evmctl, the value is checked to be a well-formed security.ima value
 * first (the kernel would refuse a malformed one anyway), and an unreadable sig file is an error.
 */
import { readBoundedFile } from '../../host/fs/bounded-read.ts';
import { parseImaXattr } from '../../core/labels/ima-xattr.ts';
import { fsetXattr } from '../../host/fs/xattr.ts';
import { withOpenFile } from '../../host/fs/open-file.ts';
import type { EvmctlCommand } from './command.ts';
import { requireRegularFile } from '../../host/fs/regular-file.ts';
import { INTERNAL, xattrNames } from './shared.ts';

export const command: EvmctlCommand = {
  name: 'ima_setxattr',
  usage: '[--sigfile file]',
  description: 'Set IMA signature from sigfile',
  async run(opts, args, io) {
    const sigPath = opts.sigfile ? args[0] : undefined;
    const file = opts.sigfile ? args[1] : args[0];
    if (file === undefined) {
      io.stderr('Parameters missing\nusage: ima_setxattr [--sigfile file]\n');
      return INTERNAL;
    }
    const from = sigPath ?? `${file}.sig`;
    const value = readBoundedFile(from, 'signature');
    parseImaXattr(value);
    requireRegularFile(file);
    // written on the opened file (O_NOFOLLOW): a symlink swapped in cannot take the signature
    withOpenFile(file, (f) => fsetXattr(f.fd, xattrNames(opts).ima, value, file));
    return 0;
  },
};
