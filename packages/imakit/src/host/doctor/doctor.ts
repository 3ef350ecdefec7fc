/**
 * What imakit can use on this machine: the optional native addons (built at install time only when
 * a C toolchain was present, scripts/install-native.mjs), the external tools some commands and the
 * tests call, and the kernel facilities live attestation reads. Reports, never fails: a missing
 * piece is a line in the report, with the fallback imakit uses instead.
 *
 * The search path is an argument (the CLI passes `$PATH`): the library reads no environment.
 */
import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { hasIoctlAddon } from '../fs/inode.ts';
import { hasXattrSupport } from '../fs/xattr.ts';
import { hasNativeHash } from '../workers/native-hash.ts';
import { IMA_SECURITYFS_DIRS, findImaSecurityfs } from '../attest/securityfs.ts';
import { DEFAULT_TPM_SYSFS } from '../attest/tpm-sysfs.ts';

/** One native addon: loaded, or the fallback in use. */
export interface NativeAddonStatus {
  readonly name: 'imakit_hash' | 'imakit_ioctl' | 'fs-xattr';
  readonly loaded: boolean;
  /** what it speeds up, and what runs without it */
  readonly role: string;
  readonly fallback: string;
}

/** One external tool: the executable found on the search path, or null. */
export interface ToolStatus {
  readonly name: string;
  readonly package: string;
  readonly path: string | null;
  readonly usedFor: string;
}

/** One kernel facility: present or not, and where it was looked for. */
export interface KernelFacilityStatus {
  readonly name: string;
  readonly present: boolean;
  readonly path: string | null;
  readonly lookedAt: readonly string[];
}

/** The whole report of {@link diagnoseHost}. */
export interface DoctorReport {
  readonly native: readonly NativeAddonStatus[];
  readonly tools: readonly ToolStatus[];
  readonly kernel: readonly KernelFacilityStatus[];
}

/** Where {@link diagnoseHost} looks; every field has the real machine's default. */
export interface DoctorOptions {
  /** the executable search path, `:`-separated (the CLI passes `$PATH`); default: none searched */
  readonly searchPath?: string;
  readonly securityfsDirs?: readonly string[];
  readonly tpmDevices?: readonly string[];
  readonly tpmSysfs?: string;
}

const TOOLS: ReadonlyArray<Omit<ToolStatus, 'path'>> = [
  { name: 'evmctl', package: 'ima-evm-utils', usedFor: 'cross-checks; imakit evmctl replaces it' },
  { name: 'tpm2_pcrread', package: 'tpm2-tools', usedFor: 'reading PCRs through a TPM resource manager' },
  { name: 'swtpm', package: 'swtpm', usedFor: 'the software TPM of the QEMU harness' },
  { name: 'keyctl', package: 'keyutils', usedFor: 'loading keys into kernel keyrings (keys import)' },
  { name: 'qemu-system-x86_64', package: 'qemu-system-x86', usedFor: 'the real-kernel harness (imakit vm)' },
  { name: 'lsattr', package: 'e2fsprogs', usedFor: 'inode generations when the ioctl addon is absent' },
];

function findExecutable(name: string, searchPath: string): string | null {
  for (const dir of searchPath.split(delimiter)) {
    if (dir === '') continue;
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here: the next directory
    }
  }
  return null;
}

function facility(name: string, candidates: readonly string[], found?: string): KernelFacilityStatus {
  const path = found ?? candidates.find((p) => existsSync(p)) ?? null;
  return { name, present: path !== null, path, lookedAt: candidates };
}

/**
 * Report the native addons, external tools and kernel facilities available here.
 * @param opts where to look (defaults: the real machine's paths; no tool search without `searchPath`)
 * @returns a frozen report; nothing in it is an error
 * @example
 *   const r = diagnoseHost({ searchPath: '/usr/bin:/bin' });
 *   r.native.find((a) => a.name === 'imakit_hash')?.loaded;
 */
export function diagnoseHost(opts: DoctorOptions = {}): DoctorReport {
  const native: NativeAddonStatus[] = [
    {
      name: 'imakit_hash',
      loaded: hasNativeHash(),
      role: 'SHA-1/SHA-2 template hashing for list replay',
      fallback: 'TypeScript hashers over node:crypto (slower replay, same results)',
    },
    {
      name: 'imakit_ioctl',
      loaded: hasIoctlAddon(),
      role: 'FS_IOC_GETVERSION (inode generation for EVM HMACs)',
      fallback: 'lsattr -v (one process per file)',
    },
    {
      name: 'fs-xattr',
      loaded: hasXattrSupport(),
      role: 'reading and writing security.ima / security.evm (optional dependency, compiled on install)',
      fallback:
        'none: commands that touch xattrs fail with E_XATTR_UNAVAILABLE; list, policy and key work runs',
    },
  ];
  const searchPath = opts.searchPath ?? '';
  const tools = TOOLS.map((t) => ({ ...t, path: findExecutable(t.name, searchPath) }));
  const dirs = opts.securityfsDirs ?? IMA_SECURITYFS_DIRS;
  const ima = findImaSecurityfs(dirs);
  const tpmSysfs = opts.tpmSysfs ?? DEFAULT_TPM_SYSFS;
  const kernel = [
    facility(
      'IMA measurement lists (securityfs)',
      dirs.map((d) => join(d, 'binary_runtime_measurements')),
      ima === undefined ? undefined : join(ima, 'binary_runtime_measurements'),
    ),
    facility('TPM device', opts.tpmDevices ?? ['/dev/tpmrm0', '/dev/tpm0']),
    facility('TPM PCRs in sysfs', [join(tpmSysfs, 'pcr-sha256'), join(tpmSysfs, 'pcr-sha1')]),
  ];
  return Object.freeze({
    native: Object.freeze(native.map((a) => Object.freeze(a))),
    tools: Object.freeze(tools.map((t) => Object.freeze(t))),
    kernel: Object.freeze(kernel.map((k) => Object.freeze(k))),
  });
}
