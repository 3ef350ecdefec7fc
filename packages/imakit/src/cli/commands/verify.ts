/**
 * `imakit verify PATH…`: check security.ima — a hash against the content, a v2 signature or
 * fs-verity sigv3 against the `--key` certificates matched by key id (formats.md §3.1-§3.5;
 * host/label-file.ts `verifyImaFile`).
 *
 * Files only (no directory, no tree option): one line per file,
 *   `PATH: ok (signature rsa-2048 sha256 keyid 4d0e4f4d)` / `PATH: ok (hash sha256)`
 *   `PATH: FAILED invalid-hash` / `invalid-signature` / `unknown-key 4d0e4f4d` / `malformed-label`
 *   `PATH: no label` / `PATH: unsupported (…)` / `PATH: error (…) [CODE]`
 * `--json`: `{"ok", "files":[{path,status,kind?,algo?,keyid?,keyAlg?,code?,detail,notEstablished}]}`;
 * Exit: 0 all ok; 1 any failed / no label / unknown key; 2 bad input; 3 I/O; 4 only unsupported.
 *
 * Trees (a directory among the paths, or a tree option: --evm, --type, --owner, --one-file-system,
 * --exclude): every regular file below, walked as `imakit label` walks (host/label/verify-tree.ts,
 * worker pool, hard links once); `--evm` also checks security.evm. Failures are listed grouped by
 * cause, then a summary with the count per verdict. `--json`: the report with every failing file
 * and its cause. Exit: 0 every file passed, 1 any did not (failed, no label, unknown key,
 * unreadable), 2 bad options.
 */
import { lstatSync } from 'node:fs';
import { ImakitError, EXIT } from '../../errors.ts';
import { EVM_PRESETS } from '../../core/evm/evm-config.ts';
import { verifyImaFile, type ImaFileVerdict } from '../../host/label/label-file.ts';
import { verifyTree, type VerifyTreeReport } from '../../host/label/verify-tree.ts';
import type { CommandModule } from '../command.ts';
import type { CliIo } from '../io.ts';
import { createProgress } from '../progress.ts';
import { parseTypeFlag } from './label.ts';
import {
  collect,
  DEFAULT_EVM_PRESET,
  evmConfigFlag,
  hmacKeyFlags,
  keyringFromFlags,
  uuidFlag,
  verdictLine,
  verifyExit,
  withoutPath,
  xattrNamesFlag,
  type HmacKeyFlags,
} from '../file-flags.ts';

interface VerifyFlags extends HmacKeyFlags {
  key: string[];
  xattrUser?: boolean;
  evm?: boolean;
  evmConfig?: string;
  uuid?: string | boolean;
  type?: string;
  owner?: string;
  oneFileSystem?: boolean;
  exclude: string[];
  workers?: string;
  json?: boolean;
}

function isDirectory(p: string): boolean {
  try {
    return lstatSync(p).isDirectory();
  } catch {
    return false; // the per-file path reports a missing file with its own error
  }
}

/** Whether the command runs over trees (a directory given, or a tree-only option). */
function treeMode(paths: readonly string[], f: VerifyFlags): boolean {
  return (
    f.evm === true ||
    f.type !== undefined ||
    f.owner !== undefined ||
    f.oneFileSystem === true ||
    f.exclude.length > 0 ||
    f.workers !== undefined ||
    paths.some(isDirectory)
  );
}

/** Text rendering: failures grouped by cause (up to 20 paths each), then the summary. */
export function renderVerifyTree(r: VerifyTreeReport): string {
  const lines: string[] = [];
  const byCause = new Map<string, VerifyTreeReport['failures'][number][]>();
  for (const x of r.failures) {
    const k = `${x.label === 'file' ? 'unreadable' : x.label} ${x.status} [${x.code}]`;
    byCause.set(k, [...(byCause.get(k) ?? []), x]);
  }
  for (const [k, xs] of [...byCause.entries()].sort((a, b) => b[1].length - a[1].length)) {
    lines.push(`${k}: ${xs.length}`);
    for (const x of xs.slice(0, 20)) lines.push(`  ${x.path}: ${withoutPath(x.path, x.detail)}`);
    if (xs.length > 20) lines.push(`  … ${xs.length - 20} more (use --json)`);
  }
  const order = ['pass', 'fail', 'unknown-key', 'no-label', 'unsupported', 'error'] as const;
  const counts = (c: Readonly<Partial<Record<string, number>>>): string =>
    order
      .filter((k) => (c[k] ?? 0) > 0)
      .map((k) => `${c[k]} ${k}`)
      .join(', ') || 'none';
  const links = r.hardLinks > 0 ? ` (${r.inodes} inodes)` : '';
  lines.push(
    `${r.files} files${links}: ${r.passed} passed, ${r.failed} failed, ${r.skipped} skipped; security.ima: ${counts(r.ima)}${r.evm ? `; security.evm: ${counts(r.evm)}` : ''}`,
  );
  return lines.join('\n') + '\n';
}

async function runTree(paths: string[], f: VerifyFlags, io: CliIo): Promise<number> {
  const types = parseTypeFlag(f.type ?? 'f');
  if (types.skipLabelled)
    throw new ImakitError('E_USAGE', '--type x (skip labelled) is for label, not verify');
  if (f.owner !== undefined && !/^\d+$/.test(f.owner))
    throw new ImakitError('E_USAGE', `--owner ${f.owner}: not a uid`);
  if (f.workers !== undefined && !/^[1-9]\d*$/.test(f.workers))
    throw new ImakitError('E_USAGE', `--workers ${f.workers}: not a positive number`);
  const keyring = keyringFromFlags(f.key);
  let evm: Parameters<typeof verifyTree>[0]['evm'];
  if (f.evm === true) {
    const hmacKey = hmacKeyFlags(f);
    evm = {
      config: evmConfigFlag(f.evmConfig),
      uuid: uuidFlag(f.uuid),
      ...(hmacKey !== undefined ? { hmacKey } : {}),
    };
  } else if (f.hmacKey !== undefined || f.kmk !== undefined || f.evmKey !== undefined)
    throw new ImakitError('E_USAGE', 'an EVM key is only used with --evm');
  const progress = createProgress(io, { label: 'verify', json: f.json === true });
  let shown = 0;
  let r: VerifyTreeReport;
  try {
    r = await verifyTree({
      roots: paths,
      keyring,
      xattrUser: f.xattrUser === true,
      ...(evm !== undefined ? { evm } : {}),
      ...(f.owner !== undefined ? { owner: Number(f.owner) } : {}),
      oneFileSystem: f.oneFileSystem === true || types.oneFileSystem,
      exclude: f.exclude,
      ...(f.workers !== undefined ? { workers: Number(f.workers) } : {}),
      onProgress: (done, found, walked) => {
        if (walked) progress.setTotal(found);
        else progress.setFound(found);
        progress.tick(done - shown);
        shown = done;
      },
    });
  } finally {
    progress.stop();
  }
  if (f.json) io.stdout(JSON.stringify({ ok: r.failed === 0, ...r }, null, 2) + '\n');
  else io.stdout(renderVerifyTree(r));
  return r.failed > 0 ? EXIT.VERIFY_FAILED : EXIT.OK;
}

function runFiles(paths: readonly string[], f: VerifyFlags, io: CliIo): number {
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
  register(program, ctx) {
    program
      .command('verify')
      .description('verify security.ima (and with --evm security.evm) of files or of every file in trees')
      .argument('<paths...>', 'regular files or directories')
      .option('-k, --key <files>', 'certificate or public key files (repeatable, comma lists)', collect, [])
      .option('-x, --xattr-user', 'read user.ima/user.evm instead of security.* (testing)')
      .option('--evm', 'trees: also verify security.evm (HMAC needs --hmac-key or --kmk/--evm-key)')
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
      .option('-t, --type <types>', 'trees: f regular files, m one filesystem')
      .option('--owner <uid>', 'trees: only files owned by this uid')
      .option('--one-file-system', 'trees: do not cross filesystem boundaries')
      .option('--exclude <glob>', 'trees: skip matching paths (repeatable)', collect, [])
      .option('--workers <n>', 'trees: hashing threads (default: CPUs)')
      .option('--json', 'JSON output (files: per-file verdicts; trees: summary and every failure)')
      .addHelpText(
        'after',
        '\nExamples:\n  imakit verify --key /etc/keys/x509_evm.der /usr/bin/ls\n  imakit verify --key /etc/keys/x509_evm.der --evm --kmk kmk.bin --evm-key evm-key.blob /usr/bin\n',
      )
      .action(async (paths, f) => {
        await ctx.run(() => (treeMode(paths, f) ? runTree(paths, f, ctx.io) : runFiles(paths, f, ctx.io)), {
          json: f.json === true,
        });
      });
  },
};
