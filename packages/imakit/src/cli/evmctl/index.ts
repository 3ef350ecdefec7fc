/**
 * `imakit evmctl ...`: a drop-in for evmctl (ima-evm-utils 1.6, formats.md §6).
 *
 * Like evmctl's main(): the whole command line goes through getopt_long first (options may precede
 * or follow the command word), then the first operand names the command (case-insensitive), and
 * the command's status becomes the exit status: 0 ok, 1 verification failed, 125 internal error
 * (evmctl maps every negative result to 125).
 */
import { isImakitError } from '../../errors.ts';
import type { CliIo } from '../io.ts';
import { VERSION } from '../version.ts';
import type { EvmctlCommand } from './command.ts';
import { EVMCTL_COMMANDS } from './commands.ts';
import { parseEvmctlArgs, type EvmctlOptions } from './options.ts';

/** evmctl's "internal error" status (negative results). */
export const EVMCTL_INTERNAL = 125;

/**
 * Run an evmctl command line (without `evmctl` itself). Never exits; returns the status.
 *
 * @example
 * await runEvmctl(['ima_hash', '-n', '-a', 'sha256', 'file'], processIo()) // prints 0404…, returns 0
 */
export async function runEvmctl(
  argv: readonly string[],
  io: CliIo,
  run: { readonly parseOnly?: boolean } = {},
): Promise<number> {
  const { opts, operands, errors, warnings } = parseEvmctlArgs(argv, io.env);
  for (const w of warnings) io.stderr(`${w}\n`);
  if (errors.length > 0) {
    for (const e of errors) io.stderr(`evmctl: ${e}\n`);
    return 1; // getopt's '?' → exit(1)
  }
  if (opts.help) {
    io.stdout(await usageText());
    return 0;
  }
  if (opts.version) {
    io.stdout(`evmctl 1.6 (imakit ${VERSION})\n`);
    return 0;
  }
  if (opts.engine !== undefined || opts.provider !== undefined || opts.key?.startsWith('pkcs11:')) {
    io.stderr(
      'imakit evmctl: OpenSSL engines, providers and pkcs11: keys are not supported; use a key file\n',
    );
    return EVMCTL_INTERNAL;
  }
  if (opts.passPrompt && opts.pass === undefined) {
    io.stderr(
      'imakit evmctl: -p without a value would prompt; give -pPASS, --pass=PASS or EVMCTL_KEY_PASSWORD\n',
    );
    return EVMCTL_INTERNAL;
  }
  const [name, ...args] = operands;
  if (name === undefined) {
    io.stdout(await usageText());
    return 0;
  }
  if (name.toLowerCase() === 'help') return help(args, io);
  const cmd = await loadCommand(name);
  if (cmd === undefined) {
    io.stdout(`Invalid command: ${name}\n`);
    return EVMCTL_INTERNAL;
  }
  if (run.parseOnly === true) return 0;
  return runCommand(cmd, opts, args, io);
}

async function runCommand(
  cmd: EvmctlCommand,
  opts: EvmctlOptions,
  args: readonly string[],
  io: CliIo,
): Promise<number> {
  try {
    return await cmd.run(opts, args, io);
  } catch (e) {
    // evmctl reports and maps negative results to 125; we also name the code for scripts/tests
    if (isImakitError(e)) io.stderr(`${e.message} [${e.code}]\n`);
    else io.stderr(`internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return EVMCTL_INTERNAL;
  }
}

async function loadCommand(name: string): Promise<EvmctlCommand | undefined> {
  const lower = name.toLowerCase();
  const entry = Object.entries(EVMCTL_COMMANDS).find(([n]) => n.toLowerCase() === lower);
  return entry === undefined ? undefined : entry[1]();
}

async function help(args: readonly string[], io: CliIo): Promise<number> {
  const [what] = args;
  if (what === undefined) {
    io.stdout('usage: help <command>\n');
    return 0;
  }
  const cmd = await loadCommand(what);
  if (cmd === undefined) {
    io.stdout(`invalid command: ${what}\n`);
    return EVMCTL_INTERNAL;
  }
  io.stdout(`usage: ${cmd.name} ${cmd.usage}\n${cmd.description}\n`);
  return 0;
}

async function usageText(): Promise<string> {
  const lines = ['Usage: evmctl [-v] <command> [OPTIONS]', 'commands:', ' --version', ' help <command>'];
  for (const load of Object.values(EVMCTL_COMMANDS)) {
    const c = await load();
    lines.push(` ${c.name} ${c.usage}`);
  }
  lines.push(
    '',
    '  -a, --hashalgo     sha1, sha224, sha256, sha384, sha512, sm3, ... (default: sha256)',
    '  -s, --imasig       make IMA signature',
    '      --veritysig    sign an fs-verity file digest hash',
    '  -d, --imahash      make IMA hash',
    '  -f, --sigfile      store IMA signature in .sig file instead of xattr',
    '  -x, --xattr-user   store xattrs in user namespace (for testing purposes)',
    '  -k, --key          path to signing key (default: /etc/keys/{privkey,pubkey}_evm.pem)',
    '      --keyid n      overwrite signature keyid with a 32-bit value in hex (for signing)',
    '      --keyid-from-cert file',
    '                     read keyid value from SKID of a x509 cert file',
    '  -o, --portable     generate portable EVM signatures',
    '  -p, --pass         password for encrypted signing key (attached: -pPASS, --pass=PASS)',
    '  -r, --recursive    recurse into directories (sign)',
    "  -t, --type         file types to fix 'fxm' (f: file)",
    '                     x - skip fixing if both ima and evm xattrs exist (use with caution)',
    "                     m - stay on the same filesystem (like 'find -xdev')",
    '  -n                 print result to stdout instead of setting xattr',
    '  -u, --uuid         use custom FS UUID for EVM (unspecified: from FS, empty: do not use)',
    '      --smack        use extra SMACK xattrs for EVM',
    '      --m32          force EVM hmac/signature for 32 bit target system',
    '      --m64          force EVM hmac/signature for 64 bit target system',
    '      --ino          use custom inode for EVM',
    '      --uid          use custom UID for EVM',
    '      --gid          use custom GID for EVM',
    '      --mode         use custom Mode for EVM (decimal)',
    '  -g, --generation   use custom Generation for EVM(unspecified: from FS, empty: use 0)',
    '      --ima          use custom IMA signature for EVM',
    '      --selinux      use custom Selinux label for EVM',
    '      --caps         use custom Capabilities for EVM(unspecified: from FS, empty: do not use)',
    '      --hmackey      path to the EVM HMAC key (default: /etc/keys/evm-key-plain)',
    '      --verify-sig   verify measurement list signatures',
    '      --ignore-violations ignore ToMToU measurement violations',
    '  -v                 increase verbosity level',
    '  -h, --help         display this help and exit',
    '',
    'Environment variables:',
    '',
    'EVMCTL_KEY_PASSWORD  : Private key password to use; do not use --pass option',
    '',
  );
  return lines.join('\n') + '\n';
}
