/**
 * Test helper: `imakit verifier serve ARGS --json` as a child process (the real CLI, PGlite in a
 * temp data dir), waited for until it prints where it listens; `stop()` sends SIGTERM and resolves
 * with its exit code.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from '../../helpers.ts';

export interface ServedVerifier {
  readonly child: ChildProcess;
  readonly url: string;
  readonly info: Record<string, unknown>;
  readonly stop: () => Promise<number | null>;
}

/** Start `imakit verifier serve ARGS --json` and wait for its listening line (120 s at most). */
export async function serveVerifier(args: readonly string[]): Promise<ServedVerifier> {
  const child = spawn(
    process.execPath,
    [join(REPO_ROOT, 'bin/imakit.js'), 'verifier', 'serve', ...args, '--json'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const info = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`verifier did not start in 120 s: ${err}`)), 120_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(t);
        resolve(JSON.parse(out.slice(0, nl)) as Record<string, unknown>);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`verifier exited ${code}: ${err}`));
    });
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    url: String(info.listening),
    info,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}
