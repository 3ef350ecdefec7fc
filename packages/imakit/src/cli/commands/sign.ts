/**
 * `imakit sign FILE…`: security.ima v2 signatures over each file's digest (formats.md §3.2), or
 * with `--verity` type 0x06 sigv3 signatures over the fs-verity digest (§3.3). The key is loaded
 * once; each file is read once; a value is written only once it is complete.
 *
 * Output: `VALUE_HEX  PATH` per file; `--json`: `{"keyid","files":[{"path","ok":true,"kind","algo",
 * "digest","value","written","sigfile"?} | {"path","ok":false,"error"}]}`.
 * Exit: 0 ok; 2 bad input (no/bad key, wrong passphrase, not a regular file); 3 I/O;
 * 4 unsupported (key type, algorithm); 5 no xattr support / not permitted.
 */
import { formatKeyId } from '../../core/keys/keyid.ts';
import { labelImaFile } from '../../host/label/label-file.ts';
import type { CommandModule } from '../command.ts';
import type { CliIo } from '../io.ts';
import {
  algoFlag,
  exitOf,
  forEachFile,
  printImaResults,
  PASSWORD_ENV,
  signerFromFlags,
  xattrNamesFlag,
  type SignerFlags,
} from '../file-flags.ts';

interface SignFlags extends SignerFlags {
  algo: string;
  sigfile?: boolean;
  print?: boolean;
  verity?: boolean;
  xattrUser?: boolean;
  json?: boolean;
}

function runSign(paths: readonly string[], f: SignFlags, io: CliIo): number {
  const algo = algoFlag(f.algo);
  const { key, keyid } = signerFromFlags(f, io);
  const json = f.json === true;
  const kind = f.verity ? 'verity' : 'sign';
  const results = forEachFile(paths, io, json, (path) =>
    labelImaFile(
      path,
      { kind, algo, key, ...(keyid === undefined ? {} : { keyid }) },
      { write: f.print !== true, sigfile: f.sigfile === true, xattrName: xattrNamesFlag(f.xattrUser).ima },
    ),
  );
  printImaResults(
    io,
    json,
    results,
    { kind: f.verity ? 'verity-signature' : 'signature', algo: algo.name },
    { keyid: formatKeyId(keyid ?? key.keyid) },
  );
  return exitOf(results);
}

export const command: CommandModule = {
  name: 'sign',
  register(program, ctx) {
    program
      .command('sign')
      .description('sign files: security.ima v2 signatures (or --verity sigv3)')
      .argument('<files...>', 'regular files')
      .requiredOption('-k, --key <file>', 'private key (PEM/DER; RSA, EC, SM2)')
      .option('-p, --pass <passphrase>', `passphrase of an encrypted key (or $${PASSWORD_ENV})`)
      .option('-a, --algo <name>', 'hash algorithm', 'sha256')
      .option('--keyid <hex>', 'key id written in the header (default: the key certificate SKID)')
      .option('--keyid-from-cert <file>', 'take the key id from this certificate')
      .option('--sigfile', 'also write FILE.sig')
      .option('--print', 'print the values only, write no xattr')
      .option('--verity', 'fs-verity signature (type 0x06, sigv3) over the fs-verity digest')
      .option('-x, --xattr-user', 'use user.ima instead of security.ima (testing)')
      .option('--json', 'JSON output')
      .addHelpText('after', '\nExample:\n  imakit sign -k /etc/keys/privkey_evm.pem -a sha256 /usr/bin/ls\n')
      .action(async (files, f) => {
        await ctx.run(() => runSign(files, f, ctx.io), { json: f.json === true });
      });
  },
};
