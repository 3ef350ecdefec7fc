/**
 * `imakit doctor [--json]`: which native addons loaded (and the fallback otherwise), which external
 * tools are on PATH, which kernel facilities this machine exposes. Installs without a C toolchain
 * skip the addons (scripts/install-native.mjs); this is where that shows.
 *
 * Output: one section per kind, a line per item; `--json`: the library's DoctorReport.
 * Exit: 0 always (a missing piece is information, not an error).
 */
import { diagnoseHost, type DoctorReport } from '../../host/doctor/doctor.ts';
import type { CommandModule } from '../command.ts';
import type { CliIo } from '../io.ts';

function render(r: DoctorReport): string {
  const lines = ['native addons:'];
  for (const a of r.native)
    lines.push(`  ${a.name}: ${a.loaded ? 'loaded' : `not built; using ${a.fallback}`} (${a.role})`);
  lines.push('tools:');
  for (const t of r.tools)
    lines.push(`  ${t.name}: ${t.path ?? `not found (Debian package ${t.package})`} - ${t.usedFor}`);
  lines.push('kernel:');
  for (const k of r.kernel)
    lines.push(`  ${k.name}: ${k.path ?? `absent (looked at ${k.lookedAt.join(', ')})`}`);
  return lines.join('\n') + '\n';
}

function runDoctor(json: boolean, io: CliIo): number {
  const report = diagnoseHost({ searchPath: io.env.PATH ?? '' });
  io.stdout(json ? JSON.stringify(report, null, 2) + '\n' : render(report));
  return 0;
}

export const command: CommandModule = {
  name: 'doctor',
  register(program, ctx) {
    program
      .command('doctor')
      .description('report native addons, external tools and kernel facilities available here')
      .option('--json', 'JSON output')
      .addHelpText('after', '\nExample:\n  imakit doctor --json\n')
      .action(async (f) => {
        await ctx.run(() => runDoctor(f.json === true, ctx.io), { json: f.json === true });
      });
  },
};
