/**
 * The `ar` archive of a `.deb` (deb(5), ar(5)): the magic `!<arch>\n`, then members, each a 60-byte
 * ASCII header (name 16, mtime 12, uid 6, gid 6, mode 8 octal, size 10 decimal, fmag "`\n") followed by
 * `size` bytes and a pad byte `\n` when `size` is odd. dpkg only reads the common format (names of at
 * most 15 characters, an optional trailing `/`), so GNU/BSD long-name tables are rejected here too.
 */
import { CodecError } from '../../errors.ts';

export const AR_MAGIC = Uint8Array.from(Buffer.from('!<arch>\n', 'latin1'));
export const AR_HEADER_SIZE = 60;
/** dpkg's own cap: ten decimal digits; anything above this is refused before a read is planned. */
export const MAX_AR_MEMBER_SIZE = 9_999_999_999;

export interface ArHeader {
  /** member name without the trailing `/` and padding */
  readonly name: string;
  readonly mtime: number;
  readonly uid: number;
  readonly gid: number;
  readonly mode: number;
  readonly size: number;
}

/** True when `bytes` starts with the ar magic. */
export function isArMagic(bytes: Uint8Array): boolean {
  if (bytes.length < AR_MAGIC.length) return false;
  for (let i = 0; i < AR_MAGIC.length; i++) if (bytes[i] !== AR_MAGIC[i]) return false;
  return true;
}

function field(h: Uint8Array, start: number, len: number): string {
  return Buffer.from(h.buffer, h.byteOffset + start, len).toString('latin1');
}

function num(h: Uint8Array, start: number, len: number, radix: 8 | 10, name: string, offset: number): number {
  const text = field(h, start, len).replace(/ +$/, '');
  // mtime/uid/gid may be blank in some writers; size and mode may not
  if (text === '' && (name === 'mtime' || name === 'uid' || name === 'gid')) return 0;
  const re = radix === 8 ? /^[0-7]+$/ : /^[0-9]+$/;
  if (!re.test(text))
    throw new CodecError(
      'E_PKG_FORMAT',
      `ar header ${name} '${text}' is not a ${radix === 8 ? 'octal' : 'decimal'} number`,
      {
        offset: offset + start,
        field: name,
      },
    );
  return parseInt(text, radix);
}

/**
 * Decode one 60-byte member header.
 * @param h exactly 60 bytes
 * @param offset where the header sits in the archive (for errors)
 * @throws CodecError E_PKG_FORMAT (bad fmag, name, number), E_PKG_TOO_LARGE (size over the cap)
 */
export function decodeArHeader(h: Uint8Array, offset: number): ArHeader {
  if (h.length !== AR_HEADER_SIZE)
    throw new CodecError(
      'E_CODEC_TRUNCATED',
      `ar member header needs ${AR_HEADER_SIZE} bytes, got ${h.length}`,
      {
        offset,
        field: 'ar header',
      },
    );
  if (h[58] !== 0x60 || h[59] !== 0x0a)
    throw new CodecError('E_PKG_FORMAT', 'ar member header does not end with "`\\n"', {
      offset: offset + 58,
      field: 'fmag',
    });
  const rawName = field(h, 0, 16).replace(/ +$/, '');
  const name = rawName.endsWith('/') ? rawName.slice(0, -1) : rawName;
  if (name === '' || name.includes('/') || /[^\x21-\x7e]/.test(name))
    throw new CodecError(
      'E_PKG_FORMAT',
      `ar member name '${rawName}' is not a plain name (long-name tables are not used by .deb)`,
      {
        offset,
        field: 'name',
      },
    );
  const size = num(h, 48, 10, 10, 'size', offset);
  if (size > MAX_AR_MEMBER_SIZE)
    throw new CodecError('E_PKG_TOO_LARGE', `ar member size ${size} over ${MAX_AR_MEMBER_SIZE}`, {
      offset: offset + 48,
      field: 'size',
    });
  return Object.freeze({
    name,
    mtime: num(h, 16, 12, 10, 'mtime', offset),
    uid: num(h, 28, 6, 10, 'uid', offset),
    gid: num(h, 34, 6, 10, 'gid', offset),
    mode: num(h, 40, 8, 8, 'mode', offset),
    size,
  });
}

function put(out: Uint8Array, start: number, len: number, text: string, what: string): void {
  if (text.length > len) throw new RangeError(`ar header ${what} '${text}' longer than ${len}`);
  out.set(Buffer.from(text.padEnd(len, ' '), 'latin1'), start);
}

/** Encode a member header (dpkg-deb style: name with a trailing `/` only if `slash`). */
export function encodeArHeader(m: ArHeader, opts: { slash?: boolean } = {}): Uint8Array {
  const out = new Uint8Array(AR_HEADER_SIZE);
  put(out, 0, 16, opts.slash ? `${m.name}/` : m.name, 'name');
  put(out, 16, 12, String(m.mtime), 'mtime');
  put(out, 28, 6, String(m.uid), 'uid');
  put(out, 34, 6, String(m.gid), 'gid');
  put(out, 40, 8, m.mode.toString(8), 'mode');
  put(out, 48, 10, String(m.size), 'size');
  out[58] = 0x60;
  out[59] = 0x0a;
  return out;
}

/** One member of an in-memory archive: a view into the input. */
export interface ArMember {
  readonly header: ArHeader;
  readonly offset: number;
  readonly data: Uint8Array;
}

/**
 * Decode a whole in-memory archive (small archives and tests; the host streams large ones).
 * @throws CodecError E_PKG_FORMAT, E_CODEC_TRUNCATED, E_CODEC_TRAILING
 */
export function decodeAr(bytes: Uint8Array): ArMember[] {
  if (!isArMagic(bytes))
    throw new CodecError('E_PKG_FORMAT', 'not an ar archive (no !<arch> magic)', {
      offset: 0,
      field: 'magic',
    });
  const out: ArMember[] = [];
  let off = AR_MAGIC.length;
  while (off < bytes.length) {
    if (bytes.length - off < AR_HEADER_SIZE)
      throw new CodecError('E_CODEC_TRAILING', `${bytes.length - off} bytes after the last ar member`, {
        offset: off,
      });
    const header = decodeArHeader(bytes.subarray(off, off + AR_HEADER_SIZE), off);
    const start = off + AR_HEADER_SIZE;
    if (header.size > bytes.length - start)
      throw new CodecError(
        'E_CODEC_TRUNCATED',
        `ar member ${header.name} declares ${header.size} bytes, ${bytes.length - start} remain`,
        {
          offset: start,
          field: header.name,
        },
      );
    out.push(Object.freeze({ header, offset: start, data: bytes.subarray(start, start + header.size) }));
    off = start + header.size + (header.size & 1);
  }
  if (off !== bytes.length)
    throw new CodecError('E_CODEC_TRUNCATED', 'ar member pad byte missing', { offset: bytes.length });
  return out;
}

/** Encode members into an archive (tests; a `.deb` is `debian-binary`, `control.tar.*`, `data.tar.*`). */
export function encodeAr(members: readonly { header: ArHeader; data: Uint8Array }[]): Uint8Array {
  const parts: Uint8Array[] = [AR_MAGIC];
  for (const m of members) {
    if (m.header.size !== m.data.length)
      throw new RangeError(`ar member ${m.header.name}: size ${m.header.size} != data ${m.data.length}`);
    parts.push(encodeArHeader(m.header), m.data);
    if (m.data.length & 1) parts.push(Uint8Array.of(0x0a));
  }
  return Uint8Array.from(Buffer.concat(parts));
}
