/**
 * Child processes of the harness: run a tool to completion, or start one in its own process group
 * so that it (and anything it forks) can be killed as a whole. Nothing here survives the call
 * that started it: callers kill what they start in `finally`.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { ImakitError, type ErrorCode } from '../../errors.ts';

/** Output of a finished tool. */
export interface ToolOutput {
  readonly status: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Run `cmd args` to completion (no shell). Rejects only if the tool cannot be started. */
export function runTool(
  cmd: string,
  args: readonly string[],
  opts: SpawnOptions & { input?: Uint8Array | string; errorCode?: ErrorCode } = {},
): Promise<ToolOutput> {
  return new Promise((resolve, reject) => {
    const { input, errorCode, ...spawnOpts } = opts;
    const child = spawn(cmd, [...args], { stdio: ['pipe', 'pipe', 'pipe'], ...spawnOpts });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (b: Buffer) => out.push(b));
    child.stderr?.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) =>
      reject(
        new ImakitError(
          errorCode ?? 'E_VM_SETUP',
          `cannot run ${cmd}: ${e.message}; run scripts/setup-kernel.sh`,
          {},
          { cause: e },
        ),
      ),
    );
    child.on('close', (status, signal) =>
      resolve({
        status,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      }),
    );
    // a tool that exits without reading its input must not crash the caller with EPIPE
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(input ?? '');
  });
}

/** Run a tool and fail with `code` (and its stderr) unless it exits 0. */
export async function mustRun(
  code: ErrorCode,
  cmd: string,
  args: readonly string[],
  opts: SpawnOptions & { input?: Uint8Array | string } = {},
): Promise<ToolOutput> {
  const r = await runTool(cmd, args, { ...opts, errorCode: code === 'E_VM_IMAGE' ? 'E_VM_SETUP' : code });
  if (r.status !== 0)
    throw new ImakitError(
      code,
      `${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr.trim()}`,
    );
  return r;
}

/** Start a long-running process as the leader of a new process group. */
export function startGroup(cmd: string, args: readonly string[], opts: SpawnOptions = {}): ChildProcess {
  return spawn(cmd, [...args], { ...opts, detached: true, stdio: opts.stdio ?? 'ignore' });
}

/** Kill a process group started by `startGroup` (ignores groups that are already gone). */
export function killGroup(child: ChildProcess | undefined, sig: NodeJS.Signals = 'SIGKILL'): void {
  if (child?.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, sig);
  } catch {
    // the group is already gone
  }
}
