/**
 * evmctl `hmac FILE`: security.evm = 0x02 ‖ HMAC-SHA1 as the KERNEL computes it (pitfall 19, like
 * evmctl 1.6): SHA-1 regardless of `-a`, the key from `--hmackey FILE` (default
 * /etc/keys/evm-key-plain) zero-padded to 128 bytes, and the fs UUID under the same `-u` rules as
 * `sign` (evmctl 1.4 used `-a` and never hashed the UUID: both wrong for real kernels).
 * `-s`/`-d` first produce security.ima like `sign`. Values are written only once all are computed.
 * Note: a kernel with EVM initialized refuses userspace writes of 0x02 values (EPERM).
 */
import { readFileSync } from 'node:fs';
import { ImakitError, fromSystemError } from '../../errors.ts';
import { evmHmac, EVM_HMAC_KEY_BUFFER } from '../../core/evm-input.ts';
import { setXattr } from '../../host/xattr.ts';
import type { EvmctlCommand } from './command.ts';
import { imaHashValue } from './cmd-ima-hash.ts';
import { imaSignValue } from './cmd-ima-sign.ts';
import {
  DEFAULT_HMAC_KEY,
  doCmd,
  evmctlInput,
  hex,
  loadSigner,
  requireRegularFile,
  xattrNames,
} from './shared.ts';

export const command: EvmctlCommand = {
  name: 'hmac',
  usage: '[--imahash | --imasig ] file',
  description: 'Sign file metadata with HMAC using symmetric key (for testing purpose).',
  async run(opts, args, io) {
    const keyPath = opts.hmackey ?? DEFAULT_HMAC_KEY;
    let hmacKey: Uint8Array;
    try {
      hmacKey = new Uint8Array(readFileSync(keyPath));
    } catch (e) {
      throw fromSystemError(e, 'E_IO_READ', keyPath);
    }
    if (hmacKey.length > EVM_HMAC_KEY_BUFFER)
      throw new ImakitError('E_KEY_PARSE', `key is too long: ${hmacKey.length}`, { path: keyPath });
    const signer = opts.imasig ? loadSigner(opts) : undefined;
    return doCmd(opts, args, io, `hmac ${this.usage}`, (path) => {
      requireRegularFile(path);
      let ima: Uint8Array | undefined;
      if (signer !== undefined) ima = imaSignValue(path, opts, signer, io);
      if (opts.imahash) ima = imaHashValue(path, opts);
      const mac = evmHmac(hmacKey, evmctlInput(path, { ...opts, portable: false }, 'hmac', ima));
      const value = new Uint8Array(1 + mac.length);
      value[0] = 0x02;
      value.set(mac, 1);
      io.stderr(`hmac: ${hex(mac)}\n`);
      if (ima !== undefined) io.stdout(`${hex(ima)}\n`);
      if (opts.noXattr) {
        io.stdout(`${hex(value)}\n`);
        return;
      }
      const names = xattrNames(opts);
      if (ima !== undefined) setXattr(path, names.ima, ima);
      setXattr(path, names.evm, value);
    });
  },
};
