/**
 * evmctl `sign FILE`: EVM signature in security.evm (0x03, or 0x05 with `-o`), over the EVM
 * metadata digest with `-a` (formats.md §4.3, §4.5). `-s`/`-d` also produce a security.ima
 * signature / hash first, and the EVM digest covers that new value.
 *
 * Unlike evmctl, nothing is written until every value is computed: a failure (bad key, missing
 * generation, unreadable UUID) leaves the file's labels as they were.
 * Seed compatibility: `sign --imasig FILE KEY` (old evmctl positional key) works.
 */
import type { PrivateKey } from '../../core/keys.ts';
import { setXattr } from '../../host/xattr.ts';
import { evmDigest } from '../../core/evm-input.ts';
import { signatureValue } from '../../host/label-file.ts';
import type { CliIo } from '../io.ts';
import type { EvmctlCommand } from './command.ts';
import type { EvmctlOptions } from './options.ts';
import { imaHashValue } from './cmd-ima-hash.ts';
import { imaSignValue, writeSigFile } from './cmd-ima-sign.ts';
import { doCmd, evmctlAlgo, evmctlInput, hex, loadSigner, requireRegularFile, xattrNames } from './shared.ts';

/** Compute the IMA value (if `-s`/`-d`) and the EVM signature of one file, then write them. */
export function signEvmFile(path: string, opts: EvmctlOptions, key: PrivateKey, io: CliIo): void {
  requireRegularFile(path);
  let ima: Uint8Array | undefined;
  if (opts.imasig) ima = imaSignValue(path, opts, key, io);
  // evmctl runs -s then -d; with both, the hash is what ends up in security.ima
  if (opts.imahash) ima = imaHashValue(path, opts);
  const algo = evmctlAlgo(opts.hashAlgo);
  const kind = opts.portable ? 'portable' : 'signature';
  const digest = evmDigest(algo, evmctlInput(path, opts, kind, ima));
  if (opts.verbose > 0) io.stderr(`hash(${algo.name}): ${hex(digest)}\n`);
  const evm = signatureValue(key, algo, digest, {
    xattrType: opts.portable ? 0x05 : 0x03,
    ...(opts.keyid !== undefined ? { keyid: opts.keyid } : {}),
  });
  // evmctl's `-i` (immutable, never upstreamed) only changes the version byte
  if (opts.immutable) evm[1] = 3;
  if (ima !== undefined) io.stdout(`${hex(ima)}\n`);
  io.stdout(`${hex(evm)}\n`);
  if (opts.noXattr) return;
  const names = xattrNames(opts);
  if (ima !== undefined) {
    if (opts.sigfile && opts.imasig && !opts.imahash) writeSigFile(path, ima);
    setXattr(path, names.ima, ima);
  }
  setXattr(path, names.evm, evm);
}

export const command: EvmctlCommand = {
  name: 'sign',
  usage: '[-r] [--imahash | --imasig ] [--key key] [--pass[=<password>]] file',
  description: 'Sign file metadata.',
  async run(opts, args, io) {
    const key = loadSigner(opts, args[1]);
    return doCmd(opts, args, io, `sign ${this.usage}`, (path) => signEvmFile(path, opts, key, io));
  },
};
