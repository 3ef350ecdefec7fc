/**
 * Real Debian packages for the package tests and the benchmark, downloaded with `apt-get download`
 * into the user's cache dir (`$XDG_CACHE_HOME/imakit/debs`, else `~/.cache/imakit/debs`) once. A
 * failed download throws: the tests that need the packages fail, they never skip.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export function debCacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  const dir = join(base, 'imakit', 'debs');
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Path of the cached `.deb` of each package (downloading the missing ones). */
export function cachedDebs(names: readonly string[]): Map<string, string> {
  const dir = debCacheDir();
  const find = (n: string) => readdirSync(dir).find((f) => f.startsWith(`${n}_`) && f.endsWith('.deb'));
  const missing = names.filter((n) => !find(n));
  if (missing.length > 0) {
    try {
      execFileSync('apt-get', ['download', ...missing], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      // the package lists may be missing on a fresh machine: update once and retry
      execFileSync('apt-get', ['update'], { stdio: 'ignore' });
      execFileSync('apt-get', ['download', ...missing], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
      void e;
    }
  }
  const out = new Map<string, string>();
  for (const n of names) {
    const f = find(n);
    if (!f) throw new Error(`apt-get download ${n} left no .deb in ${dir}`);
    out.set(n, join(dir, f));
  }
  return out;
}
