/**
 * evmctl `ima_verify FILE…`: read security.ima (or `FILE.sig` with `-f`), take the hash algorithm
 * FROM THE SIGNATURE, rehash the file and verify with the `--key` certificates matched by key id
 * (formats.md §6.2, §3.5). fs-verity sigv3 (0x06) values are checked over H(06 ‖ algo ‖ verity
 * digest). Prints `FILE: verification is OK` per good file (stderr, like evmctl's log_info); exit 1
 * when any file failed.
 */
import { readFileSync } from 'node:fs';
import { fsverityDigest, type FsVerityAlgo } from '../../core/fsverity.ts';
import { formatKeyIdEvmctl } from '../../core/keyid.ts';
import type { PublicKey } from '../../core/keys.ts';
import { getXattr } from '../../host/xattr.ts';
import { digestFile, sigv3Digest, verifySignatureValue } from '../../host/label-file.ts';
import type { CliIo } from '../io.ts';
import type { EvmctlCommand } from './command.ts';
import type { EvmctlOptions } from './options.ts';
import { INTERNAL, loadKeyring, reportFileError, requireRegularFile, xattrNames } from './shared.ts';

/** Verify one file; prints evmctl's messages; returns true when it verified. */
export function verifyImaFile(
  path: string,
  opts: EvmctlOptions,
  keys: readonly PublicKey[],
  io: CliIo,
): boolean {
  let value: Uint8Array | null;
  try {
    if (opts.sigfile) value = new Uint8Array(readFileSync(`${path}.sig`));
    else {
      requireRegularFile(path);
      value = getXattr(path, xattrNames(opts).ima);
    }
  } catch (e) {
    io.stderr(`${opts.sigfile ? 'Failed reading' : 'getxattr failed'}: ${path}\n`);
    reportFileError(io, e);
    return false;
  }
  if (value === null) {
    io.stderr(`getxattr failed: ${path}\nerrno: No data available (61)\n`);
    return false;
  }
  if (value[0] !== 0x03 && value[0] !== 0x06) {
    io.stderr(`${path}: xattr ima has no signature\n`);
    return false;
  }
  const verdict = verifySignatureValue(
    value,
    (algo, sig) => {
      if (sig.xattrType === 0x06) {
        const name =
          algo.name === 'sha256' || algo.name === 'sha512' ? (algo.name as FsVerityAlgo) : undefined;
        if (name === undefined) throw new Error(`fs-verity has no ${algo.name} digests`);
        requireRegularFile(path);
        return sigv3Digest(0x06, algo, fsverityDigest(new Uint8Array(readFileSync(path)), name));
      }
      return digestFile(path, [algo])[0]!;
    },
    keys,
  );
  switch (verdict.status) {
    case 'pass':
      if (opts.verbose > 0)
        io.stderr(`hash(${verdict.algo}) verified with key ${formatKeyIdEvmctl(verdict.keyid!)}\n`);
      io.stderr(`${path}: verification is OK\n`);
      return true;
    case 'unknown-key':
      io.stderr(`key ${keys.length + 1}: ${formatKeyIdEvmctl(verdict.keyid!)} (unknown keyid)\n`);
      return false;
    case 'fail':
      io.stderr(`${path}: verification failed: 0 (bad signature)\n`);
      return false;
    default:
      io.stderr(`${path}: ${verdict.detail}\n`);
      return false;
  }
}

export const command: EvmctlCommand = {
  name: 'ima_verify',
  usage: 'file',
  description: 'Verify IMA signature (for debugging).',
  async run(opts, args, io) {
    const keys = loadKeyring(opts, io);
    if (args.length === 0) {
      io.stderr('Parameters missing\nusage: ima_verify file\n');
      return INTERNAL;
    }
    let fails = 0;
    for (const path of args) if (!verifyImaFile(path, opts, keys, io)) fails++;
    return fails > 0 ? 1 : 0;
  },
};
