/**
 * evmctl `hmac FILE`: security.evm = 0x02 ‖ HMAC-SHA1 as the KERNEL computes it (pitfall 19, like
 * evmctl 1.6): SHA-1 regardless of `-a`, the key from `--hmackey FILE` (default
 * /etc/keys/evm-key-plain) zero-padded to 128 bytes, and the fs UUID under the same `-u` rules as
 * `sign` (evmctl 1.4 used `-a` and never hashed the UUID: both wrong for real kernels).
 * `-s`/`-d` first produce security.ima like `sign`. Values are written only once all are computed.
 * Note: a kernel with EVM initialized refuses userspace writes of 0x02 values (EPERM).
 */
import { ImakitError } from '../../errors.ts';
import { EVM_HMAC_KEY_BUFFER } from '../../core/evm/evm-input.ts';
import { readKeyFile } from '../../host/keys/key-files.ts';
import { fsetXattr } from '../../host/fs/xattr.ts';
import { withOpenFile } from '../../host/fs/open-file.ts';
import type { EvmctlCommand } from './command.ts';
import { DEFAULT_HMAC_KEY, doCmd, evmctlEvmValues, hex, loadSigner, xattrNames } from './shared.ts';

export const command: EvmctlCommand = {
  name: 'hmac',
  usage: '[--imahash | --imasig ] file',
  description: 'Sign file metadata with HMAC using symmetric key (for testing purpose).',
  async run(opts, args, io) {
    const keyPath = opts.hmackey ?? DEFAULT_HMAC_KEY;
    const hmacKey = readKeyFile(keyPath, 'evm-key');
    if (hmacKey.length > EVM_HMAC_KEY_BUFFER)
      throw new ImakitError('E_KEY_PARSE', `key is too long: ${hmacKey.length}`, { path: keyPath });
    const signer = opts.imasig ? loadSigner(opts) : undefined;
    const o = { ...opts, portable: false };
    // computed and written through one descriptor: a symlink swapped in cannot take the labels
    return doCmd(opts, args, io, `hmac ${this.usage}`, (path) =>
      withOpenFile(path, (file) => {
        const { ima, evm } = evmctlEvmValues(path, o, io, { kind: 'hmac', hmacKey }, signer, file);
        io.stderr(`hmac: ${hex(evm.subarray(1))}\n`);
        if (ima !== undefined) io.stdout(`${hex(ima)}\n`);
        if (opts.noXattr) {
          io.stdout(`${hex(evm)}\n`);
          return;
        }
        const names = xattrNames(opts);
        if (ima !== undefined) fsetXattr(file.fd, names.ima, ima, path);
        fsetXattr(file.fd, names.evm, evm, path);
      }),
    );
  },
};
