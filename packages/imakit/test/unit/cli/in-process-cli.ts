/**
 * Test helper: `imakit ARGV` run in-process (the real `main` with a memory io), for CLI tests that
 * need no child process.
 */
import { main } from '../../../src/cli/main.ts';
import { memoryIo } from '../../../src/cli/io.ts';

/** Run `imakit ARGV`; its exit code and what it wrote to stdout and stderr. */
export async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = memoryIo();
  const code = await main(argv, io);
  return { code, out: io.out(), err: io.err() };
}
