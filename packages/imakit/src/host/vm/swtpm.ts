/**
 * One fresh software TPM 2.0 per boot (real-kernel.md §3.1): `swtpm_setup` initialises the state
 * with the requested PCR banks, `swtpm socket --terminate` serves QEMU on a unix socket in the
 * run's own directory (two runs never share a socket) and ends when QEMU disconnects.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ImakitError } from '../../errors.ts';
import { mustRun, runTool, startGroup, killGroup } from './process.ts';
import type { PcrBank } from './types.ts';

/** A running swtpm. */
export interface Swtpm {
  readonly socket: string;
  readonly child: ChildProcess;
  readonly log: string;
}

const BANKS: readonly PcrBank[] = ['sha1', 'sha256', 'sha384', 'sha512'];

/** Initialise state in `dir` and start swtpm; the caller kills `child` in finally. */
export async function startSwtpm(dir: string, banks: readonly PcrBank[]): Promise<Swtpm> {
  if (banks.length === 0 || banks.some((b) => !BANKS.includes(b)))
    throw new ImakitError('E_USAGE', `PCR banks must be among ${BANKS.join(', ')}`);
  const state = join(dir, 'state');
  mkdirSync(state, { recursive: true });
  await mustRun('E_VM_SETUP', 'swtpm_setup', [
    '--tpm2',
    '--tpmstate',
    state,
    '--pcr-banks',
    banks.join(','),
    '--overwrite',
  ]);
  const socket = join(dir, 'ctrl.sock');
  const log = join(dir, 'swtpm.log');
  const child = startGroup('swtpm', [
    'socket',
    '--tpm2',
    '--tpmstate',
    `dir=${state}`,
    '--ctrl',
    `type=unixio,path=${socket}`,
    '--log',
    `file=${log},level=1`,
    '--terminate',
  ]);
  let spawnError: Error | undefined;
  child.once('error', (e) => (spawnError = e));
  for (let i = 0; i < 200 && !existsSync(socket); i++) {
    if (spawnError !== undefined || child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  if (!existsSync(socket)) {
    killGroup(child);
    throw new ImakitError('E_VM_SETUP', `swtpm did not start${spawnError ? `: ${spawnError.message}` : ''}`);
  }
  return { socket, child, log };
}

/** `swtpm --version` first line. */
export async function swtpmVersion(): Promise<string> {
  const r = await runTool('swtpm', ['--version']);
  return r.stdout.split('\n')[0]?.trim() ?? '';
}
