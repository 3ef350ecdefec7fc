/**
 * `imakit refs from-deb FILE|DIR… | from-dpkg [--root DIR] | from-rpm FILE|DIR… | from-rpmdb [--root DIR]
 *  | from-oci DIR|TAR [--image NAME:TAG] [--platform OS/ARCH]` — references from packages and images (issue 12 part 3). Each maps flags to
 * `referencesFromPackages` and writes with the refs command's shared output options.
 */
import type { Command } from '@commander-js/extra-typings';
import type { CommandContext } from '../command.ts';
import { createProgress } from '../progress.ts';
import { outputOptions, writeRefsOutput, type RefsOutputFlags } from './refs.ts';

interface PkgFlags extends RefsOutputFlags {
  root?: string;
  image?: string;
  platform?: string;
}

const GENERATORS = [
  {
    name: 'from-deb',
    kind: 'deb',
    args: '<inputs...>',
    help: '.deb files or apt archive directories',
    desc: 'references from Debian packages (data.tar hashed, MD5 checked against md5sums)',
  },
  {
    name: 'from-dpkg',
    kind: 'dpkg',
    args: '',
    help: '',
    desc: "references from the installed Debian system (dpkg's database + files on disk)",
  },
  {
    name: 'from-rpm',
    kind: 'rpm',
    args: '<inputs...>',
    help: '.rpm files or directories of them',
    desc: 'references from RPM headers (file digests and per-file IMA signatures)',
  },
  {
    name: 'from-rpmdb',
    kind: 'rpmdb',
    args: '',
    help: '',
    desc: 'references from the installed RPM database (rpmdb.sqlite)',
  },
  {
    name: 'from-oci',
    kind: 'oci',
    args: '<inputs...>',
    help: 'OCI layout directories or docker save tarballs',
    desc: 'references from OCI images (layers applied with whiteouts)',
  },
] as const;

/** Register the package generators on the `refs` command. */
export function registerPackageGenerators(refs: Command, ctx: CommandContext): void {
  for (const g of GENERATORS) {
    const base = refs.command(g.name).description(g.desc);
    const run = (inputs: string[], f: PkgFlags): Promise<void> => runGenerator(g, inputs, f, ctx);
    // one chain per shape, so each action's flags are inferred from its own options
    if (g.kind === 'oci')
      outputOptions(
        base
          .argument('<inputs...>', g.help)
          .option('--image <name:tag>', 'the image to read when the archive or layout holds several')
          .option(
            '--platform <os/arch>',
            "platform to take from an image index (default linux/<this machine's>)",
          ),
      ).action((inputs, f) => run(inputs, f));
    else if (g.args !== '')
      outputOptions(base.argument('<inputs...>', g.help)).action((inputs, f) => run(inputs, f));
    else
      outputOptions(base.option('--root <dir>', 'root of the system', '/')).action((f) => run([f.root], f));
  }
}

function runGenerator(
  g: (typeof GENERATORS)[number],
  inputs: string[],
  f: PkgFlags,
  ctx: CommandContext,
): Promise<void> {
  return ctx.run(
    async () => {
      const { referencesFromPackages } = await import('../../host/packages/from-packages.ts');
      const progress = createProgress(ctx.io, { label: g.kind, json: f.json === true });
      let last = 0;
      const started = Date.now();
      const r = await referencesFromPackages(g.kind, inputs, {
        algo: f.algo ?? 'sha256',
        ...(f.image !== undefined ? { image: f.image } : {}),
        ...(f.platform !== undefined ? { platform: f.platform } : {}),
        onProgress: (done, total) => {
          progress.setTotal(total);
          progress.tick(done - last);
          last = done;
        },
      }).finally(() => progress.stop());
      for (const s of r.skipped.slice(0, 20)) ctx.io.stderr(`skipped: ${s.path}: ${s.reason}\n`);
      return writeRefsOutput(ctx, r.set, f, {
        inputs: r.inputs,
        files: r.files,
        hashedBytes: r.bytes,
        signatures: r.signatures,
        skipped: r.skipped.length,
        seconds: (Date.now() - started) / 1000,
      });
    },
    { json: f.json === true },
  );
}
