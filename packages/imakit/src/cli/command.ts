/**
 * One declaration per command (style.md practice 10): each command file exports a `CommandModule`
 * that registers its own subcommand and options on the program. The registry in `commands/index.ts`
 * lists them; nothing else knows about individual commands.
 */
import type { Command as CommanderCommand } from 'commander';
import type { Command } from '@commander-js/extra-typings';
import type { CliIo } from './io.ts';

export interface CommandModule {
  /** top-level noun or verb, e.g. `hash`, `evm`, `log` */
  readonly name: string;
  /**
   * Attach the subcommand(s) to `program`; actions must call `ctx.run(...)`. The program carries
   * @commander-js/extra-typings' types, so a command's `.option()` chain types the options its
   * action receives (no hand-written flag interfaces or casts to drift from the options).
   */
  register(program: Command, ctx: CommandContext): void;
}

export interface CommandContext {
  readonly io: CliIo;
  /**
   * Run an action body: the one place that maps results and errors to an exit status.
   * The body returns the exit status (0 ok, 1 verification failed, ...) or throws an ImakitError.
   */
  run(body: () => Promise<number> | number, opts?: { json?: boolean }): Promise<void>;
}

/**
 * Commander's program seen with @commander-js/extra-typings' types (what `register` receives). The
 * object is unchanged: extra-typings re-exports commander's own Command class with richer types;
 * commander itself is imported at run time only by main.ts (start-up).
 * @example command.register(typed(program), ctx)
 */
export function typed(program: CommanderCommand | Command): Command {
  return program as unknown as Command;
}
