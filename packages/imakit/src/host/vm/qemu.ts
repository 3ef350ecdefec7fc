/**
 * QEMU command line and a bounded run (real-kernel.md §3.2): q35 under TCG (KVM is not usable on
 * the CI-class machine), a tpm-tis device on the run's swtpm socket, serial console to a file,
 * the OUT and DATA disks found by serial number, `-no-reboot` with `panic=-1 oops=panic` so an
 * oops ends the boot, and a wall-clock timeout that kills QEMU's whole process group.
 */
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { ImakitError } from '../../errors.ts';
import { killGroup, runTool, startGroup } from './process.ts';
import type { Firmware } from './types.ts';

/** The prefix of every command line (real-kernel.md §6). */
export const BASE_CMDLINE = 'console=ttyS0,115200 panic=-1 oops=panic loglevel=7 log_buf_len=4M';

export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';

/** Inputs of the QEMU command line. */
export interface QemuInput {
  readonly dir: string;
  readonly kernel: string;
  readonly initrd: string;
  readonly cmdline: string;
  readonly tpmSocket: string;
  readonly outImage: string;
  readonly dataImage: string | null;
  readonly firmware: Firmware;
  readonly console: string;
}

/** QEMU arguments (without the binary). */
export function qemuArgs(q: QemuInput): string[] {
  const args = [
    '-machine',
    'q35',
    '-accel',
    'tcg,thread=multi',
    '-cpu',
    'max',
    '-smp',
    '2',
    '-m',
    '512',
    '-nographic',
    '-serial',
    `file:${q.console}`,
    '-monitor',
    'none',
    '-nic',
    'none',
    '-vga',
    'none',
    '-no-reboot',
    '-chardev',
    `socket,id=chrtpm,path=${q.tpmSocket}`,
    '-tpmdev',
    'emulator,id=tpm0,chardev=chrtpm',
    '-device',
    'tpm-tis,tpmdev=tpm0',
    '-kernel',
    q.kernel,
    '-initrd',
    q.initrd,
    '-append',
    q.cmdline,
    '-drive',
    `if=none,id=outdisk,file=${q.outImage},format=raw,cache=unsafe`,
    '-device',
    'virtio-blk-pci,drive=outdisk,serial=OUT',
  ];
  if (q.dataImage !== null)
    args.push(
      '-drive',
      `if=none,id=datadisk,file=${q.dataImage},format=raw,cache=unsafe`,
      '-device',
      'virtio-blk-pci,drive=datadisk,serial=DATA',
    );
  if (q.firmware === 'ovmf') {
    const vars = join(q.dir, 'OVMF_VARS.fd');
    copyFileSync(OVMF_VARS, vars);
    args.push(
      '-drive',
      `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`,
      '-drive',
      `if=pflash,format=raw,unit=1,file=${vars}`,
    );
  }
  return args;
}

/** How a QEMU run ended. */
export interface QemuExit {
  readonly exit: number | null;
  readonly timedOut: boolean;
  readonly aborted: boolean;
  readonly ms: number;
  readonly stderr: string;
}

/** Run QEMU until it exits, the timeout passes, or `signal` aborts; QEMU never outlives this. */
export async function runQemu(
  args: readonly string[],
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<QemuExit> {
  if (signal?.aborted) throw new ImakitError('E_VM_BOOT', 'aborted before the boot started');
  const t0 = performance.now();
  const child = startGroup('qemu-system-x86_64', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
  let timedOut = false;
  let aborted = false;
  const onAbort = (): void => {
    aborted = true;
    killGroup(child);
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup(child);
  }, timeoutMs);
  try {
    const exit = await new Promise<number | null>((resolve, reject) => {
      child.once('error', (e) =>
        reject(
          new ImakitError(
            'E_VM_SETUP',
            `cannot start qemu-system-x86_64: ${e.message}; run scripts/setup-kernel.sh`,
          ),
        ),
      );
      child.once('exit', (code) => resolve(code));
    });
    return { exit, timedOut, aborted, ms: performance.now() - t0, stderr };
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
    killGroup(child);
  }
}

/** `qemu-system-x86_64 --version` first line. */
export async function qemuVersion(): Promise<string> {
  const r = await runTool('qemu-system-x86_64', ['--version']);
  return r.stdout.split('\n')[0]?.trim() ?? '';
}
