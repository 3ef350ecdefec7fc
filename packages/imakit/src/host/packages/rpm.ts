/**
 * References from `.rpm` files (header only: the payload is never read, the digests and per-file IMA
 * signatures are in the headers) and from the installed RPM database `rpmdb.sqlite`
 * (`Packages(hnum, blob)`, rpm `lib/backend/sqlite.cc`), read with sql.js (SQLite compiled to WASM:
 * no native build at install time).
 */
import { stat } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import initSqlJs from 'sql.js';
import {
  decodeRpmHeader,
  decodeRpmLead,
  RPM_LEAD_SIZE,
  type RpmHeader,
  signaturePadding,
} from '../../core/packages/rpm-header.ts';
import {
  isRegularMode,
  FileFlag,
  type RpmPackageInfo,
  rpmPackageInfo,
} from '../../core/packages/rpm-files.ts';
import type { Provenance } from '../../core/refs/reference-set.ts';
import { fromSystemError, ImakitError, withPath } from '../../errors.ts';
import type { PackageFileRecord } from './file-record.ts';
import { readBoundedFile } from '../fs/bounded-read.ts';

/** rpm refuses a signature header over 64 MiB and a main header over 256 MiB (hdrchkData). */
export const MAX_RPM_HEADERS_BYTES = 320 * 1024 * 1024;
const MAX_RPM_SIG_HEADER_BYTES = 64 * 1024 * 1024;
const MAX_RPM_MAIN_HEADER_BYTES = 256 * 1024 * 1024;
/** rpmdb.sqlite is loaded whole by sql.js: cap it. */
export const MAX_RPMDB_BYTES = 2 * 1024 * 1024 * 1024;
/** The first 16 bytes of every SQLite 3 database file (sqlite.org/fileformat2.html 1.3.1). */
const SQLITE_MAGIC = [...Buffer.from('SQLite format 3\0', 'latin1')];

export interface RpmHeaders {
  readonly sig: RpmHeader;
  readonly main: RpmHeader;
  /** offset of the payload (end of the main header) */
  readonly payloadOffset: number;
}

async function readAt(
  path: string,
  fh: Awaited<ReturnType<typeof open>>,
  pos: number,
  n: number,
): Promise<Uint8Array> {
  if (n > MAX_RPM_HEADERS_BYTES)
    throw new ImakitError('E_PKG_TOO_LARGE', `header of ${n} bytes over ${MAX_RPM_HEADERS_BYTES}`, {
      path,
      offset: pos,
    });
  const b = Buffer.alloc(n);
  const { bytesRead } = await fh.read(b, 0, n, pos);
  return b.subarray(0, bytesRead);
}

/** Read the lead and both headers of a package file (not the payload). */
export async function readRpmHeaders(path: string): Promise<RpmHeaders> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    throw fromSystemError(e, 'E_IO_READ', path);
  }
  try {
    const st = await fh.stat();
    const end = st.isFile() ? st.size : undefined;
    return await withPathAsync(path, async () => {
      decodeRpmLead(await readAt(path, fh, 0, RPM_LEAD_SIZE));
      const header = async (pos: number, what: string) => {
        const intro = await readAt(path, fh, pos, 16);
        if (intro.length < 16)
          throw new ImakitError('E_CODEC_TRUNCATED', `${what} intro cut off`, { offset: pos, member: what });
        const v = new DataView(intro.buffer, intro.byteOffset, 16);
        const size = 16 + 16 * v.getUint32(8) + v.getUint32(12);
        const cap = what === 'signature header' ? MAX_RPM_SIG_HEADER_BYTES : MAX_RPM_MAIN_HEADER_BYTES;
        if (size > cap)
          throw new ImakitError('E_PKG_TOO_LARGE', `${what} of ${size} bytes over rpm's ${cap}`, {
            offset: pos,
            member: what,
          });
        // the header's declared size against what the file holds, before allocating for it
        if (end !== undefined && pos + size > end)
          throw new ImakitError(
            'E_CODEC_TRUNCATED',
            `${what} declares ${size} bytes, the file has ${end - pos} from here`,
            { offset: pos, member: what },
          );
        return decodeRpmHeader(await readAt(path, fh, pos, size), pos, what, { magic: true });
      };
      const sig = await header(RPM_LEAD_SIZE, 'signature header');
      const mainAt = RPM_LEAD_SIZE + sig.size + signaturePadding(sig.size);
      const main = await header(mainAt, 'main header');
      return Object.freeze({ sig, main, payloadOffset: mainAt + main.size });
    });
  } finally {
    await fh.close();
  }
}

async function withPathAsync<T>(path: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    return withPath(path, () => {
      throw e;
    });
  }
}

function provenanceOf(info: RpmPackageInfo, source: string): Provenance {
  const evr = `${info.epoch !== undefined ? `${info.epoch}:` : ''}${info.version}-${info.release}`;
  return Object.freeze({ kind: 'rpm', name: info.name, version: evr, arch: info.arch, source });
}

/** Regular, non-ghost files with a digest, as records (digest in the package's own algorithm). */
export function* rpmRecords(info: RpmPackageInfo, source: string): Generator<PackageFileRecord> {
  const provenance = provenanceOf(info, source);
  for (const f of info.files) {
    if (!isRegularMode(f.mode) || f.flags & FileFlag.GHOST || f.digest === '') continue;
    yield Object.freeze({
      path: f.path,
      size: f.size,
      mode: f.mode,
      digests: Object.freeze({ [info.digestAlgo]: f.digest }),
      ...(f.imaSignature ? { imaSignature: f.imaSignature } : {}),
      provenance,
    });
  }
}

/** The identity and file list of a package file. */
export async function readRpmInfo(path: string): Promise<RpmPackageInfo> {
  const h = await readRpmHeaders(path);
  return withPath(path, () => rpmPackageInfo(h.main, h.sig, 'main header'));
}

/**
 * Records of one `.rpm` file.
 * @throws ImakitError E_PKG_FORMAT, E_PKG_TOO_LARGE, E_CODEC_TRUNCATED (naming header and tag), E_IO_READ
 */
export async function* readRpm(path: string): AsyncGenerator<PackageFileRecord> {
  yield* rpmRecords(await readRpmInfo(path), path);
}

/** `.rpm` files of a directory, or the files given. */
export async function expandRpmInputs(inputs: readonly string[]): Promise<string[]> {
  const { readdir } = await import('node:fs/promises');
  const out: string[] = [];
  for (const i of inputs) {
    let st;
    try {
      st = await stat(i);
    } catch (e) {
      throw fromSystemError(e, 'E_IO_READ', i);
    }
    if (st.isDirectory())
      out.push(
        ...(await readdir(i))
          .filter((n) => n.endsWith('.rpm'))
          .sort()
          .map((n) => join(i, n)),
      );
    else out.push(i);
  }
  return out;
}

/** Where rpm keeps its database under a root. */
export function rpmdbPath(root: string): string {
  return join(root, 'var/lib/rpm/rpmdb.sqlite');
}

/**
 * Records of every package in an `rpmdb.sqlite` (installed headers: signatures in tag 5090).
 * @throws ImakitError E_PKG_FORMAT naming `hnum N` and the tag; E_IO_READ; E_IO_TOO_LARGE (naming the cap)
 */
export async function* readRpmdb(dbFile: string): AsyncGenerator<PackageFileRecord> {
  // bounded (issue 10 item 3): a FIFO or device is refused from its first 16 bytes unless they are
  // SQLite's header, and read only up to the cap
  const bytes = readBoundedFile(dbFile, 'rpmdb', {
    cap: MAX_RPMDB_BYTES,
    probe: {
      bytes: SQLITE_MAGIC.length,
      check: (head) => {
        if (!SQLITE_MAGIC.every((b, i) => head[i] === b))
          throw new ImakitError('E_PKG_FORMAT', "not an SQLite database (no 'SQLite format 3' header)", {
            path: dbFile,
          });
      },
    },
  });
  const SQL = await initSqlJs();
  let db;
  try {
    db = new SQL.Database(bytes);
  } catch (e) {
    throw new ImakitError(
      'E_PKG_FORMAT',
      `not an SQLite database: ${(e as Error).message}`,
      { path: dbFile },
      { cause: e },
    );
  }
  try {
    let stmt;
    try {
      stmt = db.prepare('SELECT hnum, blob FROM Packages ORDER BY hnum');
    } catch (e) {
      throw new ImakitError(
        'E_PKG_FORMAT',
        `no Packages(hnum, blob) table: ${(e as Error).message}`,
        { path: dbFile },
        { cause: e },
      );
    }
    try {
      while (stmt.step()) {
        const [hnum, blob] = stmt.get() as [number, Uint8Array];
        if (!(blob instanceof Uint8Array))
          throw new ImakitError('E_PKG_FORMAT', 'blob is not a BLOB', {
            path: dbFile,
            member: `hnum ${hnum}`,
          });
        const what = `hnum ${hnum}`;
        const info = withPath(dbFile, () => {
          const h = decodeRpmHeader(blob, 0, what, { magic: false });
          if (h.size !== blob.length)
            throw new ImakitError('E_CODEC_TRAILING', `${blob.length - h.size} bytes after the header`, {
              member: what,
              offset: h.size,
            });
          return rpmPackageInfo(h, undefined, what);
        });
        // gpg-pubkey pseudo packages have no files
        yield* rpmRecords(info, dbFile);
      }
    } finally {
      stmt.free();
    }
  } finally {
    db.close();
  }
}
