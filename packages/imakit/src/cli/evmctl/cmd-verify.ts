/**
 * evmctl `verify FILE`: verify the 0x03/0x05 EVM signature in security.evm (host/evm-file.ts). The
 * algorithm comes from the header; the same metadata overrides (`-u`, `--generation`, `--ino`, ...)
 * must be given as when signing. Exit 0 verified, 1 verification failed, 125 could not be checked.
 */
import { formatKeyIdEvmctl } from '../../core/keys/keyid.ts';
import { getXattr } from '../../host/fs/xattr.ts';
import { verifyEvmFile } from '../../host/label/evm-file.ts';
import { requireRegularFile } from '../../host/fs/regular-file.ts';
import type { EvmctlCommand } from './command.ts';
import { INTERNAL, evmctlInputOptions, loadKeyring, xattrNames } from './shared.ts';

export const command: EvmctlCommand = {
  name: 'verify',
  usage: 'file',
  description: 'Verify EVM signature (for debugging).',
  async run(opts, args, io) {
    const path = args[0];
    if (path === undefined) {
      io.stderr('Parameters missing\nusage: verify file\n');
      return INTERNAL;
    }
    const keyring = loadKeyring(opts, io);
    requireRegularFile(path);
    const name = xattrNames(opts).evm;
    const value = getXattr(path, name);
    if (value === null) {
      io.stderr(`getxattr failed: ${path}\n`);
      return INTERNAL;
    }
    if (value[0] !== 0x03 && value[0] !== 0x05) {
      io.stderr(`${name} has no signature\n`);
      return INTERNAL;
    }
    if (value[0] === 0x05 && value[1] !== 2) {
      io.stderr('Portable sig: invalid type\n');
      return INTERNAL;
    }
    const kind = value[0] === 0x05 ? 'portable' : 'signature';
    const v = verifyEvmFile(path, { ...evmctlInputOptions(opts, kind), keyring, xattrName: name });
    switch (v.status) {
      case 'pass':
        io.stderr(`${path}: verification is OK\n`);
        return 0;
      case 'unknown-key':
        io.stderr(
          `key ${keyring.keys.length + 1}: ${formatKeyIdEvmctl(parseInt(v.keyid!, 16))} (unknown keyid)\n`,
        );
        return 1;
      case 'fail':
        io.stderr(`${path}: verification failed: 0 (bad signature)\n`);
        return 1;
      default:
        io.stderr(`${path}: ${v.detail}${v.code ? ` [${v.code}]` : ''}\n`);
        return INTERNAL;
    }
  },
};
