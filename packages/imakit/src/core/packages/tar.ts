/**
 * Tar headers: v7, POSIX ustar, GNU (`ustar  \0`, long names `L`/`K`, base-256 numbers) and POSIX pax
 * extended headers (`x`, `g`), whose `SCHILY.xattr.<name>` records carry extended attributes such as
 * `security.ima` (the dpkg #850340 proposal, containers/storage, libarchive). Pax values are kept as
 * bytes: an xattr value is binary, and decoding it as UTF-8 (as general tar libraries do) would corrupt
 * a signature. Layouts: POSIX.1-2017 `pax` "ustar Interchange Format", GNU tar manual "Tar Internals".
 */
import { CodecError } from '../../errors.ts';

export const TAR_BLOCK = 512;
/** A pax extended header holds a few paths and xattrs; a megabyte is generous and bounds the buffer. */
export const MAX_PAX_HEADER_BYTES = 1024 * 1024;
/** GNU `L`/`K` long names: PATH_MAX is 4096; 64 KiB leaves room and bounds the buffer. */
export const MAX_GNU_LONGNAME_BYTES = 64 * 1024;
/** Member size cap (also what base-256 may declare): 64 GiB. */
export const MAX_TAR_MEMBER_SIZE = 64 * 1024 * 1024 * 1024;
/** Records in one pax header. */
export const MAX_PAX_RECORDS = 4096;

export type TarType = 'file' | 'hardlink' | 'symlink' | 'chardev' | 'blockdev' | 'dir' | 'fifo';
export type TarMetaType = 'pax' | 'pax-global' | 'gnu-longname' | 'gnu-longlink';

/** One raw 512-byte header, decoded. Names are bytes-as-latin1 until combined (see `rawPath`). */
export interface TarHeader {
  readonly name: Uint8Array;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  readonly mtime: number;
  readonly typeflag: number;
  readonly type: TarType | TarMetaType;
  readonly linkname: Uint8Array;
  readonly format: 'v7' | 'ustar' | 'gnu';
  readonly uname: string;
  readonly gname: string;
  readonly devmajor: number;
  readonly devminor: number;
  /** ustar prefix (empty for GNU and v7) */
  readonly prefix: Uint8Array;
}

const TYPES: Record<number, TarType | TarMetaType> = {
  0x00: 'file',
  0x30: 'file',
  0x37: 'file', // '7' contiguous: a regular file everywhere that matters
  0x31: 'hardlink',
  0x32: 'symlink',
  0x33: 'chardev',
  0x34: 'blockdev',
  0x35: 'dir',
  0x36: 'fifo',
  0x78: 'pax',
  0x67: 'pax-global',
  0x4c: 'gnu-longname',
  0x4b: 'gnu-longlink',
};

/** True for the all-zero end-of-archive block. */
export function isZeroBlock(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

function cstr(b: Uint8Array, start: number, len: number): Uint8Array {
  const f = b.subarray(start, start + len);
  const z = f.indexOf(0);
  return z < 0 ? f : f.subarray(0, z);
}

/** Numeric field: octal (space/NUL terminated, leading spaces allowed) or GNU base-256. */
function tarNumber(b: Uint8Array, start: number, len: number, name: string, offset: number): number {
  const first = b[start]!;
  if (first & 0x80) {
    if (first === 0xff)
      throw new CodecError('E_PKG_FORMAT', `negative base-256 ${name}`, {
        offset: offset + start,
        field: name,
      });
    let v = first & 0x7f;
    for (let i = 1; i < len; i++) {
      v = v * 256 + b[start + i]!;
      if (v > Number.MAX_SAFE_INTEGER)
        throw new CodecError('E_PKG_TOO_LARGE', `base-256 ${name} over 2^53`, {
          offset: offset + start,
          field: name,
        });
    }
    return v;
  }
  const text = Buffer.from(b.buffer, b.byteOffset + start, len)
    .toString('latin1')
    .replace(/[\0 ]+$/, '')
    .replace(/^ +/, '');
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text))
    throw new CodecError(
      'E_PKG_FORMAT',
      `tar header ${name} '${text.replace(/[^\x20-\x7e]/g, '?')}' is not octal`,
      {
        offset: offset + start,
        field: name,
      },
    );
  return parseInt(text, 8);
}

/** The header checksum: unsigned sum with the chksum field as spaces (tar also accepts the signed sum). */
function checksums(b: Uint8Array): { unsigned: number; signed: number } {
  let u = 0;
  let s = 0;
  for (let i = 0; i < TAR_BLOCK; i++) {
    const c = i >= 148 && i < 156 ? 0x20 : b[i]!;
    u += c;
    s += c >= 0x80 ? c - 256 : c;
  }
  return { unsigned: u, signed: s };
}

/**
 * Decode one header block.
 * @param b 512 bytes (not the zero block: test with `isZeroBlock` first)
 * @param offset the block's offset in the tar stream (for errors)
 * @throws CodecError E_PKG_FORMAT (checksum, unknown typeflag, bad number), E_PKG_TOO_LARGE
 */
export function decodeTarHeader(b: Uint8Array, offset: number): TarHeader {
  if (b.length !== TAR_BLOCK)
    throw new CodecError('E_CODEC_TRUNCATED', `tar header needs ${TAR_BLOCK} bytes, got ${b.length}`, {
      offset,
    });
  const chk = tarNumber(b, 148, 8, 'chksum', offset);
  const sums = checksums(b);
  if (chk !== sums.unsigned && chk !== sums.signed)
    throw new CodecError('E_PKG_FORMAT', `tar header checksum ${chk} != computed ${sums.unsigned}`, {
      offset: offset + 148,
      field: 'chksum',
    });
  const typeflag = b[156]!;
  const type = TYPES[typeflag];
  if (type === undefined)
    throw new CodecError(
      'E_PKG_FORMAT',
      `unsupported tar typeflag '${String.fromCharCode(typeflag)}' (0x${typeflag.toString(16)})`,
      {
        offset: offset + 156,
        field: 'typeflag',
      },
    );
  const magic = Buffer.from(b.buffer, b.byteOffset + 257, 8).toString('latin1');
  const format = magic === 'ustar  \0' ? 'gnu' : magic.startsWith('ustar\0') ? 'ustar' : 'v7';
  const size = tarNumber(b, 124, 12, 'size', offset);
  if (size > MAX_TAR_MEMBER_SIZE)
    throw new CodecError('E_PKG_TOO_LARGE', `tar member size ${size} over ${MAX_TAR_MEMBER_SIZE}`, {
      offset: offset + 124,
      field: 'size',
    });
  const isUstar = format !== 'v7';
  return Object.freeze({
    name: cstr(b, 0, 100),
    mode: tarNumber(b, 100, 8, 'mode', offset),
    uid: tarNumber(b, 108, 8, 'uid', offset),
    gid: tarNumber(b, 116, 8, 'gid', offset),
    size,
    mtime: tarNumber(b, 136, 12, 'mtime', offset),
    typeflag,
    type,
    linkname: cstr(b, 157, 100),
    format,
    uname: isUstar ? Buffer.from(cstr(b, 265, 32)).toString('utf8') : '',
    gname: isUstar ? Buffer.from(cstr(b, 297, 32)).toString('utf8') : '',
    devmajor: isUstar ? tarNumber(b, 329, 8, 'devmajor', offset) : 0,
    devminor: isUstar ? tarNumber(b, 337, 8, 'devminor', offset) : 0,
    prefix: format === 'ustar' ? cstr(b, 345, 155) : new Uint8Array(0),
  });
}

/** Padding after `size` bytes of content to the next block. */
export function tarPadding(size: number): number {
  return (TAR_BLOCK - (size % TAR_BLOCK)) % TAR_BLOCK;
}

/**
 * Decode the records of a pax extended header: `"<len> <key>=<value>\n"`, `len` counting the whole
 * record. Values stay bytes (xattrs are binary). A later record with the same key wins (POSIX).
 * @throws CodecError E_PKG_FORMAT naming the record's offset, E_CODEC_TOO_LARGE
 */
export function decodePaxRecords(b: Uint8Array, offset = 0): Map<string, Uint8Array> {
  if (b.length > MAX_PAX_HEADER_BYTES)
    throw new CodecError('E_PKG_TOO_LARGE', `pax header of ${b.length} bytes over ${MAX_PAX_HEADER_BYTES}`, {
      offset,
    });
  const out = new Map<string, Uint8Array>();
  let off = 0;
  let n = 0;
  while (off < b.length) {
    // GNU tar pads a pax header with NULs in some versions: everything left must then be NUL
    if (b[off] === 0) {
      if (!isZeroBlock(b.subarray(off)))
        throw new CodecError('E_PKG_FORMAT', 'pax header has data after NUL padding', {
          offset: offset + off,
          field: 'pax',
        });
      break;
    }
    const sp = b.indexOf(0x20, off);
    if (sp < 0 || sp - off > 10)
      throw new CodecError('E_PKG_FORMAT', 'pax record has no length', {
        offset: offset + off,
        field: 'pax',
      });
    const lenText = Buffer.from(b.subarray(off, sp)).toString('latin1');
    if (!/^[1-9][0-9]*$/.test(lenText))
      throw new CodecError('E_PKG_FORMAT', `pax record length '${lenText}' is not decimal`, {
        offset: offset + off,
        field: 'pax',
      });
    const len = Number(lenText);
    if (len > b.length - off || len < sp - off + 3)
      throw new CodecError('E_PKG_FORMAT', `pax record length ${len} out of bounds`, {
        offset: offset + off,
        field: 'pax',
      });
    const rec = b.subarray(sp + 1, off + len);
    if (rec[rec.length - 1] !== 0x0a)
      throw new CodecError('E_PKG_FORMAT', 'pax record does not end with a newline', {
        offset: offset + off + len - 1,
        field: 'pax',
      });
    const eq = rec.indexOf(0x3d);
    if (eq <= 0)
      throw new CodecError('E_PKG_FORMAT', 'pax record has no key=', { offset: offset + off, field: 'pax' });
    const key = Buffer.from(rec.subarray(0, eq)).toString('utf8');
    if (++n > MAX_PAX_RECORDS)
      throw new CodecError('E_PKG_TOO_LARGE', `more than ${MAX_PAX_RECORDS} pax records`, {
        offset: offset + off,
        field: 'pax',
      });
    out.set(key, Uint8Array.from(rec.subarray(eq + 1, rec.length - 1)));
    off += len;
  }
  return out;
}

/** Encode pax records (exact inverse of `decodePaxRecords` for NUL-free input). */
export function encodePaxRecords(records: Iterable<readonly [string, Uint8Array]>): Uint8Array {
  const parts: Buffer[] = [];
  for (const [k, v] of records) {
    const body = Buffer.concat([Buffer.from(` ${k}=`, 'utf8'), v, Buffer.from('\n')]);
    let len = body.length + 1;
    while (String(len).length + body.length !== len) len = String(len).length + body.length;
    parts.push(Buffer.concat([Buffer.from(String(len), 'latin1'), body]));
  }
  return Uint8Array.from(Buffer.concat(parts));
}

/** What `encodeTarHeader` takes. Names longer than 100 bytes need a pax `path` record (the caller's). */
export interface TarHeaderInput {
  readonly name: string;
  readonly type: TarType | TarMetaType;
  readonly size?: number;
  readonly mode?: number;
  readonly uid?: number;
  readonly gid?: number;
  readonly mtime?: number;
  readonly linkname?: string;
  readonly uname?: string;
  readonly gname?: string;
}

const TYPEFLAG_OF: Record<TarType | TarMetaType, number> = {
  file: 0x30,
  hardlink: 0x31,
  symlink: 0x32,
  chardev: 0x33,
  blockdev: 0x34,
  dir: 0x35,
  fifo: 0x36,
  pax: 0x78,
  'pax-global': 0x67,
  'gnu-longname': 0x4c,
  'gnu-longlink': 0x4b,
};

function octal(out: Uint8Array, start: number, len: number, v: number, what: string): void {
  const t = v.toString(8);
  if (t.length > len - 1) throw new RangeError(`tar ${what} ${v} does not fit ${len - 1} octal digits`);
  out.set(Buffer.from(t.padStart(len - 1, '0') + '\0', 'latin1'), start);
}

/** Encode a POSIX ustar header block (tests and image building). */
export function encodeTarHeader(h: TarHeaderInput): Uint8Array {
  const out = new Uint8Array(TAR_BLOCK);
  const name = Buffer.from(h.name, 'utf8');
  const link = Buffer.from(h.linkname ?? '', 'utf8');
  if (name.length > 100 || link.length > 100)
    throw new RangeError(`tar name or linkname over 100 bytes: use a pax record`);
  out.set(name, 0);
  octal(out, 100, 8, h.mode ?? (h.type === 'dir' ? 0o755 : 0o644), 'mode');
  octal(out, 108, 8, h.uid ?? 0, 'uid');
  octal(out, 116, 8, h.gid ?? 0, 'gid');
  octal(out, 124, 12, h.size ?? 0, 'size');
  octal(out, 136, 12, h.mtime ?? 0, 'mtime');
  out[156] = TYPEFLAG_OF[h.type];
  out.set(link, 157);
  out.set(Buffer.from('ustar\x0000', 'latin1'), 257);
  out.set(Buffer.from(h.uname ?? 'root', 'utf8').subarray(0, 31), 265);
  out.set(Buffer.from(h.gname ?? 'root', 'utf8').subarray(0, 31), 297);
  octal(out, 329, 8, 0, 'devmajor');
  octal(out, 337, 8, 0, 'devminor');
  const { unsigned } = checksums(out);
  out.set(Buffer.from(unsigned.toString(8).padStart(6, '0') + '\0 ', 'latin1'), 148);
  return out;
}

/**
 * Normalize a member name to an absolute path: `./usr/bin/ls` and `usr/bin/ls` → `/usr/bin/ls`,
 * trailing `/` dropped; `.` alone is the root. A `..` component is refused (it would escape the root).
 * @throws CodecError E_PKG_FORMAT
 */
export function memberPath(name: string, offset = 0): string {
  const parts: string[] = [];
  for (const p of name.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..')
      throw new CodecError('E_PKG_FORMAT', `member name '${name}' contains '..'`, { offset, field: 'name' });
    parts.push(p);
  }
  return '/' + parts.join('/');
}
