// Compile src/ to dist/ (tsconfig.build.json) and stamp the result. bin/imakit.js runs dist/ while
// the stamp is newer than every source file and falls back to the TypeScript sources through tsx
// otherwise, so a stale or missing build is never run. Runs on `npm ci` (the `prepare` script).
import { rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
let tsc;
try {
  tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
} catch {
  // an install without dev dependencies: the CLI still works, from source
  console.error('imakit build: typescript is not installed; the CLI will run the sources through tsx');
  process.exit(0);
}
rmSync(`${root}/dist`, { recursive: true, force: true });
const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status ?? 1);
writeFileSync(`${root}/dist/.built`, `${new Date().toISOString()}\n`);
