/**
 * Walk a tar stream entry by entry: pax (`x`, `g`) and GNU long-name (`L`, `K`) headers are folded into
 * the entry they describe, bodies are streamed (never buffered), and the end must be the zero block
 * followed by nothing but zero padding (strict: no trailing data, no missing end).
 */
import { CodecError } from '../../errors.ts';
import { ByteQueue } from './byte-queue.ts';
import {
  decodePaxRecords,
  decodeTarHeader,
  isZeroBlock,
  MAX_GNU_LONGNAME_BYTES,
  MAX_PAX_HEADER_BYTES,
  MAX_TAR_MEMBER_SIZE,
  memberPath,
  TAR_BLOCK,
  tarPadding,
  type TarType,
} from './tar.ts';

export const XATTR_PAX_PREFIX = 'SCHILY.xattr.';

/** An entry with pax/GNU names applied. */
export interface TarEntry {
  /** absolute, normalized (`/usr/bin/ls`) */
  readonly path: string;
  /** the raw name as stored (after pax/GNU), for messages */
  readonly rawName: string;
  readonly type: TarType;
  readonly size: number;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly mtime: number;
  /** symlink target as stored; for hard links the normalized path of the target */
  readonly linkname: string;
  /** `SCHILY.xattr.*` records, by xattr name (`security.ima`), values as bytes */
  readonly xattrs: ReadonlyMap<string, Uint8Array>;
  /** offset of the entry's (first) header in the tar stream */
  readonly offset: number;
  /** offset of the entry's content in the tar stream */
  readonly dataOffset: number;
}

export interface TarWalkOptions {
  /** names the tar in errors: `data.tar.xz`, `layer sha256:…` */
  readonly member?: string;
}

function text(b: Uint8Array): string {
  return Buffer.from(b).toString('utf8');
}

function paxNumber(
  v: Uint8Array | undefined,
  key: string,
  offset: number,
  member: string | undefined,
): number | undefined {
  if (v === undefined) return undefined;
  const t = Buffer.from(v).toString('latin1');
  if (!/^[0-9]+(\.[0-9]*)?$/.test(t))
    throw new CodecError('E_PKG_FORMAT', `pax ${key} '${t}' is not a number`, {
      offset,
      field: key,
      ...(member ? { member } : {}),
    });
  return Math.floor(Number(t));
}

/** Run a header decoder, naming the tar (`member`) in a CodecError that does not name one yet. */
function inMember<T>(member: string | undefined, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (member !== undefined && e instanceof CodecError && e.context.member === undefined)
      throw new CodecError(e.code, e.detail, { ...e.context, offset: e.context.offset ?? 0, member });
    throw e;
  }
}

/**
 * Iterate the entries of a tar stream. Each yielded `body` must be consumed before the next entry is
 * requested, or it is skipped automatically; it is valid only until then.
 * @throws CodecError E_PKG_FORMAT, E_PKG_TOO_LARGE, E_CODEC_TRUNCATED, E_CODEC_TRAILING (with `member`)
 */
export async function* walkTar(
  src: AsyncIterable<Uint8Array>,
  opts: TarWalkOptions = {},
): AsyncGenerator<{ entry: TarEntry; body: AsyncIterable<Uint8Array> }> {
  const member = opts.member;
  const where = (offset: number, field: string) => ({
    offset,
    field,
    ...(member !== undefined ? { member } : {}),
  });
  const q = new ByteQueue(src);
  const globals = new Map<string, Uint8Array>();
  let pax: Map<string, Uint8Array> | undefined;
  let longName: Uint8Array | undefined;
  let longLink: Uint8Array | undefined;
  let firstOffset = -1;
  try {
    for (;;) {
      const at = q.position;
      const block = await q.read(TAR_BLOCK);
      if (block.length === 0)
        throw new CodecError(
          'E_CODEC_TRUNCATED',
          'tar ends without the end-of-archive block',
          where(at, 'end'),
        );
      if (block.length !== TAR_BLOCK)
        throw new CodecError(
          'E_CODEC_TRUNCATED',
          `tar ends inside a header (${block.length} bytes)`,
          where(at, 'header'),
        );
      if (isZeroBlock(block)) {
        if (pax || longName || longLink)
          throw new CodecError('E_PKG_FORMAT', 'extended header not followed by an entry', where(at, 'end'));
        // the rest (second zero block, blocking-factor padding) must be zeros
        for (;;) {
          const rest = await q.read(64 * 1024);
          if (rest.length === 0) break;
          if (!isZeroBlock(rest))
            throw new CodecError(
              'E_CODEC_TRAILING',
              'data after the tar end-of-archive block',
              where(q.position - rest.length, 'end'),
            );
        }
        return;
      }
      const h = inMember(member, () => decodeTarHeader(block, at));
      if (firstOffset < 0) firstOffset = at;
      const ctx = where(at, 'size');
      if (h.type === 'pax' || h.type === 'pax-global') {
        if (h.size > MAX_PAX_HEADER_BYTES)
          throw new CodecError(
            'E_PKG_TOO_LARGE',
            `pax header of ${h.size} bytes over ${MAX_PAX_HEADER_BYTES}`,
            ctx,
          );
        const raw = await q.readExact(h.size, 'pax header', member);
        const recs = inMember(member, () => decodePaxRecords(raw, at + TAR_BLOCK));
        await q.skip(tarPadding(h.size), 'pax padding', member);
        if (h.type === 'pax-global') for (const [k, v] of recs) globals.set(k, v);
        else pax = recs;
        continue;
      }
      if (h.type === 'gnu-longname' || h.type === 'gnu-longlink') {
        if (h.size > MAX_GNU_LONGNAME_BYTES)
          throw new CodecError(
            'E_PKG_TOO_LARGE',
            `GNU long name of ${h.size} bytes over ${MAX_GNU_LONGNAME_BYTES}`,
            ctx,
          );
        const raw = await q.readExact(h.size, 'GNU long name', member);
        await q.skip(tarPadding(h.size), 'GNU long name padding', member);
        const z = raw.indexOf(0);
        const v = Uint8Array.from(z < 0 ? raw : raw.subarray(0, z));
        if (h.type === 'gnu-longname') longName = v;
        else longLink = v;
        continue;
      }
      const rec = (k: string) => pax?.get(k) ?? globals.get(k);
      let nameBytes = longName ?? h.name;
      if (h.prefix.length > 0 && !longName)
        nameBytes = Uint8Array.from(Buffer.concat([h.prefix, Buffer.from('/'), h.name]));
      const paxPath = rec('path');
      const rawName = paxPath ? text(paxPath) : text(nameBytes);
      const paxLink = rec('linkpath');
      const link = paxLink ? text(paxLink) : text(longLink ?? h.linkname);
      const size = paxNumber(rec('size'), 'size', at, member) ?? h.size;
      if (size > MAX_TAR_MEMBER_SIZE)
        throw new CodecError('E_PKG_TOO_LARGE', `tar member size ${size} over ${MAX_TAR_MEMBER_SIZE}`, ctx);
      const xattrs = new Map<string, Uint8Array>();
      for (const src of [globals, pax ?? new Map<string, Uint8Array>()])
        for (const [k, v] of src)
          if (k.startsWith(XATTR_PAX_PREFIX)) xattrs.set(k.slice(XATTR_PAX_PREFIX.length), v);
      const type = h.type as TarType;
      // hard links, symlinks, dirs, devices carry no content even if a writer put a size there (POSIX)
      const bodySize = type === 'file' ? size : type === 'hardlink' ? size : 0;
      const entry: TarEntry = Object.freeze({
        path: inMember(member, () => memberPath(rawName, at)),
        rawName,
        type,
        size: bodySize,
        mode: h.mode & 0o7777,
        uid: paxNumber(rec('uid'), 'uid', at, member) ?? h.uid,
        gid: paxNumber(rec('gid'), 'gid', at, member) ?? h.gid,
        mtime: paxNumber(rec('mtime'), 'mtime', at, member) ?? h.mtime,
        linkname: type === 'hardlink' ? inMember(member, () => memberPath(link, at)) : link,
        xattrs,
        offset: firstOffset,
        dataOffset: q.position,
      });
      pax = undefined;
      longName = undefined;
      longLink = undefined;
      firstOffset = -1;
      let started = false;
      let read = 0;
      const body = (async function* () {
        if (started) throw new RangeError(`body of ${rawName} read twice`);
        started = true;
        for await (const c of q.stream(bodySize, rawName, member)) {
          read += c.length;
          yield c;
        }
      })();
      yield { entry, body };
      await body.return(undefined);
      await q.skip(bodySize - read, rawName, member);
      await q.skip(tarPadding(bodySize), `${rawName} padding`, member);
    }
  } finally {
    await q.close();
  }
}
