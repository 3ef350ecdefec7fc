// Which CLI entry the launcher runs: the compiled dist/ (scripts/build.mjs) when its stamp is newer
// than every file under src/, else the TypeScript sources through tsx. A stale build is never run;
// IMAKIT_FROM_SOURCE=1 forces the sources.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/**
 * @param {string} root the package directory
 * @param {Record<string, string | undefined>} env
 * @returns {{ kind: 'dist' | 'source', reason: string }}
 */
export function chooseEntry(root, env) {
  if (env.IMAKIT_FROM_SOURCE === '1') return { kind: 'source', reason: 'IMAKIT_FROM_SOURCE=1' };
  let built;
  try {
    built = statSync(join(root, 'dist', '.built')).mtimeMs;
  } catch {
    return { kind: 'source', reason: 'no build (npm run build)' };
  }
  const src = join(root, 'src');
  for (const rel of readdirSync(src, { recursive: true })) {
    const m = statSync(join(src, String(rel))).mtimeMs;
    if (m > built) return { kind: 'source', reason: `src/${rel} is newer than the build` };
  }
  return { kind: 'dist', reason: 'build is up to date' };
}
