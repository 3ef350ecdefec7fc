/**
 * `imakit hash FILE…`: compute each file's security.ima hash (0x04 ‖ algo ‖ digest, 0x01 for
 * md5/sha1, formats.md §3.1) and write it (default) or only print it.
 *
 * Output: `VALUE_HEX  PATH` per file (like sha256sum; with --print the same, nothing written);
 * `--json`: `{"files":[{"path","ok":true,"algo","digest","value","written"} | {"path","ok":false,"error"}]}`.
 * Exit: 0 ok; 2 bad input (not a regular file, unknown algorithm); 3 I/O; 4 unsupported algorithm;
 * 5 no xattr support / not permitted.
 */
import { labelImaFile } from '../../host/label/label-file.ts';
import type { CommandModule } from '../command.ts';
import type { CliIo } from '../io.ts';
import { algoFlag, exitOf, forEachFile, printImaResults, xattrNamesFlag } from '../file-flags.ts';

interface HashFlags {
  algo: string;
  print?: boolean;
  write?: boolean;
  xattrUser?: boolean;
  json?: boolean;
}

function runHash(paths: readonly string[], f: HashFlags, io: CliIo): number {
  const algo = algoFlag(f.algo);
  const json = f.json === true;
  const write = f.print !== true;
  const results = forEachFile(paths, io, json, (path) =>
    labelImaFile(path, { kind: 'hash', algo }, { write, xattrName: xattrNamesFlag(f.xattrUser).ima }),
  );
  printImaResults(io, json, results, { kind: 'hash', algo: algo.name });
  return exitOf(results);
}

export const command: CommandModule = {
  name: 'hash',
  register(program, ctx) {
    program
      .command('hash')
      .description('compute security.ima hashes of files and write them (or --print)')
      .argument('<files...>', 'regular files')
      .option('-a, --algo <name>', 'hash algorithm (kernel name: sha256, sha512, sm3, ...)', 'sha256')
      .option('--write', 'write security.ima (default)')
      .option('--print', 'print the values only, write nothing')
      .option('-x, --xattr-user', 'use user.ima instead of security.ima (testing)')
      .option('--json', 'JSON output')
      .addHelpText('after', '\nExample:\n  imakit hash -a sha256 /usr/bin/ls\n')
      .action(async (files, f) => {
        await ctx.run(() => runHash(files, f, ctx.io), { json: f.json === true });
      });
  },
};
