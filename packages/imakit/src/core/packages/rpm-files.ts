/**
 * The file list of an RPM header (rpm `include/rpm/rpmtag.h`): paths from DIRNAMES 1118 /
 * DIRINDEXES 1116 / BASENAMES 1117 (or OLDFILENAMES 1027), FILEDIGESTS 1035 in the algorithm of
 * FILEDIGESTALGO 5011 (PGPHASHALGO; absent ⇒ MD5), FILEMODES 1030, FILESIZES 1028 / LONGFILESIZES 5008,
 * FILEFLAGS 1037, FILELINKTOS 1036, and the per-file IMA signatures: tag 274 in the signature header
 * of a package file, 5090 in an installed header (`headerMergeLegacySigs` moves them; old packages
 * may carry either, so both are read). A signature is the hex of the whole `security.ima` value.
 */
import { CodecError } from '../../errors.ts';
import { type RpmEntry, type RpmHeader, RpmType, rpmTag } from './rpm-header.ts';

export const Tag = Object.freeze({
  NAME: 1000,
  VERSION: 1001,
  RELEASE: 1002,
  EPOCH: 1003,
  ARCH: 1022,
  OLDFILENAMES: 1027,
  FILESIZES: 1028,
  FILEMODES: 1030,
  FILEDIGESTS: 1035,
  FILELINKTOS: 1036,
  FILEFLAGS: 1037,
  DIRINDEXES: 1116,
  BASENAMES: 1117,
  DIRNAMES: 1118,
  LONGFILESIZES: 5008,
  FILEDIGESTALGO: 5011,
  FILESIGNATURES: 5090,
  FILESIGNATURELENGTH: 5091,
  /** in the signature header of a package file */
  SIG_FILESIGNATURES: 274,
  SIG_FILESIGNATURELENGTH: 275,
});

/** RPMFILE_* flags (rpmfiles.h) */
export const FileFlag = Object.freeze({
  CONFIG: 1,
  DOC: 2,
  MISSINGOK: 8,
  NOREPLACE: 16,
  GHOST: 64,
  LICENSE: 128,
  README: 256,
  ARTIFACT: 4096,
});

/** PGPHASHALGO → kernel hash algorithm name (rpmpgp.h). */
export const RPM_DIGEST_ALGOS: Readonly<Record<number, string>> = Object.freeze({
  1: 'md5',
  2: 'sha1',
  8: 'sha256',
  9: 'sha384',
  10: 'sha512',
  11: 'sha224',
  12: 'sha3-256',
});

export interface RpmFile {
  readonly path: string;
  readonly mode: number;
  readonly size: number;
  readonly flags: number;
  /** lowercase hex, empty for non-regular files and ghosts */
  readonly digest: string;
  readonly linkto: string;
  /** raw `security.ima` value, when the package carries one for this file */
  readonly imaSignature?: Uint8Array;
}

export interface RpmPackageInfo {
  readonly name: string;
  readonly version: string;
  readonly release: string;
  readonly epoch?: number;
  readonly arch: string;
  /** kernel name of the file digest algorithm */
  readonly digestAlgo: string;
  readonly files: readonly RpmFile[];
}

function bad(what: string, tag: number, msg: string): CodecError {
  return new CodecError('E_PKG_FORMAT', msg, { offset: 0, field: `tag ${tag}`, member: what });
}

function strings(h: RpmHeader, tag: number, what: string): string[] | undefined {
  const e = rpmTag(h, tag);
  if (!e) return undefined;
  if (e.type !== RpmType.STRING_ARRAY && e.type !== RpmType.I18NSTRING)
    throw bad(what, tag, `tag ${tag} is not a string array (type ${e.type})`);
  return e.value as string[];
}

function str(h: RpmHeader, tag: number, what: string): string | undefined {
  const e = rpmTag(h, tag);
  if (!e) return undefined;
  if (e.type === RpmType.STRING) return e.value as string;
  if (e.type === RpmType.I18NSTRING) return (e.value as string[])[0];
  throw bad(what, tag, `tag ${tag} is not a string (type ${e.type})`);
}

function ints(h: RpmHeader, tag: number, what: string, types: readonly number[]): number[] | undefined {
  const e: RpmEntry | undefined = rpmTag(h, tag);
  if (!e) return undefined;
  if (!types.includes(e.type))
    throw bad(what, tag, `tag ${tag} has type ${e.type}, expected ${types.join('/')}`);
  if (e.type === RpmType.INT64) return (e.value as bigint[]).map((x) => Number(x));
  return e.value as number[];
}

function lengthCheck(what: string, tag: number, got: number | undefined, n: number): void {
  if (got !== undefined && got !== n) throw bad(what, tag, `tag ${tag} has ${got} entries for ${n} files`);
}

/**
 * The package's identity and file list.
 * @param main the main (or installed) header
 * @param sig the signature header of a package file (per-file signatures in tag 274), if any
 * @param what names the package in errors
 * @throws CodecError E_PKG_FORMAT naming the tag; E_CODEC_UNKNOWN_ALGO for an unknown FILEDIGESTALGO
 */
export function rpmPackageInfo(main: RpmHeader, sig: RpmHeader | undefined, what: string): RpmPackageInfo {
  const name = str(main, Tag.NAME, what);
  if (name === undefined) throw bad(what, Tag.NAME, 'header has no NAME');
  let paths: string[];
  const base = strings(main, Tag.BASENAMES, what);
  if (base) {
    const dirs = strings(main, Tag.DIRNAMES, what) ?? [];
    const idx = ints(main, Tag.DIRINDEXES, what, [RpmType.INT32]) ?? [];
    lengthCheck(what, Tag.DIRINDEXES, idx.length, base.length);
    paths = base.map((b, i) => {
      const d = dirs[idx[i]!];
      if (d === undefined)
        throw bad(what, Tag.DIRINDEXES, `file ${i} has dir index ${idx[i]} of ${dirs.length}`);
      return d + b;
    });
  } else paths = strings(main, Tag.OLDFILENAMES, what) ?? [];
  const n = paths.length;
  const algoId = ints(main, Tag.FILEDIGESTALGO, what, [RpmType.INT32])?.[0] ?? 1;
  const digestAlgo = RPM_DIGEST_ALGOS[algoId];
  if (digestAlgo === undefined)
    throw new CodecError('E_CODEC_UNKNOWN_ALGO', `FILEDIGESTALGO ${algoId} is not a known PGPHASHALGO`, {
      offset: 0,
      field: `tag ${Tag.FILEDIGESTALGO}`,
      member: what,
    });
  const digests = strings(main, Tag.FILEDIGESTS, what) ?? [];
  const modes = ints(main, Tag.FILEMODES, what, [RpmType.INT16]) ?? [];
  const sizes =
    ints(main, Tag.LONGFILESIZES, what, [RpmType.INT64]) ??
    ints(main, Tag.FILESIZES, what, [RpmType.INT32]) ??
    [];
  const flags = ints(main, Tag.FILEFLAGS, what, [RpmType.INT32]) ?? [];
  const links = strings(main, Tag.FILELINKTOS, what) ?? [];
  const sigs =
    strings(main, Tag.FILESIGNATURES, what) ?? (sig ? strings(sig, Tag.SIG_FILESIGNATURES, what) : undefined);
  lengthCheck(what, Tag.FILEDIGESTS, digests.length || undefined, n);
  lengthCheck(what, Tag.FILEMODES, modes.length || undefined, n);
  lengthCheck(what, Tag.FILEFLAGS, flags.length || undefined, n);
  lengthCheck(what, Tag.FILESIGNATURES, sigs?.length, n);
  const files = paths.map((path, i): RpmFile => {
    const hex = (digests[i] ?? '').toLowerCase();
    if (hex !== '' && !/^[0-9a-f]+$/.test(hex))
      throw bad(what, Tag.FILEDIGESTS, `file ${path}: digest '${hex}' is not hex`);
    const s = sigs?.[i] ?? '';
    if (s !== '' && (s.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(s)))
      throw bad(what, Tag.FILESIGNATURES, `file ${path}: signature is not hex`);
    return Object.freeze({
      path,
      mode: modes[i] ?? 0,
      size: sizes[i] ?? 0,
      flags: flags[i] ?? 0,
      digest: hex,
      linkto: links[i] ?? '',
      ...(s !== '' ? { imaSignature: Uint8Array.from(Buffer.from(s, 'hex')) } : {}),
    });
  });
  const epoch = ints(main, Tag.EPOCH, what, [RpmType.INT32])?.[0];
  return Object.freeze({
    name,
    version: str(main, Tag.VERSION, what) ?? '',
    release: str(main, Tag.RELEASE, what) ?? '',
    ...(epoch !== undefined ? { epoch } : {}),
    arch: str(main, Tag.ARCH, what) ?? '',
    digestAlgo,
    files: Object.freeze(files),
  });
}

/** S_IFREG test on an RPM file mode. */
export function isRegularMode(mode: number): boolean {
  return (mode & 0o170000) === 0o100000;
}
