/**
 * `imakit evm sign|hmac|verify FILE…`: security.evm over each file's metadata as the kernel
 * computes it (formats.md §4; host/evm-file.ts).
 *
 *   evm sign   -k KEY [-a ALG] [--portable] [--imasig|--imahash] FILE…   0x03 (or 0x05) signature
 *   evm hmac   (--hmac-key FILE | --kmk FILE --evm-key BLOB) [--imahash|--imasig -k KEY] FILE…   0x02
 *   evm verify [--key CERT…] [--hmac-key FILE | --kmk FILE --evm-key BLOB] FILE…
 * Common: `--evm-config PRESET` (default `debian-6.1`: the kernel a value is made for, see
 * DEFAULT_EVM_PRESET; `evmctl` gives evmctl's list), `--uuid UUID` / `--no-uuid` (default: the
 * file system's UUID), `--generation N` (default: FS_IOC_GETVERSION), `-x` (user.* xattrs),
 * `--print` (compute only), `--json`.
 *
 * Output: `PATH: ima HEX` (when --imasig/--imahash) and `PATH: evm HEX` per file; verify prints
 * the same verdict lines as `imakit verify`. JSON: `{"files":[{path,ok,kind,ima?,evm,written}|…]}`,
 * verify `{"ok","files":[verdict]}`.
 * Exit: 0 ok; 1 verification failed; 2 bad input (key, passphrase, flags, not a regular file);
 * 3 I/O; 4 unsupported; 5 environment (no fs UUID, no inode generation, no xattr support).
 */
import type { Command, OptionValues } from '@commander-js/extra-typings';
import { ImakitError } from '../../errors.ts';
import { toHex } from '../../core/bytes/bytes.ts';
import type { HashAlgo } from '../../core/hash/hash-algo.ts';
import type { PrivateKey } from '../../core/keys/keys.ts';
import {
  evmLabelFile,
  verifyEvmFile,
  type EvmFileOptions,
  type EvmLabelResult,
  type EvmValueRequest,
} from '../../host/label/evm-file.ts';
import type { ImaValueRequest } from '../../host/label/label-file.ts';
import type { CommandContext, CommandModule } from '../command.ts';
import type { CliIo } from '../io.ts';
import {
  algoFlag,
  collect,
  DEFAULT_EVM_PRESET,
  evmConfigFlag,
  exitOf,
  forEachFile,
  generationFlag,
  hmacKeyFlags,
  keyringFromFlags,
  PASSWORD_ENV,
  signerFromFlags,
  uuidFlag,
  verdictLine,
  verifyExit,
  xattrNamesFlag,
  type EvmInputFlags,
  type SignerFlags,
} from '../file-flags.ts';

interface EvmFlags extends EvmInputFlags, SignerFlags {
  algo: string;
  portable?: boolean;
  imasig?: boolean;
  imahash?: boolean;
  hmacKey?: string;
  kmk?: string;
  evmKey?: string;
  print?: boolean;
  xattrUser?: boolean;
  json?: boolean;
}

interface VerifyFlags extends EvmInputFlags {
  key: string[];
  hmacKey?: string;
  kmk?: string;
  evmKey?: string;
  xattrUser?: boolean;
  json?: boolean;
}

/** The EVM input options the flags describe (kind comes from the value). */
function inputOptions(f: EvmInputFlags): Omit<EvmFileOptions, 'kind' | 'ima'> {
  const generation = generationFlag(f.generation);
  return {
    config: evmConfigFlag(f.evmConfig),
    uuid: uuidFlag(f.uuid),
    ...(generation === undefined ? {} : { meta: { generation } }),
    uuidCache: new Map(),
  };
}

/** The security.ima request of `--imasig` / `--imahash` (hash wins with both, like evmctl). */
function imaRequest(f: EvmFlags, algo: HashAlgo, signer?: { key: PrivateKey; keyid?: number }) {
  if (f.imahash) return { kind: 'hash', algo } satisfies ImaValueRequest;
  if (f.imasig) {
    if (signer === undefined) throw new ImakitError('E_USAGE', '--imasig needs --key');
    return { kind: 'sign', algo, ...signer } satisfies ImaValueRequest;
  }
  return undefined;
}

function render(io: CliIo, json: boolean, results: ReturnType<typeof forEachFile<EvmLabelResult>>): void {
  if (json) {
    const files = results.map((r) =>
      r.ok
        ? {
            path: r.path,
            ok: true,
            ...(r.value.ima ? { ima: toHex(r.value.ima) } : {}),
            evm: toHex(r.value.evm),
            written: r.value.written,
          }
        : { path: r.path, ok: false, error: r.error },
    );
    io.stdout(JSON.stringify({ files }, null, 2) + '\n');
    return;
  }
  for (const r of results) {
    if (!r.ok) continue;
    if (r.value.ima) io.stdout(`${r.path}: ima ${toHex(r.value.ima)}\n`);
    io.stdout(`${r.path}: evm ${toHex(r.value.evm)}\n`);
  }
}

function runLabel(kind: 'sign' | 'hmac', paths: readonly string[], f: EvmFlags, io: CliIo): number {
  const algo = algoFlag(f.algo);
  const signer = f.key !== undefined ? signerFromFlags(f, io) : undefined;
  let evm: EvmValueRequest;
  if (kind === 'sign') {
    if (signer === undefined) throw new ImakitError('E_USAGE', 'evm sign needs --key');
    evm = { kind: f.portable ? 'portable' : 'signature', algo, ...signer };
  } else {
    const hmacKey = hmacKeyFlags(f);
    if (hmacKey === undefined)
      throw new ImakitError('E_USAGE', 'evm hmac needs --hmac-key or --kmk/--evm-key');
    evm = { kind: 'hmac', hmacKey };
  }
  const ima = imaRequest(f, algo, signer);
  const input = inputOptions(f);
  const names = xattrNamesFlag(f.xattrUser);
  const json = f.json === true;
  const results = forEachFile(paths, io, json, (path) =>
    evmLabelFile(path, { evm, input, names, write: f.print !== true, ...(ima ? { ima } : {}) }),
  );
  render(io, json, results);
  return exitOf(results);
}

function runVerify(paths: readonly string[], f: VerifyFlags, io: CliIo): number {
  const keyring = keyringFromFlags(f.key);
  const hmacKey = hmacKeyFlags(f);
  const names = xattrNamesFlag(f.xattrUser);
  const input = inputOptions(f);
  const verdicts = paths.map((p) =>
    verifyEvmFile(p, {
      ...input,
      keyring,
      ...(hmacKey ? { hmacKey } : {}),
      xattrName: names.evm,
      imaXattrName: names.ima,
    }),
  );
  const status = verifyExit(verdicts);
  if (f.json) io.stdout(JSON.stringify({ ok: status === 0, files: verdicts }, null, 2) + '\n');
  else for (const v of verdicts) io.stdout(verdictLine(v) + '\n');
  return status;
}

// generic over the command so the options each helper adds stay in the command's inferred type
function inputFlags<A extends unknown[], O extends OptionValues, G extends OptionValues>(
  c: Command<A, O, G>,
) {
  return c
    .option('--evm-config <preset>', 'EVM xattr list of the verifying kernel', DEFAULT_EVM_PRESET)
    .option('--uuid <uuid>', 'fs UUID to hash (default: read from the file system)')
    .option('--no-uuid', 'hash no fs UUID')
    .option('--generation <n>', 'inode generation (default: FS_IOC_GETVERSION)')
    .option('-x, --xattr-user', 'use user.ima/user.evm (testing)')
    .option('--json', 'JSON output');
}

function hmacKeyOptions<A extends unknown[], O extends OptionValues, G extends OptionValues>(
  c: Command<A, O, G>,
) {
  return c
    .option('--hmac-key <file>', 'plain EVM key (at most 128 bytes)')
    .option('--kmk <file>', 'master key that encrypts --evm-key')
    .option('--evm-key <file>', 'encrypted evm-key blob (keyctl pipe text)');
}

function labelCommand(evm: Command, ctx: CommandContext, kind: 'sign' | 'hmac'): void {
  const c = evm
    .command(kind)
    .description(kind === 'sign' ? 'write EVM signatures (0x03, or 0x05 portable)' : 'write EVM HMACs (0x02)')
    .argument('<files...>', 'regular files')
    .option('-k, --key <file>', 'private key (signatures, --imasig)')
    .option('-p, --pass <passphrase>', `passphrase of an encrypted key (or $${PASSWORD_ENV})`)
    .option('-a, --algo <name>', 'hash algorithm (EVM signature and security.ima)', 'sha256')
    .option('--keyid <hex>', 'key id written in signature headers')
    .option('--keyid-from-cert <file>', 'take the key id from this certificate')
    .option('--imasig', 'first write a security.ima signature')
    .option('--imahash', 'first write a security.ima hash')
    .option('--print', 'compute only, write nothing');
  const run = (files: string[], f: EvmFlags): Promise<void> =>
    ctx.run(() => runLabel(kind, files, f, ctx.io), { json: f.json === true });
  if (kind === 'sign')
    inputFlags(c.option('--portable', 'portable signature (0x05: no inode number, generation, UUID)'))
      .addHelpText(
        'after',
        '\nExample:\n  imakit evm sign --imasig -k /etc/keys/privkey_evm.pem /usr/bin/ls\n',
      )
      .action((files, f) => run(files, f));
  else
    inputFlags(hmacKeyOptions(c))
      .addHelpText(
        'after',
        '\nExample:\n  imakit evm hmac --kmk /etc/keys/kmk --evm-key /etc/keys/evm-key /usr/bin/ls\n',
      )
      .action((files, f) => run(files, f));
}

export const command: CommandModule = {
  name: 'evm',
  register(program, ctx) {
    const evm = program.command('evm').description('security.evm: sign, hmac, verify');
    labelCommand(evm, ctx, 'sign');
    labelCommand(evm, ctx, 'hmac');
    inputFlags(
      hmacKeyOptions(
        evm
          .command('verify')
          .description('verify security.evm signatures (--key) or HMACs (--hmac-key / --kmk)')
          .argument('<files...>', 'regular files')
          .option('-k, --key <files>', 'certificates (repeatable, comma lists)', collect, []),
      ),
    )
      .addHelpText('after', '\nExample:\n  imakit evm verify --key /etc/keys/x509_evm.der /usr/bin/ls\n')
      .action(async (files, f) => {
        await ctx.run(() => runVerify(files, f, ctx.io), { json: f.json === true });
      });
  },
};
