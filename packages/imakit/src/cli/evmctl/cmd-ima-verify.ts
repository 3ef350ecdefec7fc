/**
 * evmctl `ima_verify FILE…`: read security.ima (or `FILE.sig` with `-f`), take the hash algorithm
 * FROM THE SIGNATURE, rehash the file and verify with the `--key` certificates matched by key id
 * (formats.md §6.2, §3.5; host/label-file.ts `verifyImaFile`). fs-verity sigv3 (0x06) values are
 * checked over H(06 ‖ algo ‖ verity digest). Prints `FILE: verification is OK` per good file
 * (stderr, like evmctl's log_info); exit 1 when any file failed.
 */
import { withoutPath } from '../file-flags.ts';
import { readBoundedFile } from '../../host/fs/bounded-read.ts';
import type { Keyring } from '../../core/labels/ima-signature.ts';
import { formatKeyIdEvmctl } from '../../core/keys/keyid.ts';
import { verifyImaFile } from '../../host/label/label-file.ts';
import type { CliIo } from '../io.ts';
import type { EvmctlCommand } from './command.ts';
import type { EvmctlOptions } from './options.ts';
import { INTERNAL, loadKeyring, xattrNames } from './shared.ts';

/** Verify one file; prints evmctl's messages; returns true when it verified. */
function verifyOne(path: string, opts: EvmctlOptions, keyring: Keyring, io: CliIo): boolean {
  let sigfile: Uint8Array | undefined;
  if (opts.sigfile) {
    try {
      sigfile = readBoundedFile(`${path}.sig`, 'signature');
    } catch {
      io.stderr(`Failed reading: ${path}\n`);
      return false;
    }
  }
  // evmctl only verifies signatures: a hash label is "no signature", not a pass
  const v = verifyImaFile(path, {
    keyring,
    xattrName: xattrNames(opts).ima,
    ...(sigfile ? { value: sigfile } : {}),
  });
  if (v.kind === 'hash' || v.kind === 'signature-v1') {
    io.stderr(`${path}: xattr ima has no signature\n`);
    return false;
  }
  switch (v.status) {
    case 'pass':
      if (opts.verbose > 0)
        io.stderr(`hash(${v.algo}) verified with key ${formatKeyIdEvmctl(parseInt(v.keyid!, 16))}\n`);
      io.stderr(`${path}: verification is OK\n`);
      return true;
    case 'unknown-key':
      io.stderr(
        `key ${keyring.keys.length + 1}: ${formatKeyIdEvmctl(parseInt(v.keyid!, 16))} (unknown keyid)\n`,
      );
      return false;
    case 'fail':
      io.stderr(
        `${path}: verification failed: 0 (${v.code === 'E_SIG_INVALID' ? 'bad signature' : v.detail})\n`,
      );
      return false;
    case 'no-label':
      io.stderr(`getxattr failed: ${path}\nerrno: No data available (61)\n`);
      return false;
    default:
      io.stderr(`${path}: ${withoutPath(path, v.detail)}${v.code ? ` [${v.code}]` : ''}\n`);
      return false;
  }
}

export const command: EvmctlCommand = {
  name: 'ima_verify',
  usage: 'file',
  description: 'Verify IMA signature (for debugging).',
  async run(opts, args, io) {
    const keyring = loadKeyring(opts, io);
    if (args.length === 0) {
      io.stderr('Parameters missing\nusage: ima_verify file\n');
      return INTERNAL;
    }
    let fails = 0;
    for (const path of args) if (!verifyOne(path, opts, keyring, io)) fails++;
    return fails > 0 ? 1 : 0;
  },
};
