/**
 * References from `.deb` files and apt archive directories (deb(5)): the ar members are read in
 * place, `control.tar.*` gives the package's identity and `md5sums`, and `data.tar.*` is streamed
 * through the decompressor and hashed member by member. dpkg only records MD5, so every file's MD5
 * is checked against `md5sums` on the way: a package whose content disagrees with its own database
 * is refused (E_PKG_DIGEST_MISMATCH naming the member), never turned into references.
 */
import { open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { AR_HEADER_SIZE, AR_MAGIC, decodeArHeader, isArMagic } from '../../core/packages/ar.ts';
import { field, parseDeb822, parseMd5sums } from '../../core/packages/dpkg-db.ts';
import { walkTar } from '../../core/packages/tar-walk.ts';
import type { Provenance } from '../../core/refs/reference-set.ts';
import { fromSystemError, ImakitError } from '../../errors.ts';
import { ByteBudget, compressionOfName, decompress } from './decompress.ts';
import { hashStream, type PackageFileRecord, readRange, type ReaderOptions } from './file-record.ts';

/** control.tar members read into memory: `control` and `md5sums` of a big package are well under this. */
export const MAX_CONTROL_MEMBER_BYTES = 64 * 1024 * 1024;

export interface DebReaderOptions extends ReaderOptions {
  readonly budget?: ByteBudget;
}

interface ArEntry {
  name: string;
  start: number;
  size: number;
}

async function arMembers(path: string): Promise<ArEntry[]> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    throw fromSystemError(e, 'E_IO_READ', path);
  }
  try {
    const size = (await fh.stat()).size;
    const head = Buffer.alloc(AR_HEADER_SIZE);
    await fh.read(head, 0, AR_MAGIC.length, 0);
    if (!isArMagic(head))
      throw new ImakitError('E_PKG_FORMAT', 'not a .deb (no ar magic)', { path, offset: 0 });
    const out: ArEntry[] = [];
    let off = AR_MAGIC.length;
    while (off < size) {
      const { bytesRead } = await fh.read(head, 0, AR_HEADER_SIZE, off);
      if (bytesRead !== AR_HEADER_SIZE)
        throw new ImakitError('E_CODEC_TRUNCATED', `ar header cut off (${bytesRead} bytes)`, {
          path,
          offset: off,
        });
      const h = (() => {
        try {
          return decodeArHeader(head, off);
        } catch (e) {
          throw new ImakitError((e as ImakitError).code, (e as ImakitError).detail, {
            ...(e as ImakitError).context,
            path,
          });
        }
      })();
      const start = off + AR_HEADER_SIZE;
      if (h.size > size - start)
        throw new ImakitError(
          'E_CODEC_TRUNCATED',
          `declares ${h.size} bytes, ${size - start} remain in the file`,
          { path, member: h.name, offset: start },
        );
      out.push({ name: h.name, start, size: h.size });
      off = start + h.size + (h.size & 1);
    }
    return out;
  } finally {
    await fh.close();
  }
}

async function collect(
  src: AsyncIterable<Uint8Array>,
  cap: number,
  path: string,
  member: string,
): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let n = 0;
  for await (const c of src) {
    n += c.length;
    if (n > cap) throw new ImakitError('E_PKG_TOO_LARGE', `larger than ${cap} bytes`, { path, member });
    parts.push(Uint8Array.from(c));
  }
  return Uint8Array.from(Buffer.concat(parts));
}

export interface DebControl {
  readonly name: string;
  readonly version: string;
  readonly arch: string;
  readonly md5sums: ReadonlyMap<string, string>;
}

/** Identity and md5sums from `control.tar.*`. */
async function readControl(path: string, m: ArEntry, budget: ByteBudget): Promise<DebControl> {
  const src = decompress(
    compressionOfName(m.name, path),
    readRange(path, m.start, m.size),
    budget,
    path,
    m.name,
  );
  let control: Uint8Array | undefined;
  let md5: Uint8Array | undefined;
  for await (const { entry, body } of walkTar(src, { member: m.name })) {
    if (entry.type !== 'file') continue;
    if (entry.path === '/control')
      control = await collect(body, MAX_CONTROL_MEMBER_BYTES, path, `${m.name}:control`);
    else if (entry.path === '/md5sums')
      md5 = await collect(body, MAX_CONTROL_MEMBER_BYTES, path, `${m.name}:md5sums`);
  }
  if (!control)
    throw new ImakitError('E_PKG_FORMAT', 'control.tar has no control file', { path, member: m.name });
  const paras = parseDeb822(Buffer.from(control).toString('utf8'), `${path}:control`);
  const p = paras[0];
  const name = p && field(p, 'Package');
  if (!p || !name)
    throw new ImakitError('E_PKG_FORMAT', 'control file has no Package field', {
      path,
      member: `${m.name}:control`,
    });
  return Object.freeze({
    name,
    version: field(p, 'Version') ?? '',
    arch: field(p, 'Architecture') ?? '',
    md5sums: md5 ? parseMd5sums(Buffer.from(md5).toString('utf8'), `${path}:md5sums`) : new Map(),
  });
}

/**
 * Every regular file of one `.deb`, hashed with `opts.algos` (default sha256), each checked against
 * the package's md5sums. Hard links get their target's digests; `SCHILY.xattr.security.ima` pax
 * records become `imaSignature`.
 * @throws ImakitError E_PKG_FORMAT, E_PKG_COMPRESSION, E_PKG_TOO_LARGE, E_PKG_DIGEST_MISMATCH, E_IO_READ
 *   (each naming the file and the member)
 */
export async function* readDeb(path: string, opts: DebReaderOptions = {}): AsyncGenerator<PackageFileRecord> {
  const algos = opts.algos ?? ['sha256'];
  const budget = opts.budget ?? new ByteBudget();
  const members = await arMembers(path);
  const db = members[0];
  if (!db || db.name !== 'debian-binary')
    throw new ImakitError('E_PKG_FORMAT', 'first member is not debian-binary', { path, member: db?.name });
  const ver = Buffer.from(await collect(readRange(path, db.start, db.size), 64, path, db.name)).toString(
    'latin1',
  );
  if (!/^2\.[0-9]+\n/.test(ver))
    throw new ImakitError('E_PKG_FORMAT', `unsupported .deb format '${ver.trim()}'`, {
      path,
      member: db.name,
    });
  const cm = members[1];
  const dm = members[2];
  if (!cm?.name.startsWith('control.tar'))
    throw new ImakitError('E_PKG_FORMAT', 'second member is not control.tar', { path, member: cm?.name });
  if (!dm?.name.startsWith('data.tar'))
    throw new ImakitError('E_PKG_FORMAT', 'third member is not data.tar', { path, member: dm?.name });
  const ctl = await readControl(path, cm, budget);
  const provenance: Provenance = Object.freeze({
    kind: 'deb',
    name: ctl.name,
    version: ctl.version,
    arch: ctl.arch,
    source: path,
  });
  const withMd5 = algos.includes('md5') ? algos : [...algos, 'md5'];
  const seen = new Map<string, PackageFileRecord>();
  const src = decompress(
    compressionOfName(dm.name, path),
    readRange(path, dm.start, dm.size),
    budget,
    path,
    dm.name,
  );
  for await (const { entry, body } of walkTar(src, { member: dm.name })) {
    let rec: PackageFileRecord;
    if (entry.type === 'file') {
      const { digests, size } = await hashStream(body, withMd5);
      const md5 = digests.md5!;
      const want = ctl.md5sums.get(entry.path);
      if (want !== undefined && want !== md5)
        throw new ImakitError('E_PKG_DIGEST_MISMATCH', `MD5 ${md5} differs from md5sums' ${want}`, {
          path,
          member: `${dm.name}:${entry.rawName}`,
        });
      if (!algos.includes('md5')) delete digests.md5;
      const sig = entry.xattrs.get('security.ima');
      rec = Object.freeze({
        path: entry.path,
        size,
        mode: entry.mode,
        digests: Object.freeze(digests),
        ...(want !== undefined ? { md5: want } : {}),
        ...(sig ? { imaSignature: sig } : {}),
        provenance,
      });
      seen.set(entry.path, rec);
    } else if (entry.type === 'hardlink') {
      const target = seen.get(entry.linkname);
      if (!target)
        throw new ImakitError(
          'E_PKG_FORMAT',
          `hard link to ${entry.linkname}, which is not an earlier regular file`,
          { path, member: `${dm.name}:${entry.rawName}` },
        );
      const sig = entry.xattrs.get('security.ima') ?? target.imaSignature;
      rec = Object.freeze({
        ...target,
        path: entry.path,
        mode: entry.mode || target.mode,
        ...(sig ? { imaSignature: sig } : {}),
      });
    } else continue;
    yield rec;
  }
}

/** The `.deb` files of a directory (an apt archive: `/var/cache/apt/archives`), sorted by name. */
export async function debsIn(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    throw fromSystemError(e, 'E_IO_READ', dir);
  }
  return names
    .filter((n) => n.endsWith('.deb'))
    .sort()
    .map((n) => join(dir, n));
}

/** `.deb` files and directories of them, expanded in order. */
export async function expandDebInputs(inputs: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const i of inputs) {
    let st;
    try {
      st = await stat(i);
    } catch (e) {
      throw fromSystemError(e, 'E_IO_READ', i);
    }
    if (st.isDirectory()) out.push(...(await debsIn(i)));
    else out.push(i);
  }
  return out;
}
