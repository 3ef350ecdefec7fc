/**
 * One evmctl command (style.md practice 10, evmctl's `cmds[]`): name, usage and handler together.
 * Each command lives in its own `cmd-<name>.ts` file and is listed in `commands.ts`.
 */
import type { CliIo } from '../io.ts';
import type { EvmctlOptions } from './options.ts';

export interface EvmctlCommand {
  /** the command word, e.g. `ima_sign` (matched case-insensitively, like evmctl's strcasecmp) */
  readonly name: string;
  /** evmctl's usage text for `help <command>`, e.g. `[--sigfile] [--key key] [--pass[=<password>]] file` */
  readonly usage: string;
  /** one-line description (evmctl's `msg`) */
  readonly description: string;
  /**
   * Run the command. `args` are the operands after the command word. Returns the exit status
   * (0 ok, 1 verification failed, 125 internal error, as evmctl). Output only through `io`.
   */
  run(opts: EvmctlOptions, args: readonly string[], io: CliIo): Promise<number>;
}

/** Lazily loads one command module (each exports `command: EvmctlCommand`). */
export type EvmctlCommandLoader = () => Promise<EvmctlCommand>;
