#!/usr/bin/env node
// The package's `install` script: builds the optional native addons (native/binding.gyp: the
// FS_IOC_GETVERSION ioctl and the SHA hashers) when a C toolchain is present, and otherwise leaves
// imakit on its TypeScript fallbacks. It always exits 0 and prints one line: an install must never
// fail for want of a compiler (`imakit doctor` shows which fallbacks are in use). binding.gyp lives
// in native/, not the package root, so npm does not run its implicit, failing `node-gyp rebuild`.
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { accessSync, constants } from 'node:fs';

const root = fileURLToPath(new URL('..', import.meta.url));
const note = (msg) => console.error(`imakit: ${msg}`);

function onPath(cmd) {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, cmd), constants.X_OK);
      return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}

function main() {
  const missing = [['cc', 'gcc', 'clang'], ['make'], ['python3', 'python']]
    .filter((alts) => !alts.some(onPath))
    .map((alts) => alts[0]);
  if (missing.length > 0) {
    note(`native addons not built (no ${missing.join(', ')} on PATH); using the TypeScript fallbacks`);
    return;
  }
  // npm sets npm_config_node_gyp to its bundled node-gyp for lifecycle scripts
  const gyp = process.env.npm_config_node_gyp;
  const [cmd, args] = gyp ? [process.execPath, [gyp]] : ['node-gyp', []];
  const r = spawnSync(cmd, [...args, 'rebuild', '--directory', join(root, 'native')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (r.error || r.status !== 0) {
    const why =
      r.error?.message ??
      `${
        String(r.stderr)
          .split('\n')
          .find((l) => /error/i.test(l)) ?? `status ${r.status}`
      }`;
    note(`native addons not built (node-gyp failed: ${why.trim()}); using the TypeScript fallbacks`);
    return;
  }
  // the loaders (host/fs/inode.ts, host/workers/native-hash.ts) look in the package's build/Release
  const from = join(root, 'native', 'build', 'Release');
  const to = join(root, 'build', 'Release');
  mkdirSync(to, { recursive: true });
  const built = readdirSync(from).filter((f) => f.endsWith('.node'));
  for (const f of built) copyFileSync(join(from, f), join(to, f));
  note(`native addons built (${built.map((f) => f.replace(/\.node$/, '')).join(', ')})`);
}

try {
  main();
} catch (e) {
  note(
    `native addons not built (${e instanceof Error ? e.message : String(e)}); using the TypeScript fallbacks`,
  );
}
process.exitCode = 0;
