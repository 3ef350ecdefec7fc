/**
 * Host-side disk images (real-kernel.md §3.3, §4.3): the ext4 DATA disk built from a directory
 * with `mkfs.ext4 -d` (files, owners, modes and security.* xattrs copied; fixed fs UUID so that
 * `fsuuid=` rules match), the raw OUT disk the guest writes its tar stream to, and offline edits
 * with `debugfs` (EVM tampering scenarios).
 */
import { copyFileSync, lstatSync, readdirSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ImakitError } from '../../errors.ts';
import { mustRun, runTool } from './process.ts';

/** Default fs UUID of data disks (any fixed value works; policies match it with `fsuuid=`). */
export const DEFAULT_DATA_UUID = '8f1b3c2a-6d4e-4f10-9a7b-2c5d0e1f3a4b';
/** Size of the sparse OUT disk (real-kernel.md §3.3). */
export const OUT_DISK_BYTES = 256 * 1024 * 1024;
const MIN_DATA_BYTES = 24 * 1024 * 1024;

/** Walk `dir`, checking what ext4 cannot hold, and return the bytes the files need. */
function checkTree(dir: string, rel = ''): number {
  let bytes = 0;
  for (const name of readdirSync(dir)) {
    const relPath = rel === '' ? name : `${rel}/${name}`;
    if (Buffer.byteLength(name) > 255)
      throw new ImakitError('E_VM_IMAGE', 'a file name longer than 255 bytes cannot be stored in ext4', {
        path: relPath,
      });
    const p = join(dir, name);
    const st = lstatSync(p);
    if (st.isDirectory()) bytes += 4096 + checkTree(p, relPath);
    else if (st.isFile() || st.isSymbolicLink()) bytes += Math.ceil(st.size / 4096) * 4096 + 4096;
    else
      throw new ImakitError(
        'E_VM_IMAGE',
        'only regular files, directories and symlinks can be placed on the data disk',
        { path: relPath },
      );
  }
  return bytes;
}

/** Build an ext4 image at `img` holding the tree `srcDir`. */
export async function buildDataImage(
  srcDir: string,
  img: string,
  uuid: string = DEFAULT_DATA_UUID,
): Promise<void> {
  let st;
  try {
    st = statSync(srcDir);
  } catch (e) {
    throw new ImakitError('E_VM_IMAGE', `cannot read the files directory: ${(e as Error).message}`, {
      path: srcDir,
    });
  }
  if (!st.isDirectory())
    throw new ImakitError('E_VM_IMAGE', 'the files input must be a directory', { path: srcDir });
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(uuid))
    throw new ImakitError('E_USAGE', `invalid fs UUID ${uuid}`);
  const need = checkTree(srcDir);
  const size = Math.max(MIN_DATA_BYTES, Math.ceil((need * 1.5 + 8 * 1024 * 1024) / 1048576) * 1048576);
  writeFileSync(img, '');
  truncateSync(img, size);
  // -I 256: room for in-inode xattrs; root_owner: the mount point is root's (§4.3)
  await mustRun('E_VM_IMAGE', '/sbin/mkfs.ext4', [
    '-q',
    '-F',
    '-b',
    '4096',
    '-I',
    '256',
    '-U',
    uuid,
    '-E',
    'root_owner=0:0',
    '-L',
    'imakit-data',
    '-d',
    srcDir,
    img,
  ]);
}

/** Copy an existing image (the guest always works on a copy; the input stays pristine). */
export async function copyImage(src: string, dst: string): Promise<void> {
  try {
    await mustRun('E_VM_IMAGE', 'cp', ['--sparse=always', src, dst]);
  } catch {
    copyFileSync(src, dst);
  }
}

/** Create the sparse raw OUT disk. */
export function createOutImage(img: string, bytes: number = OUT_DISK_BYTES): void {
  writeFileSync(img, '');
  truncateSync(img, bytes);
}

/**
 * Run debugfs requests on an unmounted image, writable (e.g. `sif /f uid 1001`,
 * `set_inode_field /f generation 7`, `ea_rm /f security.evm`, `ea_set -f VALUEFILE /f security.ima`).
 * debugfs exits 0 even when a request fails, so its stderr is checked for errors.
 */
export async function debugfs(img: string, requests: readonly string[]): Promise<string> {
  const r = await runTool('/sbin/debugfs', ['-w', '-f', '-', img], { input: requests.join('\n') + '\n' });
  const errLines = r.stderr.split('\n').filter((l) => l.trim() !== '' && !/^debugfs \d/.test(l));
  if (r.status !== 0 || errLines.length > 0)
    throw new ImakitError('E_VM_IMAGE', `debugfs failed: ${errLines.join('; ') || r.status}`, { path: img });
  return r.stdout;
}
