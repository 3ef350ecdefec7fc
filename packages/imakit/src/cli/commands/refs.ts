/**
 * `imakit refs …`: reference sets (issue 12).
 *
 *   refs from-rootfs DIR   --out FILE [--format imakit|json|keylime] [-a ALGO] [--policy FILE | --builtin NAME]
 *                          [--owner UID] [--one-file-system] [--json]
 *   refs from-list LIST    --out FILE [--format …] [-a ALGO] [--eventlog FILE | --pcrs …] [--json]
 *   refs convert IN        --out FILE [--format …]
 *   refs show FILE         [--json]
 *   refs merge A B…        --out FILE [--format …]
 *   refs diff OLD NEW      [--json]
 *   refs impact --refs NEW LIST… [--json]
 *   refs sign SET --key KEY [--cert CERT] --out SET.sig [--json]
 *   refs verify SET [--sig SET.sig] --key CERT… [--json]
 *   (--format keylime --dsse-key KEY [--dsse-cert CERT] on every writer: a signed DSSE envelope)
 *   (package sources, added by their module: from-deb, from-dpkg, from-rpm, from-rpmdb, from-oci)
 *
 * FILE inputs may be any form imakit reads (detected): the compact `imakit` file, imakit JSON, a
 * Keylime runtime policy (JSON or DSSE envelope) or a Keylime flat allowlist.
 *
 * Exit: 0 done (diff: no differences; impact: no machine would fail), 1 differences / machines that
 * would fail / a signature that does not verify or an unsigned set, 2 bad input (malformed set, policy or list; invalid exclude), 3 I/O.
 */
import type { Command, OptionValues } from '@commander-js/extra-typings';
import { ImakitError } from '../../errors.ts';
import type { ReferenceSet } from '../../core/refs/reference-set.ts';
import { ReferenceSetBuilder } from '../../core/refs/reference-set.ts';
import { diffReferenceSets } from '../../core/refs/refs-diff.ts';
import { encodeRefsJson } from '../../core/refs/refs-json.ts';
import {
  loadReferenceSet,
  REFS_FORMATS,
  writeReferenceSet,
  type RefsFormat,
} from '../../host/refs/refs-file.ts';
import type { CommandContext, CommandModule } from '../command.ts';
import { createProgress } from '../progress.ts';
import { collect, printJson } from './attest-output.ts';
import { registerPackageGenerators } from './refs-packages.ts';
import { loadRefsSigner } from '../../host/refs/refs-sign.ts';

/** The output flags every generator shares (`--out FILE [--format …] [-a ALGO]`). */
export interface RefsOutputFlags {
  out: string;
  format?: string;
  algo?: string;
  json?: boolean;
  dsseKey?: string;
  dsseCert?: string;
}

/**
 * Add `--out`, `--format`, `-a` (default sha256), `--dsse-key`/`--dsse-cert` and `--json` to a
 * generator subcommand; generic over the command so they join its inferred options.
 * @internal the inferred extra-typings chain is too long for a declaration file (TS7056), and the
 * CLI is no library API: the build strips it from the declarations.
 */
export function outputOptions<A extends unknown[], O extends OptionValues, G extends OptionValues>(
  cmd: Command<A, O, G>,
) {
  return outputTail(
    cmd.option('-a, --algo <name>', 'file hash algorithm (kernel name: sha256, sha512, sm3, ...)', 'sha256'),
  );
}

/**
 * {@link outputOptions} with `-a` only a filter, no default (from-list learns each entry with its own algorithm).
 * @internal see outputOptions
 */
export function filterOutputOptions<A extends unknown[], O extends OptionValues, G extends OptionValues>(
  cmd: Command<A, O, G>,
) {
  return outputTail(
    cmd.option(
      '-a, --algo <name>',
      "keep only this file hash algorithm's digests (default: every entry's, with its own algorithm)",
    ),
  );
}

// generic over the command so the options added here stay in the command's inferred type
function outputTail<A extends unknown[], O extends OptionValues, G extends OptionValues>(
  cmd: Command<A, O, G>,
) {
  return dsseOptions(
    cmd
      .requiredOption('--out <file>', 'write the reference set here')
      .option(
        '--format <form>',
        'imakit (compact, default), json (imakit JSON) or keylime (runtime policy v1)',
        'imakit',
      ),
  ).option('--json', 'JSON summary on stdout');
}

/** `--dsse-key`/`--dsse-cert` on convert and merge (generators get them from outputOptions). */
function dsseOptions<A extends unknown[], O extends OptionValues, G extends OptionValues>(
  cmd: Command<A, O, G>,
) {
  return cmd
    .option('--dsse-key <key>', 'with --format keylime: sign the policy into a DSSE envelope with this key')
    .option('--dsse-cert <cert>', "the key's certificate (the envelope's keyid: Keylime's x509 form)");
}

export function formatFlag(v: string | undefined): RefsFormat {
  const f = (v ?? 'imakit') as RefsFormat;
  if (!REFS_FORMATS.includes(f))
    throw new ImakitError('E_USAGE', `--format must be one of ${REFS_FORMATS.join(', ')} (got '${v}')`);
  return f;
}

/** Write a built set as the flags ask, and report it (text on stderr, or a JSON summary). */
export function writeRefsOutput(
  ctx: CommandContext,
  set: ReferenceSet,
  f: RefsOutputFlags,
  extra: Record<string, unknown> = {},
): number {
  const format = formatFlag(f.format);
  if (f.dsseCert !== undefined && f.dsseKey === undefined)
    throw new ImakitError('E_USAGE', '--dsse-cert needs --dsse-key');
  const dsseKey = f.dsseKey === undefined ? undefined : loadRefsSigner(f.dsseKey, f.dsseCert);
  const { bytes, dropped } = writeReferenceSet(f.out, set, format, dsseKey ? { dsseKey } : {});
  const summary = {
    out: f.out,
    format,
    ...(dsseKey ? { dsse: true } : {}),
    bytes,
    paths: set.digests.size,
    keys: set.keys.length,
    excludes: set.excludes.length,
    bootAggregates: set.bootAggregates.length,
    provenances: set.provenances.length,
    dropped,
    ...extra,
  };
  if (f.json) printJson(ctx.io, summary);
  else {
    ctx.io.stderr(`${set.digests.size} paths written to ${f.out} (${format}, ${bytes} bytes)\n`);
    for (const d of dropped) ctx.io.stderr(`note: not expressible in ${format}: ${d}\n`);
  }
  return 0;
}

// ------------------------------------------------------------------------------- generators

function registerFromRootfs(refs: Command, ctx: CommandContext): void {
  outputOptions(
    refs
      .command('from-rootfs')
      .description(
        'references for the files of a rootfs or mounted image (only those a policy would measure)',
      )
      .argument('<dir>', 'root directory')
      .option('--policy <file>', 'IMA policy file: only files it would measure go in')
      .option('--builtin <names>', 'built-in policy instead (tcb, appraise_tcb, ...; | or , separated)')
      .option('--profile <name>', 'kernel profile for the policy (default mainline)')
      .option('--owner <uid>', 'only files owned by this uid')
      .option('--one-file-system', 'do not cross into other filesystems')
      .option('--prefix <path>', "path of DIR on the target (default '/')"),
  ).action((dir, f) =>
    ctx.run(
      async () => {
        const { referencesFromRootfs } = await import('../../host/refs/from-rootfs.ts');
        const owner = f.owner === undefined ? undefined : Number(f.owner);
        if (owner !== undefined && (!Number.isInteger(owner) || owner < 0))
          throw new ImakitError('E_USAGE', `--owner must be a uid (got '${f.owner}')`);
        if (f.policy !== undefined && f.builtin !== undefined)
          throw new ImakitError('E_USAGE', 'give --policy or --builtin, not both');
        const progress = createProgress(ctx.io, { label: 'hash', json: f.json === true });
        let lastTick = 0;
        const started = Date.now();
        const r = await referencesFromRootfs(dir, {
          algo: f.algo ?? 'sha256',
          ...(f.policy !== undefined ? { policy: { policyFile: f.policy } } : {}),
          ...(f.builtin !== undefined ? { policy: { builtin: f.builtin } } : {}),
          ...(f.profile !== undefined ? { profile: f.profile } : {}),
          ...(owner !== undefined ? { owner } : {}),
          oneFileSystem: f.oneFileSystem === true,
          ...(f.prefix !== undefined ? { prefix: f.prefix } : {}),
          onProgress: (files, _bytes, seen) => {
            progress.setTotal(seen);
            progress.tick(files - lastTick);
            lastTick = files;
          },
        }).finally(() => progress.stop());
        const seconds = (Date.now() - started) / 1000;
        for (const e of r.errors.slice(0, 20)) ctx.io.stderr(`error: ${e.path}: ${e.message}\n`);
        writeRefsOutput(ctx, r.set, f, {
          files: r.files,
          hashedBytes: r.bytes,
          skippedByPolicy: r.skippedByPolicy,
          skippedByOwner: r.skippedByOwner,
          errors: r.errors.length,
          seconds,
        });
        return r.errors.length > 0 ? 3 : 0;
      },
      { json: f.json === true },
    ),
  );
}

function registerFromList(refs: Command, ctx: CommandContext): void {
  filterOutputOptions(
    refs
      .command('from-list')
      .description('learn references from the measurement list of a machine known to be good')
      .argument('<list>', 'binary or ascii measurement list')
      .option('--eventlog <file>', 'TCG event log: boot_aggregate values from its boot PCRs')
      .option(
        '--pcrs <[alg,]file>',
        'PCR values (0-9): boot_aggregate values from them; repeatable',
        collect,
      ),
  ).action((list, f) =>
    ctx.run(
      async () => {
        const { referencesFromListFile } = await import('../../host/refs/refs-impact.ts');
        const r = referencesFromListFile(list, {
          ...(f.algo !== undefined ? { algo: f.algo } : {}),
          ...(f.eventlog !== undefined ? { eventlog: f.eventlog } : {}),
          ...(f.pcrs !== undefined ? { pcrs: f.pcrs } : {}),
        });
        return writeRefsOutput(ctx, r.set, f, {
          files: r.files,
          violationsSkipped: r.violations,
          notInterpreted: r.notInterpreted,
          otherAlgorithm: r.otherAlgo,
        });
      },
      { json: f.json === true },
    ),
  );
}

// ------------------------------------------------------------------------------------- tools

function registerConvert(refs: Command, ctx: CommandContext): void {
  dsseOptions(refs.command('convert'))
    .description('convert a reference set / Keylime policy / allowlist to another form')
    .argument('<in>', 'input (form detected)')
    .requiredOption('--out <file>', 'output file')
    .option('--format <form>', 'imakit, json or keylime', 'imakit')
    .option('--json', 'JSON summary')
    .action((input, f) =>
      ctx.run(() => writeRefsOutput(ctx, loadReferenceSet(input).set, f), { json: f.json === true }),
    );
}

function registerMerge(refs: Command, ctx: CommandContext): void {
  dsseOptions(refs.command('merge'))
    .description('merge reference sets, keeping every digest with its provenance')
    .argument('<sets...>', 'reference sets (any form)')
    .requiredOption('--out <file>', 'output file')
    .option('--format <form>', 'imakit, json or keylime', 'imakit')
    .option('--json', 'JSON summary')
    .action((inputs, f) =>
      ctx.run(
        () => {
          const sets = inputs.map((i) => loadReferenceSet(i).set);
          const algos = new Set(sets.map((s) => s.hashAlgo).filter((a) => a !== undefined));
          const b = new ReferenceSetBuilder({ meta: { generator: 'imakit refs merge' } });
          for (const s of sets) b.addSet(s);
          if (algos.size === 1) b.setHashAlgo([...algos][0]);
          return writeRefsOutput(ctx, b.build(), f, { inputs, hashAlgos: [...algos] });
        },
        { json: f.json === true },
      ),
    );
}

function registerDiff(refs: Command, ctx: CommandContext): void {
  refs
    .command('diff')
    .description('what changed between two reference sets, per package')
    .argument('<old>')
    .argument('<new>')
    .option('--json', 'JSON output')
    .action((a, b, f) =>
      ctx.run(
        () => {
          const d = diffReferenceSets(loadReferenceSet(a).set, loadReferenceSet(b).set);
          if (f.json) printJson(ctx.io, d);
          else {
            const out = (s: string): void => ctx.io.stdout(s + '\n');
            out(
              `${d.added} added, ${d.removed} removed, ${d.changed} changed, ${d.unchanged} unchanged paths`,
            );
            for (const p of d.packages) {
              const v =
                p.before.join(',') !== p.after.join(',')
                  ? ` ${p.before.join(',') || '-'} -> ${p.after.join(',') || '-'}`
                  : '';
              out(`${p.package}${v}: +${p.added.length} -${p.removed.length} ~${p.changed.length}`);
              for (const x of p.added.slice(0, 5)) out(`  + ${x}`);
              for (const x of p.removed.slice(0, 5)) out(`  - ${x}`);
              for (const x of p.changed.slice(0, 5)) out(`  ~ ${x.path}`);
            }
            for (const o of d.other) out(o);
          }
          return d.added + d.removed + d.changed + d.other.length === 0 ? 0 : 1;
        },
        { json: f.json === true },
      ),
    );
}

function registerImpact(refs: Command, ctx: CommandContext): void {
  refs
    .command('impact')
    .description('which machines (recent lists) would fail under a new reference set, and why')
    .requiredOption('--refs <file>', 'the new reference set (any form)')
    .argument('<lists...>', "machines' recent measurement lists (binary or ascii)")
    .option('--json', 'JSON output')
    .action((lists, f) =>
      ctx.run(
        async () => {
          const { impactOfSet } = await import('../../host/refs/refs-impact.ts');
          const r = impactOfSet(loadReferenceSet(f.refs).set, lists);
          if (f.json) printJson(ctx.io, { refs: f.refs, machines: r });
          else
            for (const m of r) {
              ctx.io.stdout(
                `${m.status === 'pass' ? 'PASS' : 'FAIL'}  ${m.list}: ${m.summary.refused} of ${m.summary.entries} entries refused\n`,
              );
              for (const v of m.refused.slice(0, 10))
                ctx.io.stdout(
                  `  entry ${v.index} [${v.reason}] ${v.path}${v.detail ? `: ${v.detail}` : ''}\n`,
                );
            }
          return r.every((m) => m.status === 'pass') ? 0 : 1;
        },
        { json: f.json === true },
      ),
    );
}

function registerShow(refs: Command, ctx: CommandContext): void {
  refs
    .command('show')
    .description('summarize a reference set (any form)')
    .argument('<file>')
    .option('--json', 'JSON output (the set as imakit JSON)')
    .action((file, f) =>
      ctx.run(
        () => {
          const l = loadReferenceSet(file);
          const s = l.set;
          if (f.json) ctx.io.stdout(encodeRefsJson(s));
          else {
            const out = (x: string): void => ctx.io.stdout(x + '\n');
            out(`${file}: ${l.kind}`);
            out(
              `  ${s.digests.size} paths, hash ${s.hashAlgo ?? 'mixed/unknown'}, ${s.provenances.length} provenances`,
            );
            out(
              `  ${s.keys.length} keys, ${s.excludes.length} excludes, ${s.bufs.length} ima-buf, ${s.keyringDigests.length} keyring digests, ${s.bootAggregates.length} boot_aggregate`,
            );
            for (const e of s.excludes) out(`  exclude (${e.anchor} match) ${e.pattern}`);
          }
          return 0;
        },
        { json: f.json === true },
      ),
    );
}

// ------------------------------------------------------------------------------ signatures

function registerSign(refs: Command, ctx: CommandContext): void {
  refs
    .command('sign')
    .description(
      "detached signature over a set file's bytes (an IMA v2 signature value, as evmctl --sigfile)",
    )
    .argument('<set>', 'reference set file (any form: the bytes are signed)')
    .requiredOption('--key <key>', 'private key (RSA, ECDSA or SM2; PEM/DER)')
    .option('--cert <cert>', "the key's certificate: its SKID becomes the key id")
    .requiredOption('--out <file>', 'signature file to write')
    .option('--json', 'JSON summary')
    .action((set, f) =>
      ctx.run(
        async () => {
          const { signRefsFile } = await import('../../host/refs/refs-sign.ts');
          const r = signRefsFile(set, loadRefsSigner(f.key, f.cert), f.out);
          if (f.json) printJson(ctx.io, r);
          else ctx.io.stderr(`${set} signed: ${f.out} (${r.algo}, key ${r.keyid})\n`);
          return 0;
        },
        { json: f.json === true },
      ),
    );
}

function registerVerify(refs: Command, ctx: CommandContext): void {
  refs
    .command('verify')
    .description("check a set's detached signature (--sig) or its DSSE envelope's signatures")
    .argument('<set>', 'reference set file')
    .option('--sig <file>', 'detached signature (refs sign); without it the set must be a DSSE envelope')
    .requiredOption('--key <cert>', 'trusted certificate or public key (repeatable)', collect)
    .option('--json', 'JSON output')
    .action((set, f) =>
      ctx.run(
        async () => {
          const { loadVerifyKeyFile } = await import('../../host/label/label-file.ts');
          const keys = f.key.flatMap((k) => loadVerifyKeyFile(k));
          const l = loadReferenceSet(set, { keys, ...(f.sig !== undefined ? { sig: f.sig } : {}) });
          const s = l.signature!;
          if (f.json)
            printJson(ctx.io, { set, kind: l.kind, status: 'pass', paths: l.set.digests.size, signature: s });
          else
            ctx.io.stdout(
              `PASS  ${set} (${l.kind}, ${l.set.digests.size} paths): ${s.form === 'detached' ? `${s.sigFile}, ${s.verdict.algo}, key ${s.verdict.keyid}` : `DSSE ${s.verdict.detail}`}\n`,
            );
          return 0;
        },
        { json: f.json === true },
      ),
    );
}

export const command: CommandModule = {
  name: 'refs',
  register(program, ctx) {
    const refs = program
      .command('refs')
      .description('reference sets: generate (rootfs, list, packages), convert, merge, diff, impact');
    // generators and tools register here, one line each: registerX(refs, ctx)
    registerFromRootfs(refs, ctx);
    registerFromList(refs, ctx);
    registerPackageGenerators(refs, ctx);
    registerConvert(refs, ctx);
    registerShow(refs, ctx);
    registerMerge(refs, ctx);
    registerDiff(refs, ctx);
    registerImpact(refs, ctx);
    registerSign(refs, ctx);
    registerVerify(refs, ctx);
  },
};
