/**
 * `imakit label PATH…`: label whole trees with security.ima hashes or signatures and optional EVM
 * (host/label-tree.ts does the work; this file maps flags and renders the report).
 *
 * EVM values default to the `debian-6.1` kernel's xattr list (DEFAULT_EVM_PRESET); `--evm-config
 * evmctl` gives evmctl's.
 * Hard links are labelled once per inode (every path is counted); files are hashed and written
 * through one descriptor, never through a symlink. `--json` lists every changed path (`changed`).
 * Exit: 0 all files labelled or already correct, 3 some files failed (I/O), 2 bad options.
 */
import { ImakitError } from '../../errors.ts';
import { EVM_PRESETS } from '../../core/evm/evm-config.ts';
import { labelTree, type LabelEvmOptions, type LabelTreeReport } from '../../host/label/label-tree.ts';
import type { CommandModule } from '../command.ts';
import type { CliIo } from '../io.ts';
import { createProgress } from '../progress.ts';
import {
  algoFlag,
  collect,
  DEFAULT_EVM_PRESET,
  evmConfigFlag,
  hmacKeyFlags,
  PASSWORD_ENV,
  signerFromFlags,
  uuidFlag,
  withoutPath,
  type HmacKeyFlags,
  type SignerFlags,
} from '../file-flags.ts';

interface LabelFlags extends SignerFlags, HmacKeyFlags {
  sign?: boolean;
  hash?: boolean;
  evmOnly?: boolean;
  algo: string;
  evm?: string;
  evmConfig: string;
  /** commander: string for --uuid UUID, false for --no-uuid */
  uuid?: string | boolean;
  type: string;
  owner?: string;
  oneFileSystem?: boolean;
  exclude: string[];
  dryRun?: boolean;
  xattrUser?: boolean;
  workers?: string;
  json?: boolean;
}

/**
 * `--type` letters as evmctl's `-t`: `f` regular files (the only files IMA labels; implied),
 * `x` skip files that already have both xattrs, `m` stay on one filesystem.
 * @throws ImakitError E_USAGE for other letters
 */
export function parseTypeFlag(t: string): { skipLabelled: boolean; oneFileSystem: boolean } {
  for (const c of t)
    if (!'fxm'.includes(c))
      throw new ImakitError(
        'E_USAGE',
        `--type ${t}: '${c}' is not one of f (regular files), x (skip labelled), m (one filesystem)`,
        { token: t },
      );
  return { skipLabelled: t.includes('x'), oneFileSystem: t.includes('m') };
}

/** Render the report as text. */
export function renderLabelReport(r: LabelTreeReport): string {
  const verb = r.dryRun ? 'would label' : 'labelled';
  const mib = r.bytes / (1 << 20);
  const secs = r.durationMs / 1000;
  const links = r.hardLinks > 0 ? ` (${r.inodes} inodes: ${r.hardLinks} hard links labelled once)` : '';
  const lines = [
    `${r.files} files${links}: ${r.labelled} ${verb}, ${r.unchanged} already correct, ${r.failed} failed, ${r.skipped} skipped`,
    `${mib.toFixed(1)} MiB hashed in ${secs.toFixed(2)} s (${secs > 0 ? (r.files / secs).toFixed(0) : '-'} files/s)`,
  ];
  if (r.signaturesKept > 0)
    lines.push(
      `${r.signaturesKept} files kept their security.ima signature (hashes never replace signatures; use --sign to re-sign)`,
    );
  for (const f of r.failures.slice(0, 50))
    lines.push(`  ${f.path}: ${withoutPath(f.path, f.message)} [${f.code}]`);
  if (r.failures.length > 50) lines.push(`  … ${r.failures.length - 50} more failures (use --json)`);
  return lines.join('\n') + '\n';
}

async function runLabel(paths: string[], f: LabelFlags, io: CliIo): Promise<number> {
  const types = parseTypeFlag(f.type);
  if (f.evmOnly === true && (f.sign === true || f.hash === true))
    throw new ImakitError('E_USAGE', '--evm-only keeps security.ima: drop --sign/--hash');
  if (f.evmOnly === true && f.evm === undefined)
    throw new ImakitError('E_USAGE', '--evm-only needs --evm hmac|sig|portable');
  const sign = f.evmOnly !== true && (f.sign === true || (f.key !== undefined && f.hash !== true));
  const algo = algoFlag(f.algo);
  const signer = f.key !== undefined ? signerFromFlags(f, io) : undefined;
  if (sign && signer === undefined) throw new ImakitError('E_USAGE', '--sign needs --key');
  let evm: LabelEvmOptions | undefined;
  if (f.evm !== undefined) {
    const kinds = { hmac: 'hmac', sig: 'signature', portable: 'portable' } as const;
    const kind = kinds[f.evm as keyof typeof kinds];
    if (kind === undefined) throw new ImakitError('E_USAGE', `--evm ${f.evm}: use hmac, sig or portable`);
    const config = evmConfigFlag(f.evmConfig);
    let hmacKey: Uint8Array | undefined;
    if (kind === 'hmac') {
      hmacKey = hmacKeyFlags(f);
      if (hmacKey === undefined)
        throw new ImakitError('E_USAGE', '--evm hmac needs --hmac-key or --kmk/--evm-key');
    }
    evm = { kind, config, uuid: uuidFlag(f.uuid), ...(hmacKey ? { hmacKey } : {}) };
  }
  const progress = createProgress(io, { label: 'label', json: f.json === true });
  let shown = 0;
  const report = await labelTree({
    roots: paths,
    ima: f.evmOnly === true ? 'keep' : sign ? 'sign' : 'hash',
    algo,
    ...(signer ? { key: signer.key } : {}),
    ...(signer?.keyid !== undefined ? { keyid: signer.keyid } : {}),
    ...(evm ? { evm } : {}),
    xattrUser: f.xattrUser === true,
    ...(f.owner !== undefined ? { owner: Number(f.owner) } : {}),
    oneFileSystem: f.oneFileSystem === true || types.oneFileSystem,
    skipLabelled: types.skipLabelled,
    exclude: f.exclude,
    dryRun: f.dryRun === true,
    ...(f.workers !== undefined ? { workers: Number(f.workers) } : {}),
    onProgress: (done, found, walked) => {
      if (walked) progress.setTotal(found);
      else progress.setFound(found);
      progress.tick(done - shown);
      shown = done;
    },
  });
  progress.stop();
  if (f.json) io.stdout(JSON.stringify(report, null, 2) + '\n');
  else io.stdout(renderLabelReport(report));
  return report.failed > 0 ? 3 : 0;
}

export const command: CommandModule = {
  name: 'label',
  register(program, ctx) {
    program
      .command('label')
      .description(
        'label every regular file below PATH… with security.ima (hash or signature) and optional EVM',
      )
      .argument('<paths...>', 'files or directories')
      .option('--sign', 'write signatures (default when --key is given)')
      .option('--hash', 'write hashes even if --key is given (for EVM signing); existing signatures are kept')
      .option('--evm-only', 'keep security.ima as it is and (re)write only security.evm (with --evm)')
      .option('-k, --key <file>', 'private key (PEM/DER)')
      .option('-p, --pass <passphrase>', `passphrase of an encrypted key (or $${PASSWORD_ENV})`)
      .option('-a, --algo <name>', 'hash algorithm', 'sha256')
      .option('--keyid <hex>', 'override the signature key id')
      .option('--keyid-from-cert <file>', 'take the key id from this certificate')
      .option('--evm <kind>', 'also write security.evm: hmac, sig or portable')
      .option(
        '--evm-config <preset>',
        `target kernel EVM config (${Object.keys(EVM_PRESETS).join(', ')})`,
        DEFAULT_EVM_PRESET,
      )
      .option('--hmac-key <file>', 'plain EVM HMAC key')
      .option('--kmk <file>', 'master key that encrypts --evm-key')
      .option('--evm-key <file>', 'encrypted evm-key blob (keyctl pipe text)')
      .option('--uuid <uuid>', 'fs UUID for EVM (default: read from the filesystem)')
      .option('--no-uuid', 'hash no fs UUID into EVM values')
      .option(
        '-t, --type <types>',
        'evmctl -t letters: f regular files, x skip already labelled, m one filesystem',
        'f',
      )
      .option('--owner <uid>', 'only files owned by this uid')
      .option('--one-file-system', 'do not cross filesystem boundaries')
      .option('--exclude <glob>', 'skip matching paths (repeatable)', collect, [])
      .option('-n, --dry-run', 'report what would change, write nothing')
      .option('-x, --xattr-user', 'write user.ima/user.evm (testing)')
      .option('--workers <n>', 'hashing threads (default: CPUs)')
      .option('--json', 'print the report as JSON')
      .addHelpText(
        'after',
        '\nExample:\n  imakit label --sign --key /etc/keys/privkey_evm.pem -a sha256 /usr/bin\n',
      )
      .action(async (paths, f) => {
        await ctx.run(() => runLabel(paths, f, ctx.io), { json: f.json === true });
      });
  },
};
