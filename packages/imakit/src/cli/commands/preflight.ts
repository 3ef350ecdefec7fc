/**
 * `imakit preflight ROOT --policy FILE|--builtin NAME …`: what the kernel would do with this policy on
 * this tree, file by file and operation by operation, before appraisal is switched on (issue 5).
 * Thin: flags → PreflightOptions, one call to host/preflight.ts, render text or JSON, exit.
 *
 * The text ends with the `imakit label` command that fixes the causes found (`fix` in --json, an
 * argv after `imakit`): it fixes those causes only, never replacing a signature by a hash.
 * Exit: 0 every access allowed, 1 some access denied, 2 bad options or policy, 3 some files
 * unreadable (reported per file; the walk goes on).
 */
import { ImakitError, EXIT } from '../../errors.ts';
import { PROFILES, DEFAULT_PROFILE } from '../../kernel/profiles.ts';
import {
  preflight,
  type PreflightOptions,
  type PreflightReport,
  type PreflightResult,
} from '../../host/preflight/preflight.ts';
import type { EvmHmacKeySource } from '../../host/label/evm-file.ts';
import { createProgress } from '../progress.ts';
import type { CommandModule } from '../command.ts';
import type { CliIo } from '../io.ts';

export type { PreflightReport, PreflightResult } from '../../host/preflight/preflight.ts';

interface PreflightFlags {
  policy?: string;
  builtin?: string;
  appraise: string;
  key: string[];
  fsuuid?: string;
  fsType?: string;
  profile: string;
  op: string[];
  uid: string;
  workers?: string;
  evmKey?: string;
  evmKeyBlob?: string;
  kmk?: string;
  json?: boolean;
}

const collect = (v: string, prev: string[]): string[] => [...prev, v];

function evmSource(f: PreflightFlags): EvmHmacKeySource | undefined {
  if (f.evmKey !== undefined && (f.evmKeyBlob !== undefined || f.kmk !== undefined))
    throw new ImakitError('E_USAGE', 'give --evm-key FILE or --evm-key-blob FILE --kmk FILE, not both');
  if (f.evmKey !== undefined) return { plain: f.evmKey };
  if ((f.evmKeyBlob === undefined) !== (f.kmk === undefined))
    throw new ImakitError('E_USAGE', '--evm-key-blob and --kmk go together');
  return f.evmKeyBlob !== undefined && f.kmk !== undefined ? { blob: f.evmKeyBlob, kmk: f.kmk } : undefined;
}

function toOptions(f: PreflightFlags): PreflightOptions {
  if (f.policy === undefined && f.builtin === undefined)
    throw new ImakitError('E_USAGE', 'give --policy FILE or --builtin NAME');
  if (f.policy !== undefined && f.builtin !== undefined)
    throw new ImakitError('E_USAGE', 'give --policy FILE or --builtin NAME, not both');
  if (!['enforce', 'log', 'fix'].includes(f.appraise))
    throw new ImakitError('E_USAGE', `--appraise ${f.appraise}: use enforce, log or fix`);
  const uid = Number(f.uid);
  if (!/^\d+$/.test(f.uid)) throw new ImakitError('E_USAGE', `--uid ${f.uid}: not a uid`);
  const workers = f.workers === undefined ? undefined : Number(f.workers);
  if (f.workers !== undefined && !/^\d+$/.test(f.workers))
    throw new ImakitError('E_USAGE', `--workers ${f.workers}: not a number`);
  const evmKey = evmSource(f);
  return {
    ...(f.policy !== undefined ? { policyFile: f.policy } : { builtin: f.builtin }),
    appraise: f.appraise as 'enforce' | 'log' | 'fix',
    keys: f.key,
    ...(f.fsuuid !== undefined ? { fsuuid: f.fsuuid } : {}),
    ...(f.fsType !== undefined ? { fsType: f.fsType } : {}),
    profile: f.profile,
    ops: f.op,
    uid,
    ...(workers !== undefined ? { workers } : {}),
    ...(evmKey !== undefined ? { evmKey } : {}),
  };
}

/** Causes only a (new) signature fixes. */
const SIG_CAUSES = new Set([
  'IMA-signature-required',
  'invalid-signature',
  'invalid-signature-version',
  'verity-signature-required',
  'invalid-verity-signature',
  'unverifiable-signature',
]);
/** Causes a correct security.ima hash fixes. */
const HASH_CAUSES = new Set(['missing-hash', 'invalid-hash', 'denied-hash-algorithm', 'unknown-ima-data']);
/** Causes only security.evm is at fault for: recompute it, keep security.ima. */
const EVM_CAUSES = new Set(['missing-HMAC', 'invalid-HMAC']);

/** Where the label command gets the EVM key: preflight's flag names differ from label's. */
function labelEvmKeyArgs(f: Pick<PreflightFlags, 'evmKey' | 'evmKeyBlob' | 'kmk'>): string[] {
  if (f.evmKey !== undefined) return ['--hmac-key', f.evmKey];
  if (f.evmKeyBlob !== undefined && f.kmk !== undefined) return ['--kmk', f.kmk, '--evm-key', f.evmKeyBlob];
  return ['--hmac-key', '<evm-key>'];
}

/**
 * The `imakit label` command (argv after `imakit`) that fixes the causes in the report, or none.
 * A fix fixes the cause it names and nothing else (issue 10 item 2): HMAC causes alone recompute
 * security.evm and keep security.ima (`--evm-only`); hash causes write hashes, which never replace
 * a signature; signature causes sign (`<signing-key.pem>` is for the user to fill in). With EVM on,
 * every command also writes security.evm as this kernel hashes it (its xattr list, the fs UUID
 * the preflight used), or the new security.ima would break the HMACs.
 */
export function fixCommand(
  root: string,
  r: PreflightReport,
  f: Pick<PreflightFlags, 'evmKey' | 'evmKeyBlob' | 'kmk'> = {},
): string[] | null {
  const causes = new Set(r.results.map((x) => x.cause).filter((c): c is string => c !== null));
  const needSig = [...causes].some((c) => SIG_CAUSES.has(c));
  const needHash = [...causes].some((c) => HASH_CAUSES.has(c));
  const needEvm = r.summary.evm && [...causes].some((c) => EVM_CAUSES.has(c));
  if (!needSig && !needHash && !needEvm) return null;
  const s = r.summary;
  const evm = s.evm
    ? [
        '--evm',
        'hmac',
        ...labelEvmKeyArgs(f),
        '--evm-config',
        s.evmPreset,
        '--uuid',
        s.fsuuid ?? '00000000-0000-0000-0000-000000000000',
      ]
    : [];
  if (needSig) return ['label', '--sign', '--key', '<signing-key.pem>', '-a', 'sha256', ...evm, root];
  if (needHash) return ['label', '--hash', '-a', 'sha256', ...evm, root];
  return ['label', '--evm-only', ...evm, root];
}

/** A shell-safe rendering of an argv (placeholders in <…> left as they are). */
function shellLine(argv: readonly string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./<>-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/** Human rendering: denials grouped by cause, then the `imakit label` command that fixes them. */
export function renderPreflight(
  root: string,
  r: PreflightReport,
  f: Pick<PreflightFlags, 'evmKey' | 'evmKeyBlob' | 'kmk'> = {},
): string {
  const s = r.summary;
  const lines: string[] = [];
  const flagged = r.results.filter((x) => x.cause !== null);
  const byCause = new Map<string, PreflightResult[]>();
  for (const x of flagged)
    byCause.set(`${x.auditOp}/${x.cause}`, [...(byCause.get(`${x.auditOp}/${x.cause}`) ?? []), x]);
  const verb = s.appraise === 'enforce' ? 'denied' : `logged (${s.appraise} mode allows)`;
  for (const [k, xs] of [...byCause.entries()].sort((a, b) => b[1].length - a[1].length)) {
    lines.push(`${verb}: ${k} (${xs.length})`);
    for (const x of xs.slice(0, 20)) lines.push(`  ${x.op.padEnd(4)} ${x.path}`);
    if (xs.length > 20) lines.push(`  … ${xs.length - 20} more (use --json)`);
  }
  for (const u of s.unreadable) lines.push(`unreadable: ${u.path}: ${u.message} [${u.code}]`);
  lines.push(
    `${s.files} files, ${s.checks} checks on ${s.profile} (ima_appraise=${s.appraise}): ${s.allowed} allowed, ${s.denied} denied; ${flagged.length} audited${s.appraise === 'fix' ? `; fix mode would write ${s.fixWrites} security.ima values` : ''}; ${s.hashed} hashed in ${(s.durationMs / 1000).toFixed(2)} s`,
  );
  if (flagged.length > 0) {
    const fix = fixCommand(root, r, f);
    const unavailable = flagged.some((x) => x.auditOp === 'collect_data');
    if (fix !== null)
      lines.push(
        `fix: imakit ${shellLine(fix)}${fix.includes('--sign') ? "   (signature-required files need signatures; add the certificate to the kernel's IMA keyring)" : ''}`,
      );
    if (unavailable)
      lines.push(
        "note: collect_data/failed means the kernel cannot allocate the xattr's hash algorithm: relabel with -a sha256",
      );
  }
  return lines.join('\n') + '\n';
}

async function run(root: string, f: PreflightFlags, io: CliIo): Promise<number> {
  const opts = toOptions(f);
  const progress = createProgress(io, { label: 'preflight', json: f.json === true });
  let shown = 0;
  let r: PreflightReport;
  try {
    r = await preflight(root, opts, {
      onProgress: (done, total) => {
        progress.setTotal(total);
        progress.tick(done - shown);
        shown = done;
      },
    });
  } finally {
    progress.stop();
  }
  for (const k of r.summary.keys)
    if (!k.loaded)
      io.stderr(
        `imakit: ${k.source}: ${r.summary.profile} cannot load this ${k.alg} key (${k.error ?? 'refused'}); files signed with it will fail\n`,
      );
  if (f.json) io.stdout(JSON.stringify({ ...r, fix: fixCommand(root, r, f) }, null, 2) + '\n');
  else io.stdout(renderPreflight(root, r, f));
  if (r.summary.denied > 0) return EXIT.VERIFY_FAILED;
  return r.summary.unreadable.length > 0 ? EXIT.IO : EXIT.OK;
}

export const command: CommandModule = {
  name: 'preflight',
  register(program, ctx) {
    program
      .command('preflight')
      .description(
        'predict, for every file below ROOT and each operation, what the kernel would do with this policy (before you enforce it)',
      )
      .argument('<root>', 'directory (its real xattrs, owners and modes are used)')
      .option('--policy <file>', 'policy file')
      .option('--builtin <names>', 'built-in policy, e.g. appraise_tcb or tcb|appraise_tcb')
      .option('--appraise <mode>', 'enforce, log or fix', 'enforce')
      .option('--key <cert>', 'certificate for the IMA keyring (repeatable)', collect, [])
      .option('--fsuuid <uuid>', 'the tree stands for a filesystem with this UUID (for fsuuid= rules)')
      .option('--profile <name>', `kernel profile (${Object.keys(PROFILES).join(', ')})`, DEFAULT_PROFILE)
      .option(
        '--op <op>',
        'exec, read or mmap (repeatable; default read, plus exec for executable files)',
        collect,
        [],
      )
      .option('--uid <n>', 'uid of the process doing the accesses', '0')
      .option('--fs-type <name>', 'the tree stands for this filesystem type (default: its own, from statfs)')
      .option('--evm-key <file>', 'EVM initialised with this plain HMAC key: judge security.evm too')
      .option('--evm-key-blob <file>', "EVM key as the kernel's encrypted blob (keyctl pipe), with --kmk")
      .option('--kmk <file>', 'master key that unwraps --evm-key-blob')
      .option('--workers <n>', 'worker threads (0: this thread; default: CPUs for trees of 2,048+ files)')
      .option('--json', 'JSON: {"results":[{path,op,decision,auditOp,cause}],"summary":{…}}')
      .addHelpText(
        'after',
        '\nExample:\n  imakit preflight /usr --builtin appraise_tcb --appraise enforce --key /etc/keys/x509_ima.der\n',
      )
      .action(async (root, f) => ctx.run(() => run(root, f, ctx.io), { json: f.json === true }));
  },
};
