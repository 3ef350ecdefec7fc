/**
 * evmctl `sign FILE`: EVM signature in security.evm (0x03, or 0x05 with `-o`), over the EVM
 * metadata digest with `-a` (formats.md §4.3, §4.5). `-s`/`-d` also produce a security.ima
 * signature / hash first, and the EVM digest covers that new value.
 *
 * Unlike evmctl, nothing is written until every value is computed: a failure (bad key, missing
 * generation, unreadable UUID) leaves the file's labels as they were.
 * Seed compatibility: `sign --imasig FILE KEY` (old evmctl positional key) works.
 */
import { fsetXattr } from '../../host/fs/xattr.ts';
import { withOpenFile } from '../../host/fs/open-file.ts';
import type { EvmctlCommand } from './command.ts';
import { writeSigFile } from './cmd-ima-sign.ts';
import { doCmd, evmctlAlgo, evmctlEvmValues, hex, loadSigner, xattrNames } from './shared.ts';

export const command: EvmctlCommand = {
  name: 'sign',
  usage: '[-r] [--imahash | --imasig ] [--key key] [--pass[=<password>]] file',
  description: 'Sign file metadata.',
  async run(opts, args, io) {
    const key = loadSigner(opts, args[1]);
    const algo = evmctlAlgo(opts.hashAlgo);
    // computed and written through one descriptor: a symlink swapped in cannot take the labels
    return doCmd(opts, args, io, `sign ${this.usage}`, (path) =>
      withOpenFile(path, (file) => {
        const { ima, evm } = evmctlEvmValues(
          path,
          opts,
          io,
          {
            kind: opts.portable ? 'portable' : 'signature',
            key,
            algo,
            ...(opts.keyid !== undefined ? { keyid: opts.keyid } : {}),
          },
          key,
          file,
        );
        // evmctl's `-i` (immutable, never upstreamed) only changes the version byte
        if (opts.immutable) evm[1] = 3;
        if (ima !== undefined) io.stdout(`${hex(ima)}\n`);
        io.stdout(`${hex(evm)}\n`);
        if (opts.noXattr) return;
        const names = xattrNames(opts);
        if (ima !== undefined) {
          if (opts.sigfile && opts.imasig && !opts.imahash) writeSigFile(path, ima);
          fsetXattr(file.fd, names.ima, ima, path);
        }
        fsetXattr(file.fd, names.evm, evm, path);
      }),
    );
  },
};
