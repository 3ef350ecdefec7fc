// Which CLI entry the launcher runs: the bundle dist/cli.cjs (scripts/build.mjs), or the TypeScript
// sources through tsx. A stale build is never run: in a checkout the bundle runs only while its
// stamp is newer than every file under src/. An installed package (a path through node_modules)
// has sources nobody edits, so there nothing is compared: the walk stats some 200 files, a few
// milliseconds, a large share of a short command's start-up. IMAKIT_FROM_SOURCE=1 forces the
// sources.
import { readdirSync, statSync } from 'node:fs';
import { join, sep } from 'node:path';

/** The build stamp's name, in dist/: its modification time is the build's. */
export const STAMP = '.built';

/**
 * The first file under `dir` modified after `than` (ms since the epoch).
 * @returns {string | undefined} its path relative to `dir`
 */
function newerThan(dir, than, rel = '') {
  for (const d of readdirSync(join(dir, rel), { withFileTypes: true })) {
    const r = rel === '' ? d.name : `${rel}/${d.name}`;
    if (d.isDirectory()) {
      const found = newerThan(dir, than, r);
      if (found !== undefined) return found;
    } else if (statSync(join(dir, r)).mtimeMs > than) return r;
  }
  return undefined;
}

/**
 * @param {string} root the package directory
 * @param {Record<string, string | undefined>} env
 * @returns {{ kind: 'dist' | 'source', reason: string }}
 */
export function chooseEntry(root, env) {
  if (env.IMAKIT_FROM_SOURCE === '1') return { kind: 'source', reason: 'IMAKIT_FROM_SOURCE=1' };
  let built;
  try {
    built = statSync(join(root, 'dist', STAMP)).mtimeMs;
    statSync(join(root, 'dist', 'cli.cjs'));
  } catch {
    return { kind: 'source', reason: 'no build (npm run build)' };
  }
  if (root.split(sep).includes('node_modules')) return { kind: 'dist', reason: 'installed package' };
  const newer = newerThan(join(root, 'src'), built);
  if (newer !== undefined) return { kind: 'source', reason: `src/${newer} is newer than the build` };
  return { kind: 'dist', reason: 'build is up to date' };
}
