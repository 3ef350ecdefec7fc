// Which CLI entry the launcher runs: the bundle dist/cli.cjs (scripts/build.mjs), or the TypeScript
// sources through tsx. A stale build is never run: in a checkout the bundle runs only while its
// stamp is newer than every source file. The stamp lists the files src/ held at build time, so the
// launcher stats those and lists no directories (a file added since matters only once an existing
// file imports it, and that edit is seen); the full walk cost some 10 ms a command on a loaded
// machine. An installed package (a path through node_modules) has sources nobody edits, so there
// nothing is compared. IMAKIT_FROM_SOURCE=1 forces the sources.
'use strict';
const { readdirSync, readFileSync, statSync } = require('node:fs');
const { join, sep } = require('node:path');

/** The build stamp's name, in dist/: its modification time is the build's. */
const STAMP = '.built';

/**
 * Every file under `dir`, relative to it (for the stamp, at build time).
 * @returns {string[]}
 */
function sourceFiles(dir, rel = '') {
  return readdirSync(join(dir, rel), { withFileTypes: true }).flatMap((d) => {
    const r = rel === '' ? d.name : `${rel}/${d.name}`;
    return d.isDirectory() ? sourceFiles(dir, r) : [r];
  });
}

/**
 * The stamp's text: when the build started (a file saved during the build is newer than that, so
 * the build that may have missed it is not run) and the source files it saw.
 * @param {string} root the package directory
 * @param {number} startedMs when the build started reading src/ (ms since the epoch)
 */
function stampText(root, startedMs) {
  return `${JSON.stringify({ startedMs, sources: sourceFiles(join(root, 'src')) })}\n`;
}

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
 * The first of `files` (relative to `dir`) modified after `than`, or missing.
 * @returns {string | undefined}
 */
function firstNewer(dir, files, than) {
  for (const f of files) {
    const st = statSync(join(dir, f), { throwIfNoEntry: false });
    if (st === undefined || st.mtimeMs > than) return f;
  }
  return undefined;
}

/**
 * @param {string} root the package directory
 * @param {Record<string, string | undefined>} env
 * @returns {{ kind: 'dist' | 'source', reason: string }}
 */
function chooseEntry(root, env) {
  if (env.IMAKIT_FROM_SOURCE === '1') return { kind: 'source', reason: 'IMAKIT_FROM_SOURCE=1' };
  let built;
  let stamp;
  try {
    const path = join(root, 'dist', STAMP);
    built = statSync(path).mtimeMs;
    statSync(join(root, 'dist', 'cli.cjs'));
    stamp = readFileSync(path, 'utf8');
  } catch {
    return { kind: 'source', reason: 'no build (npm run build)' };
  }
  if (root.split(sep).includes('node_modules')) return { kind: 'dist', reason: 'installed package' };
  let sources;
  try {
    const j = JSON.parse(stamp);
    if (typeof j.startedMs === 'number') built = j.startedMs;
    sources = j.sources;
  } catch {
    // a stamp without the list (an older build): walk src/
  }
  const src = join(root, 'src');
  const newer = Array.isArray(sources) ? firstNewer(src, sources, built) : newerThan(src, built);
  if (newer !== undefined)
    return { kind: 'source', reason: `src/${newer} is newer than the build (or gone)` };
  return { kind: 'dist', reason: 'build is up to date' };
}

module.exports = { STAMP, sourceFiles, stampText, chooseEntry };
