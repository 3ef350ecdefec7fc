/**
 * The live IMA measurement lists in securityfs (formats.md §1.1). Paths are adapter defaults.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** Candidate securityfs IMA directories (newer kernels also expose `integrity/ima`). */
export const IMA_SECURITYFS_DIRS: readonly string[] = Object.freeze([
  '/sys/kernel/security/ima',
  '/sys/kernel/security/integrity/ima',
]);

/** The live IMA directory, or undefined when securityfs/IMA is not available. */
export function findImaSecurityfs(dirs: readonly string[] = IMA_SECURITYFS_DIRS): string | undefined {
  return dirs.find((d) => existsSync(join(d, 'binary_runtime_measurements')));
}

/** The per-bank binary lists present: bank → path (the classic file as `sha1` when no per-bank files). */
export function listBinaryLists(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of readdirSync(dir)) {
    const m = /^binary_runtime_measurements_(.+)$/.exec(f);
    if (m) out.set(m[1]!, join(dir, f));
  }
  if (out.size === 0) out.set('sha1', join(dir, 'binary_runtime_measurements'));
  return out;
}

/** The bank a list file name denotes (`*_runtime_measurements_<alg>`), if any. */
export function bankFromListName(path: string): string | undefined {
  return /_runtime_measurements_([a-z0-9_-]+)$/.exec(path)?.[1];
}
