/**
 * Types of the real-kernel harness (real-kernel.md): what a boot is asked to do (`VmSpec`) and
 * what the kernel produced (`VmResult`). Inputs are plain data so that a spec can be written as
 * JSON (the CLI's `--workload`) and recorded in fixture manifests.
 */

import type { WorkloadAccess, WorkloadOp } from '../../kernel/workload.ts';

/** Firmware QEMU boots with (real-kernel.md §3.2). */
export type Firmware = 'seabios' | 'ovmf';

/** TPM PCR banks swtpm can allocate (libtpms). */
export type PcrBank = 'sha1' | 'sha256' | 'sha384' | 'sha512';

/**
 * One access of the workload, done in the guest on the data disk (mounted on `/data`).
 * `path` is relative to the data disk's root. `uid` (default 0) selects the guest user:
 * 0 = root, 1000 = `user` (gid 1000).
 *
 * - `exec`: execve the file (BPRM_CHECK). Denial shows as exit status 126.
 * - `read`: open for read and read it all (FILE_CHECK).
 * - `mmap-exec`: map the file executable by running it through the dynamic loader
 *   (`ld-linux-x86-64.so.2 FILE`), i.e. MMAP_CHECK; the file must be a dynamic ELF.
 * - `write-then-read`: append `content` (default a line) then read the file.
 * - `open-writers`: open for write, then read while the writer is open (violation, §7).
 * - `tomtou`: open for read, then open for write while the reader is open (violation, §7).
 * - `write`: append `content`.
 * - `create`: create the file with `content` (EVM: the kernel labels new files).
 * - `chmod` (`mode`, octal text), `chown` (`owner`, `uid:gid`), `setxattr` (`name`,
 *   `value` as setfattr text, e.g. `0x01ab` or `"text"`), `rmxattr` (`name`).
 */
export type AccessOp = WorkloadOp;

/** One access of the workload (the emulator replays the same type: src/kernel/workload.ts). */
export type Access = WorkloadAccess;

/** The EVM HMAC key: a ready blob under a known master key, or a plain key imakit wraps. */
export type EvmKeySpec =
  | {
      /** `user` master key (`user:kmk`) bytes */
      readonly kmk: Uint8Array;
      /** the encrypted-key payload after `load ` (`default user:kmk <len> <hex>`) */
      readonly blob: string;
    }
  | {
      /** the wanted EVM HMAC key (32 bytes typical); wrapped under `kmk` (random if absent) */
      readonly plain: Uint8Array;
      readonly kmk?: Uint8Array;
    }
  | {
      /**
       * The guest kernel creates a random key itself (`keyctl add encrypted evm-key "new default
       * user:kmk <len>" @u`); the host learns it only through the exported blob
       * (`VmResult.evmKeyExported`, decrypted with `kmk`).
       */
      readonly generateInGuest: true;
      readonly kmk: Uint8Array;
      /** key length in bytes, default 32 */
      readonly len?: number;
    };

/** What one boot is asked to do. */
export interface VmSpec {
  /** kernel parameters after the harness's `console=ttyS0,115200 panic=-1 oops=panic loglevel=7` */
  readonly append?: readonly string[];
  /** policy text written once to securityfs after the keys are loaded */
  readonly policy?: string;
  /** DER certificates for the `_ima` keyring (this kernel has no `.ima`, real-kernel.md §2.3) */
  readonly imaCerts?: readonly Uint8Array[];
  /**
   * DER certificates added to `_ima` right AFTER the policy load (KEY_CHECK measures them at once;
   * the ones in `imaCerts` are queued and measured at the load, real-kernel.md §7)
   */
  readonly lateImaCerts?: readonly Uint8Array[];
  /** DER certificates for the `_evm` keyring (portable signatures) */
  readonly evmCerts?: readonly Uint8Array[];
  /** RSA public keys (PEM) imported as v1 keys with `evmctl import --rsa` into `_ima` */
  readonly imaV1Keys?: readonly string[];
  /** load an EVM HMAC key and enable EVM (`echo 1 > /sys/kernel/security/evm`) */
  readonly evmKey?: EvmKeySpec;
  /** directory copied onto the ext4 data disk with `mkfs.ext4 -d` (owners, modes, xattrs kept) */
  readonly files?: string;
  /** an existing ext4 image to boot with instead of `files` (a copy is used) */
  readonly dataImage?: string;
  /** fs UUID of a data disk built from `files` (fixed so that `fsuuid=` rules match) */
  readonly fsUuid?: string;
  /** swtpm banks, default `['sha1', 'sha256']` */
  readonly banks?: readonly PcrBank[];
  /** default 'seabios' */
  readonly firmware?: Firmware;
  /** extra modules to insmod before anything else, by name (`sha512_generic`, `wp512`, …) */
  readonly modules?: readonly string[];
  /** accesses, in order */
  readonly workload?: readonly Access[];
  /** read inode generations with `lsattr -v` after everything else (it opens files), default true */
  readonly generations?: boolean;
  /** mount options of the data disk (busybox mount), default `rw`; ext4 keeps i_version anyway */
  readonly mountOptions?: string;
}

/** Result of one access. */
export interface AccessResult {
  readonly index: number;
  readonly op: AccessOp;
  readonly path: string;
  readonly uid: number;
  readonly label?: string;
  /** 'allowed' when the operation succeeded, 'denied' on EACCES / exit status 126 */
  readonly outcome: 'allowed' | 'denied' | 'error';
  /** exit status of the guest command */
  readonly status: number;
  /** the command's stderr (trimmed) */
  readonly stderr: string;
  /** integrity audit records logged during this access */
  readonly audit: readonly AuditRecord[];
}

/** A kernel audit record (`type=NNNN audit(…): key=value …`) from the kernel log. */
export interface AuditRecord {
  readonly type: number;
  /** key=value pairs, quotes removed */
  readonly fields: Readonly<Record<string, string>>;
  /** the raw line */
  readonly raw: string;
}

/** State of one data-disk file after the run. */
export interface FileState {
  /** path relative to the data disk root */
  readonly path: string;
  readonly ino: number;
  readonly uid: number;
  readonly gid: number;
  /** i_mode including the file type bits */
  readonly mode: number;
  readonly size: number;
  /** inode generation (lsattr -v), when collected */
  readonly generation?: number;
  /** every xattr, hex value */
  readonly xattrs: Readonly<Record<string, string>>;
}

/** Versions and timings of one boot. */
export interface VmRunInfo {
  readonly kernelPackage: string;
  readonly kernelSha256: string;
  readonly qemuVersion: string;
  readonly swtpmVersion: string;
  readonly firmware: Firmware;
  readonly banks: readonly PcrBank[];
  /** full kernel command line */
  readonly cmdline: string;
  readonly qemuArgs: readonly string[];
  readonly qemuExit: number | null;
  /** ms spent preparing images / initramfs */
  readonly prepareMs: number;
  /** ms from QEMU start to its exit */
  readonly bootMs: number;
  /** ms of the whole call */
  readonly totalMs: number;
}

/** What the kernel produced. */
export interface VmResult {
  /** directory holding every artifact (see artifacts.ts) */
  readonly outDir: string;
  readonly binaryList: Uint8Array;
  readonly asciiList: string;
  readonly measurementCount: number;
  readonly violations: number;
  /** TCG event log (`binary_bios_measurements`), empty if absent */
  readonly eventLog: Uint8Array;
  /** bank → 24 lowercase hex PCR values */
  readonly pcrs: Readonly<Record<string, readonly string[]>>;
  readonly accesses: readonly AccessResult[];
  readonly files: readonly FileState[];
  /** every audit record of the boot */
  readonly audit: readonly AuditRecord[];
  readonly dmesg: string;
  readonly console: string;
  /** null when no policy was written */
  readonly policyLoaded: boolean | null;
  /** `/sys/kernel/security/evm` after setup, if read */
  readonly evmState: string | null;
  /**
   * the loaded `evm-key` as the guest kernel exports it (`keyctl pipe`: `default user:kmk <len> <hex>`),
   * null without an EVM key or when the export failed
   */
  readonly evmKeyExported: string | null;
  /** `/sys/kernel/security/lsm` */
  readonly lsm: string;
  readonly procCmdline: string;
  /** path of the data disk after the run (kept only when `keep` or `keepDataDisk`) */
  readonly dataImage: string | null;
  readonly info: VmRunInfo;
}

/** Options of one call. */
export interface VmRunOptions {
  /** kernel cache directory (holding vmlinuz, config, modules/, VERSION) */
  readonly kernelDir: string;
  /** where artifacts are written; a fresh temporary directory when absent */
  readonly outDir?: string;
  /** whole-boot timeout, default 300 s (real-kernel.md §3.2) */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
  /** keep the work directory (images, initramfs, sockets) for debugging */
  readonly keep?: boolean;
  /** copy the data disk after the run into `outDir/data.img` */
  readonly keepDataDisk?: boolean;
  /** temp root, default os.tmpdir() */
  readonly tmpDir?: string;
}
