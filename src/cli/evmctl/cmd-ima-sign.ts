/**
 * evmctl `ima_sign FILE`: a v2 signature over H_alg(file) → security.ima `03 02 …` (formats.md §3.2).
 * The value is printed in hex on stdout; `-f` also writes `FILE.sig`; `-n` does not set the xattr.
 *
 * Compatibility: evmctl before 1.0 took the key as the second positional argument
 * (`evmctl ima_sign FILE KEY`, still in guides); when `--key` is absent that argument is the key.
 */
import { writeFileSync } from 'node:fs';
import { fromSystemError } from '../../errors.ts';
import { setXattr } from '../../host/xattr.ts';
import { digestFile, signatureValue } from '../../host/label-file.ts';
import type { PrivateKey } from '../../core/keys.ts';
import type { EvmctlCommand } from './command.ts';
import type { EvmctlOptions } from './options.ts';
import type { CliIo } from '../io.ts';
import { doCmd, evmctlAlgo, hex, loadSigner, requireRegularFile, xattrNames } from './shared.ts';

/** The security.ima signature value of one file (nothing written). */
export function imaSignValue(path: string, opts: EvmctlOptions, key: PrivateKey, io: CliIo): Uint8Array {
  const algo = evmctlAlgo(opts.hashAlgo);
  requireRegularFile(path);
  const [digest] = digestFile(path, [algo]);
  if (opts.verbose > 0) io.stderr(`hash(${algo.name}): ${hex(digest!)}\n`);
  return signatureValue(key, algo, digest!, opts.keyid === undefined ? {} : { keyid: opts.keyid });
}

/** Write `FILE.sig` (the full xattr value, type byte included). */
export function writeSigFile(path: string, value: Uint8Array): void {
  try {
    writeFileSync(`${path}.sig`, value);
  } catch (e) {
    throw fromSystemError(e, 'E_IO_WRITE', `${path}.sig`);
  }
}

export const command: EvmctlCommand = {
  name: 'ima_sign',
  usage: '[--sigfile] [--key key] [--pass[=<password>]] file',
  description: 'Make file content signature.',
  async run(opts, args, io) {
    const key = loadSigner(opts, args[1]);
    return doCmd(opts, args, io, `ima_sign ${this.usage}`, (path) => {
      const value = imaSignValue(path, opts, key, io);
      io.stdout(`${hex(value)}\n`);
      if (opts.sigfile) writeSigFile(path, value);
      if (!opts.noXattr) setXattr(path, xattrNames(opts).ima, value);
    });
  },
};
