/**
 * The UUID of the filesystem holding a path, i.e. the kernel's `sb->s_uuid` that EVM appends to
 * HMAC and 0x03 input (formats.md §4.3; CONFIG_EVM_ATTR_FSUUID).
 *
 * Read the way blkid does, without spawning it: `stat.dev` → `/sys/dev/block/MAJ:MIN/uevent`
 * `DEVNAME` → `/dev/<name>` → the superblock (ext2/3/4, XFS, btrfs). Devices without a sysfs block
 * entry (btrfs subvolumes use anonymous device numbers) are found through `/proc/self/mountinfo`.
 * If the superblock is not one we parse, fall back to `blkid -s UUID -o value /dev/block/MAJ:MIN`
 * like evmctl. Filesystems without a block device (tmpfs, overlayfs, proc) → E_FS_UUID: the kernel
 * hashes their (usually all-zero) `s_uuid`, which userspace cannot read; pass the UUID explicitly.
 *
 * Reading a block device needs root (or the disk group).
 */
import { closeSync, lstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { ImakitError } from '../../errors.ts';
import { formatUuid, parseUuid, UUID_SIZE } from '../../core/bytes/uuid.ts';

/** Where a UUID came from. */
export interface FsUuidResult {
  readonly uuid: Uint8Array;
  /** dashed lowercase text */
  readonly text: string;
  /** `MAJ:MIN` of the filesystem */
  readonly devNumber: string;
  /** the block device read, when known */
  readonly device: string | null;
  /** filesystem type when the superblock was recognised (ext4 covers ext2/3/4) */
  readonly fsType: 'ext4' | 'xfs' | 'btrfs' | null;
  readonly source: 'superblock' | 'blkid';
}

/** Adapter defaults (style.md practice 11): override for tests or chroots. */
export interface FsUuidOptions {
  sysRoot?: string;
  procRoot?: string;
  devRoot?: string;
  /** fall back to spawning blkid (default true) */
  blkid?: boolean;
}

/** How far into a device the superblocks we parse reach (btrfs: 64 KiB + 4 KiB). */
const SUPERBLOCK_SPAN = 0x10000 + 0x1000;

/** Linux `dev_t` → major/minor (glibc `gnu_dev_major`/`gnu_dev_minor`). */
export function splitDev(dev: bigint): { major: number; minor: number } {
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & 0xfffff000n);
  const minor = (dev & 0xffn) | ((dev >> 12n) & 0xffffff00n);
  return { major: Number(major), minor: Number(minor) };
}

/**
 * The filesystem UUID from the first bytes of a device or image (at least 1 KiB; 68 KiB for btrfs).
 * Pure; returns null when no recognised superblock is present.
 *  - ext2/3/4: superblock at 1024, magic 0xEF53 (LE u16) at +0x38, `s_uuid` at +0x68
 *  - XFS: `XFSB` at 0, `sb_uuid` at 32
 *  - btrfs: superblock at 64 KiB, `_BHRfS_M` at +0x40, `fsid` at +0x20
 */
export function uuidFromSuperblock(
  head: Uint8Array,
): { uuid: Uint8Array; fsType: 'ext4' | 'xfs' | 'btrfs' } | null {
  const at = (o: number, n: number): Uint8Array | null =>
    o + n <= head.length ? head.subarray(o, o + n) : null;
  const ext = at(1024 + 0x38, 2);
  if (ext && ext[0] === 0x53 && ext[1] === 0xef) {
    const u = at(1024 + 0x68, UUID_SIZE);
    if (u) return { uuid: u.slice(), fsType: 'ext4' };
  }
  const xfs = at(0, 4);
  if (xfs && xfs[0] === 0x58 && xfs[1] === 0x46 && xfs[2] === 0x53 && xfs[3] === 0x42) {
    const u = at(32, UUID_SIZE);
    if (u) return { uuid: u.slice(), fsType: 'xfs' };
  }
  const bt = at(0x10000 + 0x40, 8);
  if (bt && Buffer.from(bt).toString('latin1') === '_BHRfS_M') {
    const u = at(0x10000 + 0x20, UUID_SIZE);
    if (u) return { uuid: u.slice(), fsType: 'btrfs' };
  }
  return null;
}

/**
 * Read the superblock UUID of a block device or filesystem image file.
 * @returns null when the superblock is not recognised
 * @throws ImakitError E_FS_UUID when the device cannot be read (E_PERMISSION without privileges)
 */
export function readDeviceUuid(
  device: string,
): { uuid: Uint8Array; fsType: 'ext4' | 'xfs' | 'btrfs' } | null {
  let fd: number;
  try {
    fd = openSync(device, 'r');
  } catch (e) {
    const errno = (e as NodeJS.ErrnoException).code;
    if (errno === 'EACCES' || errno === 'EPERM')
      throw new ImakitError('E_PERMISSION', `cannot open ${device} to read its superblock`, { path: device });
    throw new ImakitError('E_FS_UUID', `cannot open ${device}: ${errno ?? String(e)}`, { path: device });
  }
  try {
    const buf = Buffer.alloc(SUPERBLOCK_SPAN);
    let got = 0;
    while (got < buf.length) {
      const n = readSync(fd, buf, got, buf.length - got, got);
      if (n === 0) break;
      got += n;
    }
    return uuidFromSuperblock(buf.subarray(0, got));
  } catch (e) {
    throw new ImakitError('E_FS_UUID', `cannot read ${device}: ${(e as Error).message}`, { path: device });
  } finally {
    closeSync(fd);
  }
}

/** `/dev/<DEVNAME>` of a block device number, from sysfs; null when sysfs has no such block device. */
function deviceFromSysfs(devNumber: string, o: Required<FsUuidOptions>): string | null {
  try {
    const uevent = readFileSync(join(o.sysRoot, 'dev/block', devNumber, 'uevent'), 'utf8');
    const m = /^DEVNAME=(.+)$/m.exec(uevent);
    return m ? join(o.devRoot, m[1]!) : null;
  } catch {
    return null;
  }
}

/** The mount source and type for a device number, from mountinfo (`maj:min` is field 3). */
function mountOf(devNumber: string, o: Required<FsUuidOptions>): { source: string; fsType: string } | null {
  let text: string;
  try {
    text = readFileSync(join(o.procRoot, 'self/mountinfo'), 'utf8');
  } catch {
    return null;
  }
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f[2] !== devNumber) continue;
    const sep = f.indexOf('-', 6);
    if (sep < 0 || f.length < sep + 3) continue;
    return { fsType: f[sep + 1]!, source: f[sep + 2]!.replace(/\\040/g, ' ') };
  }
  return null;
}

function blkidUuid(devNumber: string, o: Required<FsUuidOptions>): Uint8Array | null {
  // loaded here, not imported: node:child_process pulls in net and dgram at start-up
  const { spawnSync } = process.getBuiltinModule('node:child_process');
  const r = spawnSync('blkid', ['-s', 'UUID', '-o', 'value', join(o.devRoot, 'block', devNumber)], {
    encoding: 'utf8',
  });
  if (r.error || r.status !== 0) return null;
  try {
    return parseUuid(r.stdout.trim());
  } catch {
    return null; // e.g. vfat "ABCD-1234": not a 16-byte UUID (the kernel's s_uuid is not this either)
  }
}

/**
 * The UUID of the filesystem holding `path` (the path itself is not followed if it is a symlink).
 * @throws ImakitError E_FS_UUID (no block device: tmpfs, overlayfs; or unreadable/unknown superblock
 *   and blkid failed), E_IO_READ when the path does not exist, E_PERMISSION
 * @example formatUuid(readFsUuid('/').uuid)
 */
export function readFsUuid(path: string, opts: FsUuidOptions = {}): FsUuidResult {
  let dev: bigint;
  try {
    dev = lstatSync(path, { bigint: true }).dev;
  } catch (e) {
    throw new ImakitError('E_IO_READ', (e as Error).message, { path }, { cause: e });
  }
  return readFsUuidOfDev(dev, path, opts);
}

/**
 * The UUID of the filesystem with device number `dev` (an open file's `fstat().dev`, so no path
 * is looked up again); `path` only names it in errors.
 * @throws ImakitError as {@link readFsUuid}
 */
export function readFsUuidOfDev(dev: bigint, path: string, opts: FsUuidOptions = {}): FsUuidResult {
  const o: Required<FsUuidOptions> = {
    sysRoot: opts.sysRoot ?? '/sys',
    procRoot: opts.procRoot ?? '/proc',
    devRoot: opts.devRoot ?? '/dev',
    blkid: opts.blkid ?? true,
  };
  const { major, minor } = splitDev(dev);
  const devNumber = `${major}:${minor}`;
  let device = deviceFromSysfs(devNumber, o);
  let mountType: string | null = null;
  if (device === null) {
    const m = mountOf(devNumber, o);
    mountType = m?.fsType ?? null;
    if (m && m.source.startsWith('/dev/')) device = m.source;
  }
  if (device === null)
    throw new ImakitError(
      'E_FS_UUID',
      `${path} is on a filesystem without a block device (${mountType ?? `dev ${devNumber}`}); ${UUID_HINT}`,
      { path },
    );
  let sb: ReturnType<typeof readDeviceUuid> = null;
  let readError: ImakitError | null = null;
  try {
    sb = readDeviceUuid(device);
  } catch (e) {
    if (!(e instanceof ImakitError)) throw e;
    readError = e; // e.g. EPERM in a container's device cgroup: blkid may still know (its cache)
  }
  // a recognised all-zero UUID is returned as is: it is what the kernel's s_uuid holds
  if (sb)
    return Object.freeze({
      uuid: sb.uuid,
      text: formatUuid(sb.uuid),
      devNumber,
      device,
      fsType: sb.fsType,
      source: 'superblock',
    });
  const viaBlkid = o.blkid && major !== 0 ? blkidUuid(devNumber, o) : null;
  if (viaBlkid)
    return Object.freeze({
      uuid: viaBlkid,
      text: formatUuid(viaBlkid),
      devNumber,
      device,
      fsType: null,
      source: 'blkid',
    });
  if (readError)
    throw new ImakitError(
      readError.code,
      `${readError.detail}: cannot read the UUID of the filesystem holding ${path}; ${UUID_HINT}`,
      { path: device },
      { cause: readError },
    );
  throw new ImakitError('E_FS_UUID', `no filesystem UUID found on ${device}; ${UUID_HINT}`, { path });
}

/**
 * What to do when the UUID cannot be read (issue 10 item 10): every command that hashes it takes
 * it explicitly, or hashes none (the kernel's EVM_UUID-less config, and evmctl's `-u -`).
 */
const UUID_HINT = 'give it explicitly (--uuid UUID, e.g. from `blkid`) or hash none (--no-uuid)';
