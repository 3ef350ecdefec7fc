/**
 * One boot of the real kernel (real-kernel.md): build the initramfs and disks, start a fresh
 * swtpm and QEMU, wait (bounded) for the guest to power off, unpack its output and turn it into a
 * typed `VmResult`. Everything started here is killed in `finally`; the work directory (images,
 * initramfs, sockets) is removed unless `keep`. Each call has its own directory and sockets, so
 * concurrent calls do not clash.
 */
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ImakitError } from '../../errors.ts';
import { createEvmKeyBlob } from '../../core/evm/evm-key-blob.ts';
import {
  extractOutDisk,
  parseAccessStatuses,
  parseFileStates,
  readBytes,
  readPcrs,
  readText,
} from './artifacts.ts';
import { auditByAccess, auditRecords, linesBetweenMarks } from './audit.ts';
import { buildDataImage, copyImage, createOutImage, DEFAULT_DATA_UUID } from './disk-image.ts';
import { guestScript } from './guest-script.ts';
import { buildInitramfs, moduleLoadOrder, type ExtraFile } from './initramfs.ts';
import { BASE_CMDLINE, qemuArgs, qemuVersion, runQemu } from './qemu.ts';
import { killGroup } from './process.ts';
import { startSwtpm, swtpmVersion, type Swtpm } from './swtpm.ts';
import type { AccessResult, PcrBank, VmResult, VmRunInfo, VmRunOptions, VmSpec } from './types.ts';

/** Default whole-boot timeout (real-kernel.md §3.2). */
export const DEFAULT_TIMEOUT_MS = 300_000;
const CONSOLE_TAIL_LINES = 40;

/** Last lines of the serial console, for error messages. */
export function consoleTail(text: string, lines = CONSOLE_TAIL_LINES): string {
  return text.split('\n').slice(-lines).join('\n');
}

/** How a console log says the guest died: null when it did not. */
export function detectCrash(consoleText: string): { code: 'E_VM_OOPS' | 'E_VM_BOOT'; what: string } | null {
  if (/Attempted to kill init|No working init found|Unable to mount root/.test(consoleText))
    return { code: 'E_VM_BOOT', what: 'the guest init failed' };
  const m = /(BUG: [^\n]*|Oops: [^\n]*|general protection fault[^\n]*|Kernel panic - not syncing[^\n]*)/.exec(
    consoleText,
  );
  return m?.[1] !== undefined ? { code: 'E_VM_OOPS', what: m[1].trim() } : null;
}

/** Kernel cache contents (scripts/setup-kernel.sh). */
export interface KernelCache {
  readonly dir: string;
  readonly vmlinuz: string;
  /** `<package> <version> <sha256 of vmlinuz>` */
  readonly version: string;
}

/** Check a kernel cache directory; E_VM_SETUP when incomplete. */
export function openKernelCache(dir: string): KernelCache {
  const vmlinuz = join(dir, 'vmlinuz');
  const versionFile = join(dir, 'VERSION');
  if (!existsSync(vmlinuz) || !existsSync(versionFile) || !existsSync(join(dir, 'modules')))
    throw new ImakitError(
      'E_VM_SETUP',
      `no cached kernel in ${dir}; run scripts/setup-kernel.sh (or imakit vm setup)`,
      {
        path: dir,
      },
    );
  return { dir, vmlinuz, version: readFileSync(versionFile, 'utf8').trim() };
}

/**
 * The kernel cache directory scripts/setup-kernel.sh fills:
 * `${IMAKIT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/imakit}/kernel/current`. The caller passes its
 * environment (library code does not read process.env).
 */
export function defaultKernelDir(env: Readonly<Record<string, string | undefined>>): string {
  const cache =
    env.IMAKIT_CACHE ?? join(env.XDG_CACHE_HOME ?? join(env.HOME ?? tmpdir(), '.cache'), 'imakit');
  return join(cache, 'kernel', 'current');
}

function extras(spec: VmSpec): { files: ExtraFile[]; evmKeyPlain: Uint8Array | null } {
  const files: ExtraFile[] = [];
  (spec.imaCerts ?? []).forEach((c, i) => files.push({ name: `ima-cert-${i}.der`, data: c }));
  (spec.lateImaCerts ?? []).forEach((c, i) => files.push({ name: `ima-late-cert-${i}.der`, data: c }));
  (spec.evmCerts ?? []).forEach((c, i) => files.push({ name: `evm-cert-${i}.der`, data: c }));
  (spec.imaV1Keys ?? []).forEach((k, i) => files.push({ name: `ima-v1-${i}.pem`, data: k }));
  if (spec.policy !== undefined) files.push({ name: 'policy', data: spec.policy });
  let evmKeyPlain: Uint8Array | null = null;
  if (spec.evmKey !== undefined) {
    if ('generateInGuest' in spec.evmKey) {
      const len = spec.evmKey.len ?? 32;
      if (!Number.isInteger(len) || len < 20 || len > 128)
        throw new ImakitError('E_USAGE', `EVM key length must be 20..128 bytes, got ${len}`);
      // the guest runs `keyctl add encrypted evm-key "new default user:kmk <len>"`
      files.push(
        { name: 'kmk.bin', data: spec.evmKey.kmk },
        { name: 'evm-key.new', data: `default user:kmk ${len}` },
      );
    } else if ('blob' in spec.evmKey) {
      files.push(
        { name: 'kmk.bin', data: spec.evmKey.kmk },
        { name: 'evm-key.blob', data: spec.evmKey.blob },
      );
    } else {
      // real-kernel.md §5.2: wrap a known key so the host can recompute the kernel's HMACs
      const kmk = spec.evmKey.kmk ?? new Uint8Array(randomBytes(32));
      const blob = createEvmKeyBlob({ masterKey: kmk, plain: spec.evmKey.plain });
      files.push({ name: 'kmk.bin', data: kmk }, { name: 'evm-key.blob', data: blob.payloadHex });
      evmKeyPlain = spec.evmKey.plain;
    }
  }
  return { files, evmKeyPlain };
}

/** Kernel command line for `spec`. */
export function kernelCmdline(spec: VmSpec): string {
  for (const a of spec.append ?? [])
    if (/[\n\0]/.test(a)) throw new ImakitError('E_USAGE', `invalid kernel parameter ${JSON.stringify(a)}`);
  return [BASE_CMDLINE, ...(spec.append ?? [])].join(' ');
}

/**
 * Boot the real kernel once with `spec` and return what it produced.
 * @throws ImakitError E_VM_SETUP (missing tools or kernel cache), E_VM_IMAGE (files cannot be
 *   placed on the disk), E_VM_TIMEOUT / E_VM_OOPS / E_VM_BOOT (with the console tail),
 *   E_VM_POLICY_REJECTED (with the kernel's messages; the artifacts are still written)
 */
export async function runVm(spec: VmSpec, opts: VmRunOptions): Promise<VmResult> {
  const t0 = performance.now();
  const kernel = openKernelCache(opts.kernelDir);
  if (spec.files !== undefined && spec.dataImage !== undefined)
    throw new ImakitError('E_USAGE', 'give either files or dataImage, not both');
  const banks: readonly PcrBank[] = spec.banks ?? ['sha1', 'sha256'];
  for (const b of banks)
    if (!['sha1', 'sha256', 'sha384', 'sha512'].includes(b))
      throw new ImakitError('E_USAGE', `unknown PCR bank ${String(b)} (sha1, sha256, sha384, sha512)`);
  const firmware = spec.firmware ?? 'seabios';
  if (firmware !== 'seabios' && firmware !== 'ovmf')
    throw new ImakitError('E_USAGE', `unknown firmware ${String(firmware)} (seabios, ovmf)`);
  const cmdline = kernelCmdline(spec);
  const modules = moduleLoadOrder(spec.modules ?? []);
  const { files: extraFiles, evmKeyPlain } = extras(spec);
  const hasData = spec.files !== undefined || spec.dataImage !== undefined;
  const init = guestScript(spec, {
    imaCertCount: spec.imaCerts?.length ?? 0,
    evmCertCount: spec.evmCerts?.length ?? 0,
    imaV1KeyCount: spec.imaV1Keys?.length ?? 0,
    hasEvmKey: spec.evmKey !== undefined,
    evmKeyMode: spec.evmKey !== undefined && 'generateInGuest' in spec.evmKey ? 'new' : 'load',
    lateImaCertCount: spec.lateImaCerts?.length ?? 0,
    hasPolicy: spec.policy !== undefined,
    hasData,
    modules,
  });

  if (opts.outDir !== undefined && existsSync(opts.outDir) && readdirSync(opts.outDir).length > 0)
    throw new ImakitError('E_USAGE', 'the output directory is not empty', { path: opts.outDir });
  const work = mkdtempSync(join(opts.tmpDir ?? tmpdir(), 'imakit-vm-'));
  const outExisted = opts.outDir !== undefined && existsSync(opts.outDir);
  const outDir = resolve(opts.outDir ?? mkdtempSync(join(opts.tmpDir ?? tmpdir(), 'imakit-vm-out-')));
  let swtpm: Swtpm | undefined;
  try {
    mkdirSync(outDir, { recursive: true });
    const initrd = join(work, 'initramfs.cpio');
    await buildInitramfs(
      { kernelDir: kernel.dir, init, extraModules: spec.modules ?? [], extra: extraFiles },
      join(work, 'initramfs'),
      initrd,
    );
    let dataImage: string | null = null;
    if (spec.files !== undefined) {
      dataImage = join(work, 'data.img');
      await buildDataImage(spec.files, dataImage, spec.fsUuid ?? DEFAULT_DATA_UUID);
    } else if (spec.dataImage !== undefined) {
      if (!existsSync(spec.dataImage))
        throw new ImakitError('E_VM_IMAGE', 'data image not found', { path: spec.dataImage });
      dataImage = join(work, 'data.img');
      await copyImage(spec.dataImage, dataImage);
    }
    const outImage = join(work, 'out.img');
    createOutImage(outImage);
    const consolePath = join(work, 'console.log');
    writeFileSync(consolePath, '');
    const prepareMs = performance.now() - t0;
    if (opts.signal?.aborted) throw new ImakitError('E_VM_BOOT', 'interrupted');

    swtpm = await startSwtpm(join(work, 'tpm'), banks);
    const args = qemuArgs({
      dir: work,
      kernel: kernel.vmlinuz,
      initrd,
      cmdline,
      tpmSocket: swtpm.socket,
      outImage,
      dataImage,
      firmware,
      console: consolePath,
    });
    const q = await runQemu(args, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS, opts.signal);
    killGroup(swtpm.child);
    const consoleText = readFileSync(consolePath, 'utf8');
    writeFileSync(join(outDir, 'console.log'), consoleText);
    if (q.aborted)
      throw new ImakitError('E_VM_BOOT', `interrupted\n--- console tail ---\n${consoleTail(consoleText)}`);
    if (q.timedOut)
      throw new ImakitError(
        'E_VM_TIMEOUT',
        `no power-off within ${Math.round((opts.timeoutMs ?? DEFAULT_TIMEOUT_MS) / 1000)} s\n--- console tail ---\n${consoleTail(consoleText)}`,
      );
    const done = await extractOutDisk(outImage, outDir);
    if (!done) {
      const crash = detectCrash(consoleText);
      if (crash !== null)
        throw new ImakitError(crash.code, `${crash.what}\n--- console tail ---\n${consoleTail(consoleText)}`);
      throw new ImakitError(
        'E_VM_BOOT',
        `the guest produced no output (qemu exit ${q.exit}${q.stderr ? `: ${q.stderr.trim()}` : ''})\n--- console tail ---\n${consoleTail(consoleText)}`,
      );
    }

    const dmesg = readText(outDir, 'dmesg.txt');
    const statuses = parseAccessStatuses(readText(outDir, 'accesses.txt'));
    const workload = spec.workload ?? [];
    const perAccess = auditByAccess(dmesg, workload.length);
    const accesses: AccessResult[] = workload.map((a, index) => {
      const status = statuses.get(index) ?? -1;
      const stderr = readText(outDir, `access-${index}.err`).trim();
      const denied =
        /Permission denied|failed to map segment/.test(stderr) || (a.op === 'exec' && status === 126);
      return Object.freeze({
        index,
        op: a.op,
        path: a.path,
        uid: a.uid ?? 0,
        ...(a.label !== undefined ? { label: a.label } : {}),
        outcome: status === 0 ? 'allowed' : denied ? 'denied' : 'error',
        status,
        stderr,
        audit: Object.freeze(perAccess[index] ?? []),
      });
    });
    const policyStatus = readText(outDir, 'policy-status').trim();
    const policyLoaded = spec.policy === undefined ? null : policyStatus === 'loaded';
    let keptImage: string | null = null;
    if (dataImage !== null && (opts.keepDataDisk === true || opts.keep === true)) {
      keptImage = join(outDir, 'data.img');
      await copyImage(dataImage, keptImage);
    }
    if (spec.policy !== undefined) writeFileSync(join(outDir, 'policy.txt'), spec.policy);
    const info: VmRunInfo = Object.freeze({
      kernelPackage: kernel.version.split(' ').slice(0, 2).join(' '),
      kernelSha256: kernel.version.split(' ')[2] ?? '',
      qemuVersion: await qemuVersion(),
      swtpmVersion: await swtpmVersion(),
      firmware,
      banks,
      cmdline,
      qemuArgs: args,
      qemuExit: q.exit,
      prepareMs: Math.round(prepareMs),
      bootMs: Math.round(q.ms),
      totalMs: Math.round(performance.now() - t0),
    });
    const result: VmResult = Object.freeze({
      outDir,
      binaryList: readBytes(outDir, 'binary_runtime_measurements'),
      asciiList: readText(outDir, 'ascii_runtime_measurements'),
      measurementCount: Number(readText(outDir, 'runtime_measurements_count').trim() || 'NaN'),
      violations: Number(readText(outDir, 'violations').trim() || 'NaN'),
      eventLog: readBytes(outDir, 'binary_bios_measurements'),
      pcrs: readPcrs(outDir, ['sha1', 'sha256', 'sha384', 'sha512', 'sm3_256']),
      accesses,
      files: parseFileStates(
        readText(outDir, 'stat.txt'),
        readText(outDir, 'xattrs.txt'),
        readText(outDir, 'lsattr.txt'),
      ),
      audit: auditRecords(dmesg),
      dmesg,
      console: consoleText,
      policyLoaded,
      evmState: existsSync(join(outDir, 'evm-state')) ? readText(outDir, 'evm-state').trim() : null,
      evmKeyExported: existsSync(join(outDir, 'evm-key.exported'))
        ? readText(outDir, 'evm-key.exported').trim() || null
        : null,
      lsm: readText(outDir, 'lsm.txt').trim(),
      procCmdline: readText(outDir, 'cmdline.txt').trim(),
      dataImage: keptImage,
      info,
    });
    writeFileSync(join(outDir, 'run.json'), JSON.stringify(info, null, 2) + '\n');
    writeFileSync(
      join(outDir, 'result.json'),
      JSON.stringify(
        {
          policyLoaded,
          measurementCount: result.measurementCount,
          violations: result.violations,
          evmState: result.evmState,
          lsm: result.lsm,
          accesses: accesses.map((a) => ({ ...a, audit: a.audit.map((r) => r.fields) })),
          files: result.files,
          ...(evmKeyPlain !== null ? { evmKeyHex: Buffer.from(evmKeyPlain).toString('hex') } : {}),
        },
        null,
        2,
      ) + '\n',
    );
    if (policyLoaded === false) {
      const msgs = linesBetweenMarks(dmesg, 'policy-begin', 'policy-end').filter((l) =>
        /ima|audit|policy/i.test(l),
      );
      throw new ImakitError(
        'E_VM_POLICY_REJECTED',
        `the kernel rejected the policy: ${[readText(outDir, 'policy.err').trim(), ...msgs].filter(Boolean).join('\n')}`,
      );
    }
    return result;
  } finally {
    killGroup(swtpm?.child);
    // a run that failed before producing anything (success always writes run.json) (a bad --files tree, an unreadable image)
    // leaves no empty output directory behind; one with a console log keeps it for debugging
    if (!outExisted && existsSync(outDir) && readdirSync(outDir).length === 0)
      rmSync(outDir, { recursive: true, force: true });
    // `keep`: the work directory (initramfs, images, swtpm state) stays for debugging
    if (opts.keep === true) writeFileSync(join(outDir, 'work-dir.txt'), work + '\n');
    else rmSync(work, { recursive: true, force: true });
  }
}
