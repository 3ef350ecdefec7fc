/**
 * The regular files of trees, opened, for the tree commands (`imakit label`, `imakit verify DIR`):
 * the walk (host/walk.ts: no symlinks followed, `--exclude`, `--one-file-system`), each regular file
 * opened once with O_NOFOLLOW (host/open-file.ts), the `--owner` filter on the open file, and hard
 * links grouped so one inode is processed once and its outcome reported for every path.
 */
import { ImakitError, isImakitError } from '../../errors.ts';
import { closeFile, openRegularFile, type OpenFile } from './open-file.ts';
import { walkTree } from './walk.ts';

/** Walk options shared by the tree commands. */
export interface TreeFilesOptions {
  readonly oneFileSystem?: boolean;
  readonly exclude?: readonly string[];
  /** only files owned by this uid */
  readonly owner?: number;
}

/** One walked item. A yielded `file` is open: the consumer closes it. */
export type TreeItem =
  | { readonly kind: 'file'; readonly file: OpenFile }
  /** not a regular file, or filtered out */
  | { readonly kind: 'skipped'; readonly path: string }
  | { readonly kind: 'error'; readonly path: string; readonly error: ImakitError };

/**
 * The regular files below `roots`, opened.
 * @example for await (const it of treeFiles(['/usr/bin'])) if (it.kind === 'file') closeFile(it.file);
 */
export async function* treeFiles(
  roots: readonly string[],
  opts: TreeFilesOptions = {},
): AsyncGenerator<TreeItem> {
  for (const root of roots) {
    for await (const e of walkTree(root, {
      oneFileSystem: opts.oneFileSystem ?? false,
      exclude: opts.exclude ?? [],
    })) {
      if (e.kind === 'error') {
        yield {
          kind: 'error',
          path: e.path,
          error: new ImakitError('E_IO_READ', `${e.error.code ?? 'error'}: ${e.error.message}`, {
            path: e.path,
          }),
        };
        continue;
      }
      if (e.type !== 'file') {
        yield { kind: 'skipped', path: e.path };
        continue;
      }
      let file: OpenFile;
      try {
        file = openRegularFile(e.path);
      } catch (err) {
        if (!isImakitError(err)) throw err;
        yield { kind: 'error', path: e.path, error: err };
        continue;
      }
      if (opts.owner !== undefined && Number(file.stat.uid) !== opts.owner) {
        closeFile(file);
        yield { kind: 'skipped', path: e.path };
        continue;
      }
      yield { kind: 'file', file };
    }
  }
}

/**
 * Groups the paths of multiply-linked inodes met in one run, so each inode is processed once and
 * its outcome `O` reported for every path, including links met after it was settled. Only inodes
 * with more than one link are remembered, so memory follows the links, not the tree.
 */
export class HardLinks<O> {
  private readonly groups = new Map<string, { paths: string[]; outcome?: O }>();
  /** paths that were another link of an inode met earlier */
  hardLinks = 0;

  /** @param report called once per path with its inode's outcome */
  constructor(private readonly report: (path: string, outcome: O) => void) {}

  /**
   * A newly walked file: true when its inode is met for the first time (process it, then
   * {@link settle}); false when it is another link (the caller closes it; its outcome is reported
   * now or when the inode settles).
   */
  first(file: OpenFile): boolean {
    if (file.stat.nlink <= 1n) return true;
    const id = `${file.stat.dev}:${file.stat.ino}`;
    const g = this.groups.get(id);
    if (g === undefined) {
      this.groups.set(id, { paths: [file.path] });
      return true;
    }
    this.hardLinks++;
    if (g.outcome !== undefined) this.report(file.path, g.outcome);
    else g.paths.push(file.path);
    return false;
  }

  /** The inode of `file` came to `outcome`: report it for every path met so far. */
  settle(file: OpenFile, outcome: O): void {
    const g = file.stat.nlink <= 1n ? undefined : this.groups.get(`${file.stat.dev}:${file.stat.ino}`);
    if (g === undefined) return this.report(file.path, outcome);
    g.outcome = outcome;
    for (const p of g.paths) this.report(p, outcome);
  }
}

/** What {@link forEachInode} counted; live while it runs (progress callbacks read it). */
export interface TreeWalkCounts {
  /** regular files considered (after filters), one per path */
  files: number;
  /** distinct inodes among them, each processed once */
  inodes: number;
  /** entries skipped: not regular files, filtered out, or refused by `keep` */
  skipped: number;
  /** true once the walk has ended (only processing remains) */
  walked: boolean;
}

export interface ForEachInodeHooks {
  /** the walk options of the tree commands */
  readonly walk: TreeFilesOptions;
  /** files processed at once (memory stays flat) */
  readonly inFlight: number;
  /** a path that could not be walked or opened */
  onError(path: string, error: ImakitError): void;
  /** false: skip this open file (counted as skipped, closed here) */
  keep?(file: OpenFile): boolean;
  /** process the first path of each inode; it owns `file` (closes it, settles `links`) */
  process(file: OpenFile): Promise<void>;
  /** the walk ended; called before waiting for the files still in flight */
  onWalked?(): void;
}

/**
 * The loop the tree commands share: walk `roots`, open each regular file once, hand the first path
 * of every inode to `process` with at most `inFlight` of them at once, and close the other links
 * (their outcome reaches every path through `links`). Resolves when everything was processed; a
 * rejection of `process` rejects it after the files in flight have settled.
 */
export async function forEachInode<O>(
  roots: readonly string[],
  links: HardLinks<O>,
  counts: TreeWalkCounts,
  hooks: ForEachInodeHooks,
): Promise<void> {
  const inflight = new Set<Promise<void>>();
  try {
    for await (const it of treeFiles(roots, hooks.walk)) {
      if (it.kind === 'error') {
        hooks.onError(it.path, it.error);
        continue;
      }
      if (it.kind === 'skipped') {
        counts.skipped++;
        continue;
      }
      const file = it.file;
      if (hooks.keep !== undefined && !hooks.keep(file)) {
        closeFile(file);
        counts.skipped++;
        continue;
      }
      counts.files++;
      if (!links.first(file)) {
        closeFile(file);
        continue;
      }
      counts.inodes++;
      const p = hooks.process(file).then(() => {
        inflight.delete(p);
      });
      inflight.add(p);
      if (inflight.size >= hooks.inFlight) await Promise.race(inflight);
    }
    counts.walked = true;
    hooks.onWalked?.();
    await Promise.all(inflight);
  } finally {
    await Promise.allSettled(inflight);
  }
}
