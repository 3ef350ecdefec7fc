/**
 * `imakit vm …`: boot the real Debian kernel with IMA/EVM under QEMU + swtpm and see what it does
 * with a policy and labels before enforcing them on a fleet (real-kernel.md; issue 3).
 *
 *   vm setup                       fetch/cache the kernel (scripts/setup-kernel.sh)
 *   vm run [--append "P…"] [--policy FILE] [--ima-cert DER]… [--evm-cert DER]… [--ima-v1-key PEM]…
 *          [--evm-key-plain FILE [--kmk FILE] | --evm-key-blob FILE --kmk FILE]
 *          [--files DIR | --data-image IMG] [--fs-uuid UUID] [--banks sha1,sha256]
 *          [--firmware seabios|ovmf] [--module NAME]… [--workload FILE.json] [--out DIR]
 *          [--timeout S] [--keep] [--keep-data-disk] [--kernel-dir DIR] [--json]
 *
 * The workload file is a JSON array of accesses (or `{ "workload": [...] }`), e.g.
 * `[{"op":"read","path":"etc/hosts"},{"op":"exec","path":"bin/true","uid":1000}]`; every op and
 * field is documented in docs/vm-workload.md. A policy that appraises exec on the initramfs (the
 * guest's own busybox) is warned about before the boot.
 *
 * Exit: 0 the guest completed (whatever the kernel decided: see the access table), 2 bad input or
 * a policy the kernel rejected, 5 environment (missing packages/kernel cache, boot failure,
 * timeout, guest oops).
 */
import { readBoundedFile, type InputKind } from '../../host/fs/bounded-read.ts';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn } from 'node:child_process';
import { EXIT, ImakitError } from '../../errors.ts';
import { defaultKernelDir, runVm, type PcrBank, type VmResult, type VmSpec } from '../../host/vm/index.ts';
import type { CommandContext, CommandModule } from '../command.ts';
import { guestExecWarnings, parseWorkload } from './vm-workload.ts';

interface RunFlags {
  append: string[];
  policy?: string;
  imaCert: string[];
  evmCert: string[];
  imaV1Key: string[];
  evmKeyPlain?: string;
  evmKeyBlob?: string;
  kmk?: string;
  files?: string;
  dataImage?: string;
  fsUuid?: string;
  banks: string;
  firmware: string;
  module: string[];
  workload?: string;
  out?: string;
  timeout: string;
  keep?: boolean;
  keepDataDisk?: boolean;
  kernelDir?: string;
  json?: boolean;
}

const collect = (v: string, prev: string[]): string[] => [...prev, v];

function readInput(cwd: string, p: string, what: string, kind: InputKind): Buffer {
  try {
    return Buffer.from(readBoundedFile(resolve(cwd, p), kind));
  } catch (e) {
    if (e instanceof ImakitError && e.code !== 'E_IO_READ') throw e;
    throw new ImakitError('E_IO_READ', `cannot read ${what}: ${(e as Error).message}`, { path: p });
  }
}

/** Flags → VmSpec (exported for tests). */
export function specFromFlags(f: RunFlags, cwd: string): VmSpec {
  const banks = f.banks.split(',').map((b) => b.trim()) as PcrBank[];
  if (f.firmware !== 'seabios' && f.firmware !== 'ovmf')
    throw new ImakitError('E_USAGE', '--firmware must be seabios or ovmf');
  if (f.evmKeyBlob !== undefined && f.kmk === undefined)
    throw new ImakitError(
      'E_USAGE',
      '--evm-key-blob needs --kmk (the user master key it is encrypted under)',
    );
  if (f.evmKeyBlob !== undefined && f.evmKeyPlain !== undefined)
    throw new ImakitError('E_USAGE', 'give --evm-key-plain or --evm-key-blob, not both');
  const kmk =
    f.kmk !== undefined ? new Uint8Array(readInput(cwd, f.kmk, 'the master key', 'evm-key')) : undefined;
  let evmKey: VmSpec['evmKey'];
  if (f.evmKeyPlain !== undefined)
    evmKey = {
      plain: new Uint8Array(readInput(cwd, f.evmKeyPlain, 'the EVM key', 'evm-key')),
      ...(kmk ? { kmk } : {}),
    };
  else if (f.evmKeyBlob !== undefined && kmk !== undefined)
    evmKey = {
      kmk,
      blob: readInput(cwd, f.evmKeyBlob, 'the EVM key blob', 'evm-key')
        .toString('utf8')
        .trim()
        .replace(/^load /, ''),
    };
  return {
    append: f.append.flatMap((a) => a.split(/\s+/).filter(Boolean)),
    ...(f.policy !== undefined
      ? { policy: readInput(cwd, f.policy, 'the policy', 'policy').toString('utf8') }
      : {}),
    imaCerts: f.imaCert.map((c) => new Uint8Array(readInput(cwd, c, 'an IMA certificate', 'certificate'))),
    evmCerts: f.evmCert.map((c) => new Uint8Array(readInput(cwd, c, 'an EVM certificate', 'certificate'))),
    imaV1Keys: f.imaV1Key.map((k) => readInput(cwd, k, 'a v1 public key', 'key').toString('utf8')),
    ...(evmKey !== undefined ? { evmKey } : {}),
    ...(f.files !== undefined ? { files: resolve(cwd, f.files) } : {}),
    ...(f.dataImage !== undefined ? { dataImage: resolve(cwd, f.dataImage) } : {}),
    ...(f.fsUuid !== undefined ? { fsUuid: f.fsUuid } : {}),
    banks,
    firmware: f.firmware,
    modules: f.module,
    ...(f.workload !== undefined
      ? {
          workload: parseWorkload(
            readInput(cwd, f.workload, 'the workload', 'workload').toString('utf8'),
            f.workload,
          ),
        }
      : {}),
  };
}

function summary(r: VmResult): Record<string, unknown> {
  return {
    outDir: r.outDir,
    policyLoaded: r.policyLoaded,
    measurements: r.measurementCount,
    violations: r.violations,
    evmState: r.evmState,
    lsm: r.lsm,
    pcr10: Object.fromEntries(Object.entries(r.pcrs).map(([b, p]) => [b, p[10]])),
    accesses: r.accesses.map((a) => ({
      index: a.index,
      ...(a.label !== undefined ? { label: a.label } : {}),
      op: a.op,
      path: a.path,
      uid: a.uid,
      outcome: a.outcome,
      status: a.status,
      causes: a.audit
        .filter((x) => x.type === 1800)
        .map((x) => `${x.fields.op ?? ''}:${x.fields.cause ?? ''}`),
    })),
    dataImage: r.dataImage,
    info: { ...r.info, qemuArgs: undefined },
  };
}

async function runCommand(f: RunFlags, ctx: CommandContext): Promise<number> {
  const spec = specFromFlags(f, ctx.io.cwd);
  const warnings = spec.policy !== undefined ? guestExecWarnings(spec.policy) : [];
  for (const w of warnings) ctx.io.stderr(`warning: ${w}\n`);
  const timeout = Number(f.timeout);
  if (!Number.isFinite(timeout) || timeout <= 0)
    throw new ImakitError('E_USAGE', '--timeout must be a positive number of seconds');
  // Ctrl-C / SIGTERM: abort the boot; runVm kills QEMU and swtpm and removes its temp files
  const ac = new AbortController();
  const onSignal = (): void => ac.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let r: VmResult;
  try {
    r = await runVm(spec, {
      kernelDir: f.kernelDir !== undefined ? resolve(ctx.io.cwd, f.kernelDir) : defaultKernelDir(ctx.io.env),
      ...(f.out !== undefined ? { outDir: resolve(ctx.io.cwd, f.out) } : {}),
      timeoutMs: timeout * 1000,
      signal: ac.signal,
      keep: f.keep === true,
      keepDataDisk: f.keepDataDisk === true,
    });
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
  if (f.json === true) {
    ctx.io.stdout(JSON.stringify({ ...summary(r), warnings }, null, 2) + '\n');
    return EXIT.OK;
  }
  const lines = [
    `kernel: ${r.info.kernelPackage} (${r.info.firmware}, banks ${r.info.banks.join(',')}); boot ${(r.info.bootMs / 1000).toFixed(1)} s`,
    `policy: ${r.policyLoaded === null ? 'none written' : r.policyLoaded ? 'loaded' : 'rejected'}; measurements ${r.measurementCount}, violations ${r.violations}`,
  ];
  for (const a of r.accesses) {
    const causes = a.audit.filter((x) => x.type === 1800).map((x) => `${x.fields.op}:${x.fields.cause}`);
    lines.push(
      `  #${a.index} ${a.op} ${a.path} uid=${a.uid}: ${a.outcome}${causes.length ? ` (${causes.join(', ')})` : ''}`,
    );
  }
  lines.push(`artifacts: ${r.outDir}`);
  ctx.io.stdout(lines.join('\n') + '\n');
  return EXIT.OK;
}

/** Where scripts/setup-kernel.sh is, relative to this file. */
function setupScript(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '../../../scripts/setup-kernel.sh');
}

async function setupCommand(ctx: CommandContext, json: boolean): Promise<number> {
  const script = setupScript();
  const r = await new Promise<{ code: number | null; out: string; err: string }>((res, rej) => {
    const child = spawn('bash', [script], { env: { ...ctx.io.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      if (!json) ctx.io.stdout(b.toString());
    });
    child.stderr.on('data', (b: Buffer) => {
      err += b.toString();
      if (!json) ctx.io.stderr(b.toString());
    });
    child.on('error', (e) => rej(new ImakitError('E_VM_SETUP', `cannot run ${script}: ${e.message}`)));
    child.on('close', (code) => res({ code, out, err }));
  });
  if (r.code !== 0)
    throw new ImakitError(
      'E_VM_SETUP',
      `setup-kernel.sh failed (${r.code}): ${r.err.trim().split('\n').slice(-3).join(' ')}`,
    );
  const kernelDir = defaultKernelDir(ctx.io.env);
  if (json)
    ctx.io.stdout(JSON.stringify({ ok: true, kernelDir, log: r.out.trim().split('\n') }, null, 2) + '\n');
  return EXIT.OK;
}

export const command: CommandModule = {
  name: 'vm',
  register(program, ctx) {
    const vm = program
      .command('vm')
      .description('boot the real kernel (QEMU + swtpm) and see what IMA/EVM do');
    vm.command('setup')
      .description('install the harness packages and cache the Debian kernel (scripts/setup-kernel.sh)')
      .option('--json', 'print a JSON summary')
      .action(async (flags) => {
        await ctx.run(() => setupCommand(ctx, flags.json === true), { json: flags.json === true });
      });
    vm.command('run')
      .description(
        'boot once with a policy, keys, labelled files and a workload; collect what the kernel produced',
      )
      .option('--append <params>', 'kernel parameters (repeatable; space-separated)', collect, [])
      .option('--policy <file>', 'IMA policy written once to securityfs')
      .option('--ima-cert <der>', 'DER certificate for the _ima keyring (repeatable)', collect, [])
      .option('--evm-cert <der>', 'DER certificate for the _evm keyring (repeatable)', collect, [])
      .option('--ima-v1-key <pem>', 'RSA public key imported as a v1 key (repeatable)', collect, [])
      .option('--evm-key-plain <file>', 'raw EVM HMAC key; wrapped into an encrypted-key blob')
      .option('--evm-key-blob <file>', 'encrypted-key payload (`default user:kmk N hex`)')
      .option('--kmk <file>', 'user master key (raw bytes) for the EVM key')
      .option('--files <dir>', 'directory copied to the ext4 data disk (owners, modes, xattrs kept)')
      .option('--data-image <img>', 'existing ext4 image to use as the data disk (a copy is used)')
      .option('--fs-uuid <uuid>', 'fs UUID of the data disk built from --files')
      .option('--banks <list>', 'TPM PCR banks', 'sha1,sha256')
      .option('--firmware <fw>', 'seabios or ovmf', 'seabios')
      .option(
        '--module <name>',
        'extra kernel module to load (sha512_generic, sha3_generic, wp512, streebog_generic)',
        collect,
        [],
      )
      .option('--workload <file>', 'JSON list of accesses')
      .option('--out <dir>', 'artifact directory (must be empty; default: a new temp dir)')
      .option('--timeout <seconds>', 'boot timeout', '300')
      .option('--keep', 'keep the work directory (initramfs, images)')
      .option('--keep-data-disk', 'copy the data disk after the run to OUT/data.img')
      .option('--kernel-dir <dir>', 'kernel cache (default: the one setup-kernel.sh fills)')
      .option('--json', 'print a JSON summary')
      .addHelpText(
        'after',
        '\nExample:\n  imakit vm run --append "ima_policy=tcb ima_template=ima-ng" --files ./tree --workload w.json --out ./run1\n',
      )
      .action(async (f) => {
        await ctx.run(() => runCommand(f, ctx), { json: f.json === true });
      });
  },
};
