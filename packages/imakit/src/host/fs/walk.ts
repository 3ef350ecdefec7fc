/**
 * Directory tree walking for labelling (`imakit label`, `imakit evmctl -r`).
 *
 * Streams entries with `opendir` (flat memory on trees of any size), never follows symlinks (a
 * symlink's target may be outside the tree, and IMA appraises the target under its own path), and
 * optionally stays on one filesystem like evmctl `-t m` / `find -xdev`. Unreadable directories are
 * reported as entries of kind `error` and the walk continues, so one bad directory does not abort a
 * whole tree.
 */
import { opendir, lstat } from 'node:fs/promises';
import type { Dirent, Stats } from 'node:fs';
import { basename, join, relative, sep } from 'node:path';

/** File type as seen by lstat/readdir. */
export type EntryType = 'file' | 'dir' | 'symlink' | 'block' | 'char' | 'fifo' | 'socket' | 'unknown';

/** One walked entry. */
export type WalkEntry =
  | { readonly kind: 'entry'; readonly path: string; readonly type: EntryType }
  | { readonly kind: 'error'; readonly path: string; readonly error: NodeJS.ErrnoException };

export interface WalkOptions {
  /** do not descend into directories on another device than the root's (`find -xdev`) */
  readonly oneFileSystem?: boolean;
  /**
   * glob patterns to skip (and not descend into): a pattern without `/` matches the entry's base
   * name, one with `/` matches the path relative to the walked root. `*` `?` `[...]` and `**`.
   */
  readonly exclude?: readonly string[];
  /** also yield directories themselves (default false) */
  readonly yieldDirs?: boolean;
}

/**
 * Walk `root` depth-first. A root that is not a directory is yielded as itself.
 *
 * @example
 * for await (const e of walkTree('/usr/bin', { oneFileSystem: true })) if (e.kind === 'entry' && e.type === 'file') …
 */
export async function* walkTree(root: string, opts: WalkOptions = {}): AsyncGenerator<WalkEntry> {
  const matchers = (opts.exclude ?? []).map(globToMatcher);
  const excluded = (path: string): boolean => {
    if (matchers.length === 0) return false;
    const rel = relative(root, path).split(sep).join('/');
    const base = basename(path);
    return matchers.some((m) => (m.anchored ? m.re.test(rel) : m.re.test(base)));
  };
  let rootStat: Stats;
  try {
    rootStat = await lstat(root);
  } catch (e) {
    yield { kind: 'error', path: root, error: e as NodeJS.ErrnoException };
    return;
  }
  if (!rootStat.isDirectory()) {
    yield { kind: 'entry', path: root, type: statType(rootStat) };
    return;
  }
  const rootDev = rootStat.dev;
  // explicit stack instead of recursion: deep trees cannot overflow
  const stack: string[] = [root];
  while (stack.length > 0) {
    const dir = stack.pop()!;
    if (opts.yieldDirs) yield { kind: 'entry', path: dir, type: 'dir' };
    let handle;
    try {
      handle = await opendir(dir, { bufferSize: 256 });
    } catch (e) {
      yield { kind: 'error', path: dir, error: e as NodeJS.ErrnoException };
      continue;
    }
    const subdirs: string[] = [];
    try {
      for await (const d of handle) {
        const path = join(dir, d.name);
        if (excluded(path)) continue;
        let type = direntType(d);
        if (type === 'unknown') {
          try {
            type = statType(await lstat(path));
          } catch (e) {
            yield { kind: 'error', path, error: e as NodeJS.ErrnoException };
            continue;
          }
        }
        if (type === 'dir') {
          if (opts.oneFileSystem) {
            try {
              if ((await lstat(path)).dev !== rootDev) continue;
            } catch (e) {
              yield { kind: 'error', path, error: e as NodeJS.ErrnoException };
              continue;
            }
          }
          subdirs.push(path);
        } else {
          yield { kind: 'entry', path, type };
        }
      }
    } catch (e) {
      yield { kind: 'error', path: dir, error: e as NodeJS.ErrnoException };
    }
    // keep readdir order for the traversal: push in reverse so the first subdirectory pops first
    for (let i = subdirs.length - 1; i >= 0; i--) stack.push(subdirs[i]!);
  }
}

function direntType(d: Dirent): EntryType {
  if (d.isFile()) return 'file';
  if (d.isDirectory()) return 'dir';
  if (d.isSymbolicLink()) return 'symlink';
  if (d.isBlockDevice()) return 'block';
  if (d.isCharacterDevice()) return 'char';
  if (d.isFIFO()) return 'fifo';
  if (d.isSocket()) return 'socket';
  return 'unknown';
}

/** The entry type of an lstat result. */
export function statType(s: Stats): EntryType {
  if (s.isFile()) return 'file';
  if (s.isDirectory()) return 'dir';
  if (s.isSymbolicLink()) return 'symlink';
  if (s.isBlockDevice()) return 'block';
  if (s.isCharacterDevice()) return 'char';
  if (s.isFIFO()) return 'fifo';
  if (s.isSocket()) return 'socket';
  return 'unknown';
}

interface GlobMatcher {
  readonly re: RegExp;
  /** pattern contains `/`: match the root-relative path, else the base name */
  readonly anchored: boolean;
}

/**
 * Compile a glob: `**` any number of path segments, `*` within a segment, `?` one character,
 * `[abc]` / `[!abc]` classes. Exported for tests.
 */
export function globToMatcher(glob: string): GlobMatcher {
  const anchored = glob.includes('/');
  const g = glob.startsWith('/') ? glob.slice(1) : glob;
  let re = '';
  for (let i = 0; i < g.length; i++) {
    const c = g[i]!;
    if (c === '*') {
      if (g[i + 1] === '*') {
        // `**/` matches zero or more directories; a trailing `**` matches everything below
        if (g[i + 2] === '/') {
          re += '(?:.*/)?';
          i += 2;
        } else {
          re += '.*';
          i += 1;
        }
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = g.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        let body = g.slice(i + 1, end);
        if (body.startsWith('!')) body = '^' + body.slice(1);
        re += `[${body.replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return { re: new RegExp(`^${re}$`), anchored };
}
