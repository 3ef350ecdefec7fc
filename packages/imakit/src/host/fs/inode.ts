/**
 * Inode metadata of a real file, as EVM hashes it (formats.md §4.3 `h_misc`): inode number, uid,
 * gid, full mode from `lstat` (bigint, never following a symlink), and the inode generation through
 * the FS_IOC_GETVERSION ioctl.
 *
 * Node has no ioctl, so the generation comes from the project's tiny N-API addon
 * (`native/imakit_ioctl.c`, built by `npm ci` via binding.gyp). When the addon is not built, imakit
 * falls back to spawning `lsattr -vd` (e2fsprogs), which issues the same ioctl. Filesystems without
 * the ioctl (tmpfs, overlayfs, many FUSE filesystems) have no readable generation: the result is
 * `generation: null` and callers must supply one (evmctl's `--generation`).
 *
 * The ioctl needs an open file, so only regular files and directories are queried: opening a device
 * node would reach the driver (and its ioctl), a FIFO could block, a symlink cannot be opened.
 */
import { lstatSync, type BigIntStats } from 'node:fs';
import { createRequire } from 'node:module';
import { ImakitError, fromSystemError } from '../../errors.ts';
import type { InodeMeta } from '../../core/evm/evm-input.ts';
import { fstatFile, type OpenFile } from './open-file.ts';

interface IoctlAddon {
  getVersion(path: string): number;
  /** absent from addons built before it was added */
  getVersionFd?(fd: number): number;
}

/**
 * Lazily-initialised memo of the addon (null: not built, then lsattr is used), loaded on the first
 * generation read rather than at import: most commands that import this module (ima_verify, hashing)
 * never read a generation, and loading a native addon costs start-up time (issue 10 item 11).
 */
const addonMemo: { addon?: IoctlAddon | null } = {};

function ioctlAddon(): IoctlAddon | null {
  const addon = (addonMemo.addon ??= loadAddon());
  return addon;
}

function loadAddon(): IoctlAddon | null {
  const require = createRequire(import.meta.url);
  for (const rel of ['../../../build/Release/imakit_ioctl.node', '../../../build/Debug/imakit_ioctl.node']) {
    try {
      const m = require(rel) as Partial<IoctlAddon>;
      if (typeof m.getVersion === 'function') return m as IoctlAddon;
    } catch {
      // not built in this configuration: try the next, then fall back to lsattr
    }
  }
  return null;
}

/** True when the native FS_IOC_GETVERSION addon is loaded. */
export function hasIoctlAddon(): boolean {
  return ioctlAddon() !== null;
}

/** How the generation was obtained. */
export type GenerationSource = 'ioctl' | 'lsattr' | 'given';

/** Metadata of a real inode: the `h_misc` fields plus what callers need to decide. */
export interface HostInodeMeta extends Omit<InodeMeta, 'generation'> {
  readonly path: string;
  /** i_generation, or null when not requested or the filesystem has no FS_IOC_GETVERSION */
  readonly generation: number | null;
  readonly generationSource: GenerationSource | null;
  readonly dev: bigint;
  readonly rdev: bigint;
  readonly size: bigint;
  readonly nlink: bigint;
  readonly mtimeNs: bigint;
  readonly ctimeNs: bigint;
  readonly isRegular: boolean;
  readonly isDirectory: boolean;
  readonly isSymlink: boolean;
}

/** Options of {@link readInodeMeta}. */
export interface ReadInodeMetaOptions {
  /** true (default): read it; false: don't; a number: use this value (evmctl `--generation`) */
  generation?: boolean | number;
  /** how to read it: the addon with lsattr fallback (default), or force one */
  method?: 'auto' | 'ioctl' | 'lsattr';
}

/**
 * The inode generation of a regular file or directory via FS_IOC_GETVERSION.
 * @returns the generation (u32) and how it was read, or null when the filesystem has no such ioctl
 *   (ENOTTY / EOPNOTSUPP / EINVAL) or neither the addon nor lsattr is available
 * @throws ImakitError E_IO_READ when the path cannot be opened (ENOENT, ELOOP for a symlink, ...)
 */
export function readGeneration(
  path: string,
  method: 'auto' | 'ioctl' | 'lsattr' = 'auto',
): { generation: number; source: 'ioctl' | 'lsattr' } | null {
  const addon = method === 'lsattr' ? null : ioctlAddon();
  if (addon !== null) {
    try {
      return { generation: addon.getVersion(path), source: 'ioctl' };
    } catch (e) {
      const name = errnoName(e);
      if (name === 'ENOTTY' || name === 'EOPNOTSUPP' || name === 'ENOTSUP' || name === 'EINVAL') return null;
      const err = Object.assign(new Error(e instanceof Error ? e.message : String(e)), { code: name });
      throw fromSystemError(err, 'E_IO_READ', path);
    }
  }
  if (method === 'ioctl') return null;
  return readGenerationLsattr(path);
}

/** `lsattr -vd PATH` prints `<generation> <flags> <path>`; a failure means no generation. */
function readGenerationLsattr(path: string): { generation: number; source: 'lsattr' } | null {
  // loaded here, not imported: node:child_process pulls in net and dgram at start-up
  const { spawnSync } = process.getBuiltinModule('node:child_process');
  const r = spawnSync('lsattr', ['-vd', '--', path], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return null;
  const m = /^\s*(\d+)\s/.exec(r.stdout);
  if (!m) return null;
  const g = Number(m[1]);
  return Number.isInteger(g) && g >= 0 && g <= 0xffffffff ? { generation: g, source: 'lsattr' } : null;
}

/** The errno name (ENOTTY, ...) of an addon error; only failures need node:os, so it is loaded here. */
function errnoName(e: unknown): string | undefined {
  const num = (e as { errno?: unknown }).errno;
  if (typeof num !== 'number') return undefined;
  const { errno } = process.getBuiltinModule('node:os').constants;
  // the last name of a number, as the Map this replaced kept (EWOULDBLOCK after EAGAIN)
  return Object.entries(errno).findLast(([, n]) => n === num)?.[0];
}

/**
 * The generation of an open file: FS_IOC_GETVERSION on its descriptor when the addon has
 * `getVersionFd`; otherwise by path (addon or lsattr), accepted only if the path still names the
 * open file (same dev/ino before and after), so a swapped path cannot lend its generation.
 * @returns null when the filesystem has no generation or no method is available
 * @throws ImakitError E_IO_CHANGED (the path no longer names the open file), E_IO_READ
 */
export function readGenerationOfOpenFile(
  f: OpenFile,
): { generation: number; source: 'ioctl' | 'lsattr' } | null {
  const addon = ioctlAddon();
  if (addon?.getVersionFd !== undefined) {
    try {
      return { generation: addon.getVersionFd(f.fd), source: 'ioctl' };
    } catch (e) {
      const name = errnoName(e);
      if (name === 'ENOTTY' || name === 'EOPNOTSUPP' || name === 'ENOTSUP' || name === 'EINVAL') return null;
      const err = Object.assign(new Error(e instanceof Error ? e.message : String(e)), { code: name });
      throw fromSystemError(err, 'E_IO_READ', f.path);
    }
  }
  const same = (): boolean => {
    try {
      const st = lstatSync(f.path, { bigint: true });
      return st.ino === f.stat.ino && st.dev === f.stat.dev;
    } catch {
      return false;
    }
  };
  if (!same())
    throw new ImakitError('E_IO_CHANGED', 'the path no longer names the file being labelled', {
      path: f.path,
    });
  const g = readGeneration(f.path);
  if (!same())
    throw new ImakitError('E_IO_CHANGED', 'the path was replaced while its generation was read', {
      path: f.path,
    });
  return g;
}

/**
 * Metadata of an open regular file (fresh fstat; generation as {@link readGenerationOfOpenFile}).
 * @throws ImakitError E_IO_READ, E_IO_CHANGED
 */
export function readOpenInodeMeta(f: OpenFile, opts: { generation?: boolean } = {}): HostInodeMeta {
  const st = fstatFile(f);
  const g = (opts.generation ?? true) ? readGenerationOfOpenFile(f) : null;
  return Object.freeze({
    path: f.path,
    ino: st.ino,
    generation: g?.generation ?? null,
    generationSource: g?.source ?? null,
    uid: Number(st.uid),
    gid: Number(st.gid),
    mode: Number(st.mode),
    dev: st.dev,
    rdev: st.rdev,
    size: st.size,
    nlink: st.nlink,
    mtimeNs: st.mtimeNs,
    ctimeNs: st.ctimeNs,
    isRegular: st.isFile(),
    isDirectory: st.isDirectory(),
    isSymlink: false,
  });
}

/**
 * Metadata of `path` without following a final symlink (lstat, bigint inode numbers).
 * @throws ImakitError E_IO_READ when the path cannot be stat'ed or opened
 * @example readInodeMeta('/usr/bin/ls').generation
 */
export function readInodeMeta(path: string, opts: ReadInodeMetaOptions = {}): HostInodeMeta {
  if (typeof path !== 'string' || path.length === 0) throw new TypeError('path must be a non-empty string');
  let st: BigIntStats;
  try {
    st = lstatSync(path, { bigint: true });
  } catch (e) {
    throw fromSystemError(e, 'E_IO_READ', path);
  }
  const want = opts.generation ?? true;
  let generation: number | null = null;
  let generationSource: GenerationSource | null = null;
  if (typeof want === 'number') {
    if (!Number.isInteger(want) || want < 0 || want > 0xffffffff)
      throw new RangeError(`generation must be a u32, got ${want}`);
    generation = want;
    generationSource = 'given';
  } else if (want && (st.isFile() || st.isDirectory())) {
    const g = readGeneration(path, opts.method ?? 'auto');
    if (g) {
      generation = g.generation;
      generationSource = g.source;
    }
  }
  return Object.freeze({
    path,
    ino: st.ino,
    generation,
    generationSource,
    uid: Number(st.uid),
    gid: Number(st.gid),
    mode: Number(st.mode),
    dev: st.dev,
    rdev: st.rdev,
    size: st.size,
    nlink: st.nlink,
    mtimeNs: st.mtimeNs,
    ctimeNs: st.ctimeNs,
    isRegular: st.isFile(),
    isDirectory: st.isDirectory(),
    isSymlink: st.isSymbolicLink(),
  });
}

/**
 * The `h_misc` fields of a host inode, requiring a generation (pitfall 20: it is hashed).
 * @throws ImakitError E_INODE_GENERATION when none was read or given
 */
export function toInodeMeta(m: HostInodeMeta): InodeMeta {
  if (m.generation === null) throw new ImakitError('E_INODE_GENERATION', undefined, { path: m.path });
  return Object.freeze({ ino: m.ino, generation: m.generation, uid: m.uid, gid: m.gid, mode: m.mode });
}
