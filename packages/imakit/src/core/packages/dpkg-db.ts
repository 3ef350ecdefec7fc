/**
 * dpkg's text formats: deb822 control paragraphs (`DEBIAN/control`, `/var/lib/dpkg/status`; deb-control(5),
 * deb822(5)), `md5sums` (`<32 hex>  <path without leading />`, deb-md5sums(5)) and `info/<pkg>.list`
 * (one absolute path a line, including directories).
 */
import { CodecError } from '../../errors.ts';

/** A status file has a few thousand packages; a paragraph over this is not dpkg's. */
export const MAX_CONTROL_FIELDS = 1024;

export type Deb822 = ReadonlyMap<string, string>;

/**
 * Parse deb822 paragraphs. Field names are case-insensitive (kept as written; look them up with
 * `field()`); continuation lines start with a space or tab and are joined with `\n`.
 * @throws CodecError E_CODEC_BAD_TEXT naming the line
 */
export function parseDeb822(text: string, what: string): Deb822[] {
  const out: Deb822[] = [];
  let cur: Map<string, string> | undefined;
  let last: string | undefined;
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  lines.forEach((line, i) => {
    if (line.trim() === '') {
      if (cur) out.push(cur);
      cur = undefined;
      last = undefined;
      return;
    }
    if (line.startsWith('#') && !cur) return;
    if (line[0] === ' ' || line[0] === '\t') {
      if (!cur || last === undefined)
        throw new CodecError('E_CODEC_BAD_TEXT', 'continuation line without a field', {
          offset: 0,
          line: i + 1,
          path: what,
        });
      cur.set(last, `${cur.get(last)!}\n${line.slice(1)}`);
      return;
    }
    const colon = line.indexOf(':');
    if (colon <= 0)
      throw new CodecError('E_CODEC_BAD_TEXT', `'${line.slice(0, 60)}' is not 'Field: value'`, {
        offset: 0,
        line: i + 1,
        path: what,
      });
    cur ??= new Map();
    if (cur.size >= MAX_CONTROL_FIELDS)
      throw new CodecError('E_PKG_TOO_LARGE', `paragraph with more than ${MAX_CONTROL_FIELDS} fields`, {
        offset: 0,
        line: i + 1,
        path: what,
      });
    last = line.slice(0, colon).toLowerCase();
    cur.set(last, line.slice(colon + 1).trim());
  });
  if (cur) out.push(cur);
  return out;
}

/** A field of a paragraph (case-insensitive). */
export function field(p: Deb822, name: string): string | undefined {
  return p.get(name.toLowerCase());
}

/**
 * Parse an md5sums file into path (absolute) → lowercase hex MD5.
 * @throws CodecError E_CODEC_BAD_TEXT naming the line
 */
export function parseMd5sums(text: string, what: string): Map<string, string> {
  const out = new Map<string, string>();
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  lines.forEach((line, i) => {
    const m = /^([0-9a-fA-F]{32}) [ *]?(.+)$/.exec(line);
    if (!m)
      throw new CodecError('E_CODEC_BAD_TEXT', `'${line.slice(0, 60)}' is not '<md5>  <path>'`, {
        offset: 0,
        line: i + 1,
        path: what,
      });
    const p = m[2]!.startsWith(' ') ? m[2]!.slice(1) : m[2]!;
    out.set(p.startsWith('/') ? p : `/${p}`, m[1]!.toLowerCase());
  });
  return out;
}

/** Parse a `.list` file: absolute paths, `/.` for the root entry dropped. */
export function parseDpkgList(text: string, what: string): string[] {
  const out: string[] = [];
  text.split('\n').forEach((line, i) => {
    if (line === '' || line === '/.') return;
    if (!line.startsWith('/'))
      throw new CodecError('E_CODEC_BAD_TEXT', `'${line.slice(0, 60)}' is not an absolute path`, {
        offset: 0,
        line: i + 1,
        path: what,
      });
    out.push(line);
  });
  return out;
}

export interface InstalledDeb {
  readonly name: string;
  readonly version: string;
  readonly arch: string;
  /** name as used for `info/` files: `pkg` or `pkg:arch` for Multi-Arch: same packages */
  readonly infoName: string;
}

/** Installed packages of a status file (Status: … installed), with the `info/` file stem of each. */
export function installedPackages(status: readonly Deb822[]): InstalledDeb[] {
  const out: InstalledDeb[] = [];
  for (const p of status) {
    const st = field(p, 'Status')?.split(/\s+/);
    if (!st || st[2] !== 'installed') continue;
    const name = field(p, 'Package') ?? '';
    const arch = field(p, 'Architecture') ?? '';
    const multi = field(p, 'Multi-Arch') === 'same';
    out.push(
      Object.freeze({
        name,
        version: field(p, 'Version') ?? '',
        arch,
        infoName: multi ? `${name}:${arch}` : name,
      }),
    );
  }
  return out;
}
