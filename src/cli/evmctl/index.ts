/** `imakit evmctl ...`: evmctl drop-in (getopt_long-compatible parsing and evmctl's command table). */
import type { CliIo } from '../io.ts';

export async function runEvmctl(argv: readonly string[], io: CliIo): Promise<number> {
  io.stderr(`imakit evmctl: not available yet (${argv[0] ?? 'no command'})\n`);
  return 125;
}
