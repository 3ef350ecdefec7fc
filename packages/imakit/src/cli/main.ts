/**
 * imakit's CLI entry. Flags become options objects, one library call does the work, the result is
 * rendered as text or `--json`, and the exit status is set here and only here.
 */
import { isImakitError, EXIT } from '../errors.ts';
import { typed, type CommandContext } from './command.ts';
import { COMMANDS } from './commands/index.ts';
import { processIo, type CliIo } from './io.ts';
import { VERSION } from './version.ts';

/** Options of {@link main}. */
export interface MainOptions {
  /**
   * Parse the command line and stop before the command runs: 0 when the command, its options and
   * its arguments exist, else the status the line would exit with (2; for `evmctl`, as evmctl: 1
   * for a bad option, 125 for an unknown command). For checking documented command lines that
   * cannot run here (a VM boot, a kernel keyring).
   */
  readonly parseOnly?: boolean;
}

/**
 * Run the CLI with `argv` (without node and script). Returns the exit status; never calls process.exit.
 */
export async function main(
  argv: readonly string[],
  io: CliIo = processIo(),
  opts: MainOptions = {},
): Promise<number> {
  // `imakit evmctl ...` has its own getopt-compatible parser: evmctl's optional arguments only
  // attach (`-uUUID`, `--uuid=UUID`), which commander cannot express.
  if (argv[0] === 'evmctl') {
    const { runEvmctl } = await import('./evmctl/index.ts');
    return runEvmctl(argv.slice(1), io, opts);
  }
  // commander is loaded only here: the evmctl drop-in (often run once per file from find -exec,
  // issue 10 item 11) never needs it
  const { Command, CommanderError } = await import('commander');
  let exitCode: number = EXIT.OK;
  const program = new Command('imakit')
    .description('The Linux integrity subsystem (IMA/EVM) in TypeScript')
    .version(VERSION, '-V, --version')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout(s), writeErr: (s) => io.stderr(s) })
    .showHelpAfterError(false);

  const ctx: CommandContext = {
    io,
    async run(body, runOpts) {
      if (opts.parseOnly === true) return; // the line parsed: commands, options and arguments exist
      try {
        exitCode = await body();
      } catch (e) {
        exitCode = reportError(e, io, runOpts?.json === true);
      }
    },
  };
  // Only the named command's module is imported; help (or an unknown word) needs them all.
  const wanted = COMMANDS.filter((c) => c.name === argv[0]);
  for (const c of wanted.length > 0 ? wanted : COMMANDS) (await c.load()).register(typed(program), ctx);
  program.command('evmctl').description('drop-in for evmctl (see `imakit evmctl --help`)');

  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      // help and version exit 0; usage errors exit 2 (commander already printed the message)
      return e.exitCode === 0 ? EXIT.OK : EXIT.BAD_INPUT;
    }
    return reportError(e, io, false);
  }
  return exitCode;
}

/** Print an error (text or JSON on stdout) and return its exit status. */
export function reportError(e: unknown, io: CliIo, json: boolean): number {
  if (isImakitError(e)) {
    if (json) io.stdout(JSON.stringify({ error: e.toJSON() }, null, 2) + '\n');
    else io.stderr(`imakit: ${e.message} [${e.code}]\n`);
    return e.exitCode;
  }
  const msg = e instanceof Error ? (e.stack ?? e.message) : String(e);
  if (json) io.stdout(JSON.stringify({ error: { code: 'E_INTERNAL', message: String(e) } }, null, 2) + '\n');
  else io.stderr(`imakit: internal error: ${msg}\n`);
  return EXIT.INTERNAL;
}
