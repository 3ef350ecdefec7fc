/**
 * The emulator's vocabulary (src/kernel/emulator.ts): the accessing task, boot options, hook
 * outcomes, open files and file specifications, plus the MAY_* masks and errno values the hooks use.
 */
import type { Func, MatchResult } from '../core/policy/index.ts';
import type { KernelProfile } from './profiles.ts';
import type { EmuAuditRecord } from './audit.ts';
import type { FsInfo, Inode } from './inode-state.ts';

/** -EACCES */
export const EACCES = -13;
/** include/linux/fs.h MAY_* */
export const MAY_EXEC = 1;
export const MAY_WRITE = 2;
export const MAY_READ = 4;
export const MAY_APPEND = 8;

/** The process doing an access. */
export interface Task {
  readonly uid: number;
  readonly euid?: number;
  readonly gid?: number;
  readonly egid?: number;
  readonly comm?: string;
  readonly pid?: number;
  /** LSM subject label parts */
  readonly label?: Readonly<Partial<Record<'user' | 'role' | 'type', string>>>;
}

/** Options of one emulated boot. */
export interface EmulatorOptions {
  readonly profile: KernelProfile;
  /** kernel command line (the IMA/EVM parameters matter) */
  readonly cmdline?: string | readonly string[];
  /** TPM PCR banks, default sha1 + sha256; [] = no TPM */
  readonly banks?: readonly string[];
  /**
   * the TPM-dependent boot_aggregate: its algorithm (the chosen bank) and digest; default: computed
   * from `initialPcrs` like the kernel (zeros without a TPM or without values for the chosen bank)
   */
  readonly bootAggregate?: { readonly algo: string; readonly digest: Uint8Array } | null;
  /** PCR values before IMA (firmware PCRs 0-9), by bank */
  readonly initialPcrs?: ReadonlyMap<string, readonly Uint8Array[]>;
  /** hash modules insmod'ed after IMA init (e.g. sha512_generic) */
  readonly modules?: readonly string[];
  /** the platform reports secure boot */
  readonly secureBoot?: boolean;
  /** UTS release for the kernel_version critical-data event */
  readonly kernelRelease?: string;
  /** certificates in .builtin_trusted_keys (measured by KEY_CHECK rules once a policy loads) */
  readonly builtinTrustedKeys?: readonly Uint8Array[];
  /** build measurement-list entries (false: decisions only, for fast preflight) */
  readonly recordMeasurements?: boolean;
  /**
   * Where file digests come from when a file has no content (e.g. digests recorded by a real kernel
   * for each version of a file): called with the inode (its `version` counts writes) and algorithm.
   */
  readonly digestSource?: (inode: Inode, algo: string) => Uint8Array | undefined;
  /** i_generation of files the workload creates (the kernel picks a random one; default: derived from the path) */
  readonly newInodeGeneration?: (path: string) => number;
}

/** What one hook call decided (process_measurement). */
export interface HookOutcome {
  readonly func: Func;
  readonly mask: number;
  /** 0 or -EACCES */
  readonly rc: number;
  /** audit records it produced */
  readonly audit: readonly EmuAuditRecord[];
  /** index of the policy rule that decided each action type, -1 if none */
  readonly decidedBy: MatchResult['decidedBy'];
}

/** An open file. */
export interface OpenFile {
  readonly fd: number;
  readonly inode: Inode;
  readonly read: boolean;
  readonly write: boolean;
  readonly created: boolean;
  readonly task: Task;
}

/** Result of an open. */
export type OpenResult =
  | { readonly ok: true; readonly file: OpenFile; readonly hooks: HookOutcome[] }
  | { readonly ok: false; readonly errno: number; readonly hooks: HookOutcome[] };

/** A file to put on an emulated filesystem. */
export interface FileSpec {
  readonly path: string;
  readonly fs?: FsInfo;
  readonly content?: Uint8Array;
  /** digests by algorithm name when the content is not given (preflight hashes on the host) */
  readonly digests?: ReadonlyMap<string, Uint8Array>;
  readonly size?: number;
  readonly uid?: number;
  readonly gid?: number;
  readonly mode?: number;
  readonly ino?: number;
  readonly generation?: number;
  readonly xattrs?: ReadonlyMap<string, Uint8Array>;
  readonly label?: Readonly<Partial<Record<'user' | 'role' | 'type', string>>>;
  /** exec behaviour when `content` is not given: a `#!` script (re-read by its interpreter) or an ELF */
  readonly exe?: 'script' | 'elf';
  /**
   * Decisions only: a digest that is neither given nor computable from content is not needed for
   * the decision (no hash xattr to compare), so collecting it yields zeros instead of failing.
   */
  readonly unknownDigests?: boolean;
}

/** The default data filesystem: ext4 on the harness's DATA disk. */
export function ext4Fs(uuid: string | null = null, dev = 'vdb', mountpoint = '/data'): FsInfo {
  return Object.freeze({
    name: 'ext4',
    magic: 0xef53,
    uuid,
    dev,
    mountpoint,
    xattrs: true,
    unverifiableSignatures: false,
    untrustedMounter: false,
  });
}
