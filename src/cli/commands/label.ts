/**
 * `imakit label PATH…`: label whole trees with security.ima hashes or signatures and optional EVM
 * (host/label-tree.ts does the work; this file maps flags and renders the report).
 *
 * Exit: 0 all files labelled or already correct, 3 some files failed (I/O), 2 bad options.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { ImakitError, fromSystemError } from '../../errors.ts';
import { hashAlgoByName } from '../../core/hash-algo.ts';
import { resolveEvmConfig, EVM_PRESETS, type EvmPresetName } from '../../core/evm-config.ts';
import { parseKeyId } from '../../core/keyid.ts';
import { parseUuid } from '../../core/uuid.ts';
import { labelTree, type LabelEvmOptions, type LabelTreeReport } from '../../host/label-tree.ts';
import { loadSigningKeyFile } from '../../host/label-file.ts';
import type { CommandModule } from '../command.ts';
import type { CliIo } from '../io.ts';
import { createProgress } from '../progress.ts';

interface LabelFlags {
  sign?: boolean;
  hash?: boolean;
  key?: string;
  pass?: string;
  algo: string;
  keyid?: string;
  evm?: string;
  evmConfig: string;
  hmacKey?: string;
  uuid?: string;
  noUuid?: boolean;
  type: string;
  owner?: string;
  oneFileSystem?: boolean;
  exclude: string[];
  dryRun?: boolean;
  xattrUser?: boolean;
  workers?: string;
  json?: boolean;
}

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

/** Render the report as text. */
export function renderLabelReport(r: LabelTreeReport): string {
  const verb = r.dryRun ? 'would label' : 'labelled';
  const mib = r.bytes / (1 << 20);
  const secs = r.durationMs / 1000;
  const lines = [
    `${r.files} files: ${r.labelled} ${verb}, ${r.unchanged} already correct, ${r.failed} failed, ${r.skipped} skipped`,
    `${mib.toFixed(1)} MiB hashed in ${secs.toFixed(2)} s (${secs > 0 ? (r.files / secs).toFixed(0) : '-'} files/s)`,
  ];
  for (const f of r.failures.slice(0, 50)) lines.push(`  ${f.path}: ${f.message} [${f.code}]`);
  if (r.failures.length > 50) lines.push(`  … ${r.failures.length - 50} more failures (use --json)`);
  return lines.join('\n') + '\n';
}

async function runLabel(paths: string[], f: LabelFlags, io: CliIo): Promise<number> {
  if (f.type !== 'f')
    throw new ImakitError('E_USAGE', `--type ${f.type}: only regular files (f) carry IMA labels`, {
      token: f.type,
    });
  const sign = f.sign === true || (f.key !== undefined && f.hash !== true);
  const algo = hashAlgoByName(f.algo);
  const key = sign || (f.evm !== undefined && f.evm !== 'hmac') ? loadKey(f) : undefined;
  if (sign && key === undefined) throw new ImakitError('E_USAGE', '--sign needs --key');
  let evm: LabelEvmOptions | undefined;
  if (f.evm !== undefined) {
    const kinds = { hmac: 'hmac', sig: 'signature', portable: 'portable' } as const;
    const kind = kinds[f.evm as keyof typeof kinds];
    if (kind === undefined) throw new ImakitError('E_USAGE', `--evm ${f.evm}: use hmac, sig or portable`);
    if (!Object.hasOwn(EVM_PRESETS, f.evmConfig))
      throw new ImakitError('E_USAGE', `unknown --evm-config ${f.evmConfig}`, { token: f.evmConfig });
    let hmacKey: Uint8Array | undefined;
    if (kind === 'hmac') {
      const p = f.hmacKey ?? '/etc/keys/evm-key-plain';
      try {
        hmacKey = new Uint8Array(readFileSync(p));
      } catch (e) {
        throw fromSystemError(e, 'E_IO_READ', p);
      }
    }
    evm = {
      kind,
      config: resolveEvmConfig(f.evmConfig as EvmPresetName),
      uuid: f.noUuid ? 'none' : f.uuid !== undefined ? parseUuid(f.uuid) : 'fs',
      ...(hmacKey ? { hmacKey } : {}),
    };
  }
  const progress = createProgress(io, { label: 'label', json: f.json === true });
  const report = await labelTree({
    roots: paths,
    ima: sign ? 'sign' : 'hash',
    algo,
    ...(key ? { key } : {}),
    ...(f.keyid !== undefined ? { keyid: parseKeyId(f.keyid) } : {}),
    ...(evm ? { evm } : {}),
    xattrUser: f.xattrUser === true,
    ...(f.owner !== undefined ? { owner: Number(f.owner) } : {}),
    oneFileSystem: f.oneFileSystem === true,
    exclude: f.exclude,
    dryRun: f.dryRun === true,
    ...(f.workers !== undefined ? { workers: Number(f.workers) } : {}),
    onProgress: (_done, found) => {
      progress.setTotal(found);
      progress.tick();
    },
  });
  progress.stop();
  if (f.json) io.stdout(JSON.stringify(report, null, 2) + '\n');
  else io.stdout(renderLabelReport(report));
  return report.failed > 0 ? 3 : 0;
}

function loadKey(f: LabelFlags) {
  if (f.key === undefined) return undefined;
  return loadSigningKeyFile(f.key, f.pass);
}

export const command: CommandModule = {
  name: 'label',
  register(program: Command, ctx) {
    program
      .command('label')
      .description(
        'label every regular file below PATH… with security.ima (hash or signature) and optional EVM',
      )
      .argument('<paths...>', 'files or directories')
      .option('--sign', 'write signatures (default when --key is given)')
      .option('--hash', 'write hashes even if --key is given (for EVM signing)')
      .option('-k, --key <file>', 'private key (PEM/DER)')
      .option('-p, --pass <passphrase>', 'passphrase of an encrypted key')
      .option('-a, --algo <name>', 'hash algorithm', 'sha256')
      .option('--keyid <hex>', 'override the signature key id')
      .option('--evm <kind>', 'also write security.evm: hmac, sig or portable')
      .option(
        '--evm-config <preset>',
        `target kernel EVM config (${Object.keys(EVM_PRESETS).join(', ')})`,
        'evmctl',
      )
      .option('--hmac-key <file>', 'EVM HMAC key (default /etc/keys/evm-key-plain)')
      .option('--uuid <uuid>', 'fs UUID for EVM (default: read from the filesystem)')
      .option('--no-uuid', 'hash no fs UUID into EVM values')
      .option('-t, --type <types>', 'file types (only f: regular files)', 'f')
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
      .action(async (paths: string[], flags: Record<string, unknown>) => {
        // commander maps --no-uuid to uuid=false
        const f = {
          ...flags,
          noUuid: flags.uuid === false,
          uuid: typeof flags.uuid === 'string' ? flags.uuid : undefined,
        } as unknown as LabelFlags;
        await ctx.run(() => runLabel(paths, f, ctx.io), { json: f.json === true });
      });
  },
};
