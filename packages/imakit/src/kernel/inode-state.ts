/**
 * The emulator's view of inodes, filesystems and the per-inode integrity cache (`struct
 * integrity_iint_cache`, security/integrity/integrity.h). Mutable by design: the emulator is a state
 * machine, but every piece of state lives in one `EmulatorState` object, never at module level.
 */

/** iint flag bits (integrity.h). */
export const IINT = Object.freeze({
  MEASURE: 0x1,
  MEASURED: 0x2,
  APPRAISE: 0x4,
  APPRAISED: 0x8,
  COLLECTED: 0x20,
  AUDIT: 0x40,
  AUDITED: 0x80,
  HASH: 0x100,
  HASHED: 0x200,
  FILE_APPRAISE: 0x1000,
  FILE_APPRAISED: 0x2000,
  MMAP_APPRAISE: 0x4000,
  MMAP_APPRAISED: 0x8000,
  BPRM_APPRAISE: 0x10000,
  BPRM_APPRAISED: 0x20000,
  READ_APPRAISE: 0x40000,
  READ_APPRAISED: 0x80000,
  CREDS_APPRAISE: 0x100000,
  CREDS_APPRAISED: 0x200000,
  NEW_FILE: 0x04000000,
});
/** IMA_APPRAISED_SUBMASK */
export const APPRAISED_SUBMASK = 0x2000 | 0x8000 | 0x20000 | 0x80000 | 0x200000;
/** IMA_DONE_MASK */
export const DONE_MASK =
  IINT.MEASURED | IINT.APPRAISED | IINT.AUDITED | IINT.HASHED | IINT.COLLECTED | APPRAISED_SUBMASK;

/** `enum integrity_status` with the names EVM audits use. */
export type IntegrityStatus =
  'pass' | 'pass_immutable' | 'fail' | 'fail_immutable' | 'no_label' | 'no_xattrs' | 'unknown';

/** A mounted filesystem. */
export interface FsInfo {
  /** s_type->name, e.g. `ext4` (fsname=) */
  readonly name: string;
  /** s_magic (fsmagic=) */
  readonly magic: number;
  /** s_uuid, lowercase dashed, null = all zero */
  readonly uuid: string | null;
  /** s_id as audit prints it (`dev="vdb"`) */
  readonly dev: string;
  /** where it is mounted (`/data`): recorded names are mountpoint + path */
  readonly mountpoint: string;
  /** IOP_XATTR: the filesystem stores xattrs */
  readonly xattrs: boolean;
  /** SB_I_IMA_UNVERIFIABLE_SIGNATURE (FUSE and the like) */
  readonly unverifiableSignatures: boolean;
  /** SB_I_UNTRUSTED_MOUNTER */
  readonly untrustedMounter: boolean;
}

/** Per-hook cached appraisal status (ima_file_status, ima_mmap_status, ...). */
export interface HookStatus {
  file: IntegrityStatus;
  mmap: IntegrityStatus;
  bprm: IntegrityStatus;
  read: IntegrityStatus;
  creds: IntegrityStatus;
}

/** `struct integrity_iint_cache` (the parts IMA/EVM decisions depend on). */
export interface Iint {
  flags: number;
  /** atomic_flags */
  mustMeasure: boolean;
  digsig: boolean;
  changeXattr: boolean;
  changeAttr: boolean;
  updateXattr: boolean;
  /** bit per PCR already measured into */
  measuredPcrs: bigint;
  /** collected file hash */
  imaHash: { algo: string; digest: Uint8Array } | null;
  /** i_version when the hash was collected */
  version: number;
  status: HookStatus;
  evmStatus: IntegrityStatus;
}

/** An emulated inode. */
export interface Inode {
  /** path relative to the filesystem root */
  readonly path: string;
  readonly fs: FsInfo;
  ino: number;
  generation: number;
  uid: number;
  gid: number;
  /** i_mode incl. S_IFREG */
  mode: number;
  /** contents, when known; otherwise digests must hold what hashing needs */
  content: Uint8Array | null;
  /** precomputed digests by algorithm name (preflight hashes on the host) */
  digests: Map<string, Uint8Array>;
  size: number;
  xattrs: Map<string, Uint8Array>;
  label?: Readonly<Partial<Record<'user' | 'role' | 'type', string>>>;
  /** i_version */
  version: number;
  /** i_readcount / i_writecount */
  readers: number;
  writers: number;
  iint: Iint | null;
  /** the file was created by the emulated workload (FMODE_CREATED seen) */
  created: boolean;
  /** what exec does with it when the content is unknown: `#!` script or ELF binary */
  exe?: 'script' | 'elf';
  /** digests not given are not needed for the decision (preflight): collect yields zeros */
  unknownDigests?: boolean;
}

/** A new iint. */
export function newIint(): Iint {
  return {
    flags: 0,
    mustMeasure: false,
    digsig: false,
    changeXattr: false,
    changeAttr: false,
    updateXattr: false,
    measuredPcrs: 0n,
    imaHash: null,
    version: 0,
    status: { file: 'unknown', mmap: 'unknown', bprm: 'unknown', read: 'unknown', creds: 'unknown' },
    evmStatus: 'unknown',
  };
}

/** Absolute name the kernel records (d_absolute_path). */
export function absoluteName(inode: Inode): string {
  const mp = inode.fs.mountpoint.replace(/\/+$/, '');
  return `${mp}/${inode.path}`.replace(/^\/\//, '/');
}
