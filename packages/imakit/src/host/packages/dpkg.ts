/**
 * References from an installed Debian system: dpkg's database (`var/lib/dpkg/status`,
 * `info/<pkg>.list`, `info/<pkg>.md5sums`) and the files on disk under `root`. A file whose MD5 no
 * longer matches dpkg's record was changed after installation (an edited conffile, or tampering): it
 * is reported in `modified`, never turned into a reference. Diversions are not followed.
 */
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { installedPackages, parseDeb822, parseDpkgList, parseMd5sums } from '../../core/packages/dpkg-db.ts';
import type { Provenance } from '../../core/refs/reference-set.ts';
import { readBoundedText } from '../fs/bounded-read.ts';
import { hashStream, type PackageFileRecord, readRange, type ReaderOptions } from './file-record.ts';

export interface DpkgReaderOptions extends ReaderOptions {
  /** called for a file whose MD5 differs from dpkg's (it is not yielded) */
  readonly onModified?: (path: string, pkg: string) => void;
}

// bounded (issue 10 item 3): a status file that is a FIFO or a device is read only up to the cap
function text(p: string, optional: boolean): Promise<string | undefined> {
  try {
    return Promise.resolve(readBoundedText(p, 'dpkg-db'));
  } catch (e) {
    if (optional && ((e as Error).cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT')
      return Promise.resolve(undefined);
    throw e;
  }
}

/**
 * Every regular file of every installed package under `root` ('/' for this system).
 * @throws ImakitError E_IO_READ, E_CODEC_BAD_TEXT (naming the database file and line)
 */
export async function* readDpkgInstalled(
  root: string,
  opts: DpkgReaderOptions = {},
): AsyncGenerator<PackageFileRecord> {
  const algos = opts.algos ?? ['sha256'];
  const withMd5 = algos.includes('md5') ? algos : [...algos, 'md5'];
  const admin = join(root, 'var/lib/dpkg');
  const statusPath = join(admin, 'status');
  const status = parseDeb822((await text(statusPath, false))!, statusPath);
  for (const pkg of installedPackages(status)) {
    const provenance: Provenance = Object.freeze({
      kind: 'deb',
      name: pkg.name,
      version: pkg.version,
      arch: pkg.arch,
      source: statusPath,
    });
    const info = (ext: string) => join(admin, 'info', `${pkg.infoName}.${ext}`);
    const listText =
      (await text(info('list'), true)) ?? (await text(join(admin, 'info', `${pkg.name}.list`), true));
    if (listText === undefined) continue;
    const md5Text =
      (await text(info('md5sums'), true)) ?? (await text(join(admin, 'info', `${pkg.name}.md5sums`), true));
    const md5s = md5Text ? parseMd5sums(md5Text, info('md5sums')) : new Map<string, string>();
    for (const p of parseDpkgList(listText, info('list'))) {
      const onDisk = join(root, p);
      let st;
      try {
        st = await lstat(onDisk);
      } catch {
        continue; // listed but gone (removed by hand, or a path a diversion moved)
      }
      if (!st.isFile()) continue;
      const { digests, size } = await hashStream(readRange(onDisk), withMd5);
      const want = md5s.get(p);
      if (want !== undefined && want !== digests.md5) {
        opts.onModified?.(p, pkg.name);
        continue;
      }
      if (!algos.includes('md5')) delete digests.md5;
      yield Object.freeze({
        path: p,
        size,
        mode: st.mode & 0o7777,
        digests: Object.freeze(digests),
        ...(want ? { md5: want } : {}),
        provenance,
      });
    }
  }
}
