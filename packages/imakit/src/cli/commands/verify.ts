/**
 * `imakit verify FILE…`: check each file's security.ima — a hash against the content, a v2
 * signature or fs-verity sigv3 against the `--key` certificates matched by key id (formats.md
 * §3.1-§3.5; host/label-file.ts `verifyImaFile`).
 *
 * Output, one line per file:
 *   `PATH: ok (signature rsa-2048 sha256 keyid 4d0e4f4d)` / `PATH: ok (hash sha256)`
 *   `PATH: FAILED invalid-hash` / `invalid-signature` / `unknown-key 4d0e4f4d` / `malformed-label`
 *   `PATH: no label` / `PATH: unsupported (…)` / `PATH: error (…) [CODE]`
 * `--json`: `{"ok", "files":[{path,status,kind?,algo?,keyid?,keyAlg?,code?,detail,notEstablished}]}`;
 * `notEstablished` says what a pass does not prove (key trust, EVM protection, kernel policy).
 * Exit: 0 all ok; 1 any failed / no label / unknown key; 2 bad input (bad key file, not a regular
 * file); 3 I/O; 4 only unsupported.
 */
import type { Command } from 'commander';
import { verifyImaFile, type ImaFileVerdict } from '../../host/label/label-file.ts';
import type { CommandModule } from '../command.ts';
import type { CliIo } from '../io.ts';
import { collect, keyringFromFlags, verdictLine, verifyExit, xattrNamesFlag } from '../file-flags.ts';

interface VerifyFlags {
  key: string[];
  xattrUser?: boolean;
  json?: boolean;
}

function runVerify(paths: readonly string[], f: VerifyFlags, io: CliIo): number {
  const keyring = keyringFromFlags(f.key);
  const xattrName = xattrNamesFlag(f.xattrUser).ima;
  const verdicts: ImaFileVerdict[] = paths.map((p) => verifyImaFile(p, { keyring, xattrName }));
  const status = verifyExit(verdicts);
  if (f.json) io.stdout(JSON.stringify({ ok: status === 0, files: verdicts }, null, 2) + '\n');
  else for (const v of verdicts) io.stdout(verdictLine(v) + '\n');
  return status;
}

export const command: CommandModule = {
  name: 'verify',
  register(program: Command, ctx) {
    program
      .command('verify')
      .description('verify the security.ima hash or signature of files')
      .argument('<files...>', 'regular files')
      .option('-k, --key <files>', 'certificate or public key files (repeatable, comma lists)', collect, [])
      .option('-x, --xattr-user', 'read user.ima instead of security.ima (testing)')
      .option('--json', 'JSON output with per-file verdicts')
      .addHelpText('after', '\nExample:\n  imakit verify --key /etc/keys/x509_evm.der /usr/bin/ls\n')
      .action(async (files: string[], f: VerifyFlags) => {
        await ctx.run(() => runVerify(files, f, ctx.io), { json: f.json === true });
      });
  },
};
