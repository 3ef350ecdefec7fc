#!/usr/bin/env node
// The package as a consumer gets it (run by .ci/run; `npm run check:package`): `npm pack`, install
// the tarball into an empty project (its dependencies come from the npm registry) with a PATH that
// has no C compiler, make or python, then
//  - the install succeeds and imakit's install script says the addons were not built,
//  - every entry in package.json "exports" imports from plain Node (no tsx, no .ts files),
//  - a strict NodeNext TypeScript consumer type-checks against the shipped declarations,
//  - the CLI runs, and `imakit doctor --json` reports the TypeScript fallbacks in use.
// Prints one line per check and `N passed, N failed, 0 skipped`; exits non-zero on any failure.
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const pkgDir = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
const work = mkdtempSync(join(tmpdir(), 'imakit-package-'));
const results = [];

function check(name, fn) {
  try {
    fn();
    results.push(true);
    console.log(`ok - ${name}`);
  } catch (e) {
    results.push(false);
    console.log(`not ok - ${name}\n  ${String(e instanceof Error ? e.message : e).replace(/\n/g, '\n  ')}`);
  }
}

function sh(cmd, args, opts) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  if (r.error) throw r.error;
  return r;
}

function must(r, what) {
  if (r.status !== 0) throw new Error(`${what} exited ${r.status}\n${r.stdout}\n${r.stderr}`);
  return r;
}

function whichReal(cmd) {
  const r = sh('sh', ['-c', `command -v ${cmd}`]);
  if (r.status !== 0) throw new Error(`${cmd} not found`);
  return realpathSync(r.stdout.trim());
}

// npm's own CLI script, so npm runs with the restricted PATH below without needing itself on it
const npmCli = process.env.npm_execpath?.endsWith('.js') ? process.env.npm_execpath : whichReal('npm');

// a PATH with node and a shell only: no cc, gcc, make, python (the consumer without a toolchain)
const bare = join(work, 'bare-bin');
mkdirSync(bare);
symlinkSync(process.execPath, join(bare, 'node'));
symlinkSync(whichReal('sh'), join(bare, 'sh'));
const bareEnv = { ...process.env, PATH: bare };
for (const k of Object.keys(bareEnv)) if (k.startsWith('npm_')) delete bareEnv[k];

let tarball;
check('npm pack (prepare builds dist/ with declarations)', () => {
  const r = must(
    sh(process.execPath, [npmCli, 'pack', '--json', '--pack-destination', work], { cwd: pkgDir }),
    'npm pack',
  );
  const [info] = JSON.parse(r.stdout.slice(r.stdout.indexOf('[')));
  tarball = join(work, info.filename);
  const files = new Set(info.files.map((f) => f.path));
  for (const f of [
    'dist/core/index.js',
    'dist/core/index.d.ts',
    'scripts/install-native.mjs',
    'native/binding.gyp',
  ])
    if (!files.has(f)) throw new Error(`${f} missing from the tarball`);
  if (files.has('binding.gyp'))
    throw new Error('binding.gyp at the package root: npm would run node-gyp on install');
});

if (tarball === undefined) {
  // nothing to install: the remaining checks would only repeat the failure
  rmSync(work, { recursive: true, force: true });
  console.log('0 passed, 1 failed, 0 skipped');
  process.exit(1);
}

const consumer = join(work, 'consumer');
let installLog = '';
check('install the tarball into an empty project with no C toolchain on PATH', () => {
  mkdirSync(consumer);
  writeFileSync(
    join(consumer, 'package.json'),
    JSON.stringify({ name: 'consumer', private: true, type: 'module' }),
  );
  const ts = pkg.devDependencies.typescript;
  const types = pkg.devDependencies['@types/node'];
  const r = must(
    sh(
      process.execPath,
      [
        npmCli,
        'install',
        '--no-audit',
        '--no-fund',
        '--foreground-scripts',
        tarball,
        `typescript@${ts}`,
        `@types/node@${types}`,
      ],
      { cwd: consumer, env: bareEnv },
    ),
    'npm install',
  );
  installLog = r.stdout + r.stderr;
  if (!/imakit: native addons not built/.test(installLog))
    throw new Error(`no note from the install script:\n${installLog}`);
});

const entries = Object.keys(pkg.exports)
  .filter((k) => k !== './package.json')
  .map((k) => `imakit/${k.slice(2)}`);
check(`plain Node imports ${entries.join(', ')}`, () => {
  const code = entries
    .map(
      (e, i) =>
        `const m${i} = await import('${e}'); if (Object.keys(m${i}).length === 0) throw new Error('${e} exports nothing');`,
    )
    .join('\n');
  must(
    sh(process.execPath, ['--input-type=module', '-e', code], { cwd: consumer, env: bareEnv }),
    'node import',
  );
});

check('a NodeNext consumer type-checks against the declarations (skipLibCheck off for imakit)', () => {
  writeFileSync(
    join(consumer, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        target: 'ES2022',
        strict: true,
        noEmit: true,
        types: ['node'],
        skipLibCheck: false,
      },
      include: ['consumer.ts'],
    }),
  );
  writeFileSync(
    join(consumer, 'consumer.ts'),
    `import { parseImaXattr, hashAlgoByName } from 'imakit/core';
import { Emulator } from 'imakit/kernel';
import { hashFileSync } from 'imakit/host';
import { ImakitError, type ErrorCode } from 'imakit/errors';
const code: ErrorCode = 'E_CODEC_TRUNCATED';
const e: ImakitError = new ImakitError(code, 'x');
const digest: Uint8Array = hashFileSync('package.json', ['sha256']).digests.get('sha256')!;
export const used = [parseImaXattr, hashAlgoByName, Emulator, e, digest];
`,
  );
  const tsc = join(consumer, 'node_modules/typescript/bin/tsc');
  must(sh(process.execPath, [tsc, '-p', '.'], { cwd: consumer, env: bareEnv }), 'tsc');
});

check('the CLI runs and imakit doctor --json reports the TypeScript fallbacks', () => {
  const bin = join(consumer, 'node_modules/.bin/imakit');
  const v = must(
    sh(process.execPath, [bin, '--version'], { cwd: consumer, env: bareEnv }),
    'imakit --version',
  );
  if (!v.stdout.includes(pkg.version)) throw new Error(`--version printed ${v.stdout}`);
  const d = must(
    sh(process.execPath, [bin, 'doctor', '--json'], { cwd: consumer, env: bareEnv }),
    'imakit doctor',
  );
  const report = JSON.parse(d.stdout);
  for (const a of report.native)
    if (a.loaded !== false) throw new Error(`addon ${a.name} loaded although nothing was compiled`);
});

rmSync(work, { recursive: true, force: true });
const failed = results.filter((r) => !r).length;
console.log(`${results.length - failed} passed, ${failed} failed, 0 skipped`);
process.exitCode = failed > 0 ? 1 : 0;
