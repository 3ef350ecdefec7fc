// Build what the launcher (bin/imakit.js) runs, and stamp the result. Runs on `npm ci` (the
// `prepare` script) and `npm run build`.
//
//  1. tsc compiles src/ into dist/ (tsconfig.build.json): the library's JavaScript and the worker
//     thread modules (host/workers/module-worker.ts starts `dist/host/.../NAME.js`).
//  2. esbuild bundles the CLI (src/cli/main.ts) into dist/cli.cjs and the chunks it loads on demand,
//     dist/cli-chunks/*.cjs: a chunk per command (the command registry's dynamic imports) and per
//     group of modules the same commands share, so a command reads, compiles and initialises only
//     the code it reaches (`log verify --refs` about 0.8 of the 1.3 MB, none of the package
//     generators, TPM, VM or verifier code). A few files, not one per module: resolving and linking
//     some 70 modules cost more than the work of a one-file command (issue 10 item 11). CommonJS,
//     because on Node 20 only a classic script can be given a V8 code cache (vm.Script cachedData;
//     ES modules get one only through module.enableCompileCache, Node >= 22.1): esbuild splits
//     only ES module output, so each file is then transformed to CommonJS and bin/load-bundle.js
//     serves the chunks' require() calls.
//  3. V8 code caches, FILE.cache beside each file, made by loading the bundle exactly as the
//     launcher does and running a few representative commands, so the functions a typical command
//     needs are in them (measured: the cache halves the compile time of the bundle; bench/startup.ts).
//
// bin/imakit.js runs the bundle while the stamp is newer than every source file and falls back to
// the TypeScript sources through tsx otherwise, so a stale or missing build is never run.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { STAMP, stampText } from '../bin/entry.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);
let tsc;
let esbuild;
try {
  tsc = require.resolve('typescript/bin/tsc');
  esbuild = await import('esbuild');
} catch {
  // an install without dev dependencies: the CLI still works, from source
  console.error(
    'imakit build: typescript or esbuild is not installed; the CLI will run the sources through tsx',
  );
  process.exit(0);
}
// before tsc reads src/: a source saved from now on makes this build stale (bin/entry.js)
const started = Date.now();
rmSync(join(root, 'dist'), { recursive: true, force: true });
const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status ?? 1);

/**
 * Dependencies bundled into dist/cli.cjs: pure JavaScript, and measured to cost start-up time when
 * loaded module by module. Every other dependency stays a runtime require() of node_modules, because
 * it may find files next to itself (a native addon: fs-xattr; WASM: sql.js, xz-decompress) or be
 * added later by someone who has not checked whether it survives bundling.
 */
const BUNDLED =
  /^(commander|@commander-js\/extra-typings|@noble\/[^/]+|@peculiar\/[^/]+|picocolors|cli-progress)(\/|$)/;

const srcDir = join(root, 'src');
const distDir = join(root, 'dist');

/** @type {import('esbuild').Plugin} */
const cliPlugin = {
  name: 'imakit-cli',
  setup(build) {
    // Only our own sources decide what is external; a bundled package's own imports are bundled.
    build.onResolve({ filter: /^[^./]/ }, (args) => {
      if (args.path.startsWith('node:') || !args.importer.startsWith(srcDir)) return undefined;
      return BUNDLED.test(args.path) ? undefined : { path: args.path, external: true };
    });
    // import.meta.url in a source file becomes the URL of its tsc-compiled twin in dist/, so that
    // paths computed from it (the native addons in build/, scripts/setup-kernel.sh, worker modules
    // started beside the caller) resolve as they do for the compiled modules.
    build.onLoad({ filter: /\.ts$/ }, (args) => {
      if (!args.path.startsWith(srcDir)) return undefined;
      const text = readFileSync(args.path, 'utf8');
      if (!text.includes('import.meta.url')) return { contents: text, loader: 'ts' };
      const twin = relative(srcDir, args.path).replace(/\.ts$/, '.js');
      return {
        contents: text.replaceAll('import.meta.url', `__imakitUrl(${JSON.stringify(twin)})`),
        loader: 'ts',
      };
    });
  },
};

const bundle = join(distDir, 'cli.cjs');
const chunkDir = join(distDir, 'cli-chunks');
const esmDir = join(distDir, 'cli-esm');
// ES module output is where esbuild splits: one chunk per command (the registry's dynamic imports)
// and per group of modules shared by the same commands; each then becomes CommonJS (below)
await esbuild.build({
  entryPoints: { cli: join(srcDir, 'cli/main.ts') },
  outdir: esmDir,
  bundle: true,
  splitting: true,
  format: 'esm',
  chunkNames: '[name]-[hash]',
  platform: 'node',
  target: 'node20.19',
  plugins: [cliPlugin],
  logLevel: 'warning',
  legalComments: 'none',
  // a smaller file is read, hashed and deserialised faster; identifiers are kept so that an
  // internal error's stack still names the functions
  minifyWhitespace: true,
  minifySyntax: true,
});
// CommonJS, for the code cache (above); import() of a chunk becomes a require() the loader
// (bin/load-bundle.js) serves from dist/cli-chunks/, and __imakitUrl is the loader's
mkdirSync(chunkDir, { recursive: true });
for (const f of readdirSync(esmDir)) {
  const { code } = await esbuild.transform(readFileSync(join(esmDir, f), 'utf8'), {
    format: 'cjs',
    loader: 'js',
    platform: 'node',
    target: 'node20.19',
    supported: { 'dynamic-import': false },
    minifyWhitespace: true,
    minifySyntax: true,
  });
  writeFileSync(f === 'cli.js' ? bundle : join(chunkDir, f.replace(/\.js$/, '.cjs')), code);
}
rmSync(esmDir, { recursive: true, force: true });

// The code caches: a child process loads the bundle through bin/load-bundle.js (the launcher's own
// loader, so the cached source text is byte-identical), runs commands that touch the common paths
// (the evmctl drop-in verifying a signature with a certificate, the modern CLI's help, a list
// verified against a reference set: `log verify --refs`, bench/refs-eval.ts) and writes the cache
// of every file, with the functions those commands compiled.
const work = mkdtempSync(join(tmpdir(), 'imakit-build-'));
try {
  const warm = `
    import { loadBundle, writeCodeCaches } from ${JSON.stringify(new URL('../bin/load-bundle.js', import.meta.url).href)};
    const [bundle, vectors, work] = process.argv.slice(1);
    const quiet = { stdout() {}, stderr() {}, isTTY: false, env: {}, cwd: work, readStdin: async () => '' };
    const { exports, scripts } = loadBundle(bundle, { cache: false });
    const f = work + '/f';
    await import('node:fs').then((fs) => fs.writeFileSync(f, 'imakit\\n'));
    await exports.main(['evmctl', 'ima_sign', '-k', vectors + '/rsa2048.key', '-a', 'sha256', '--sigfile', f], quiet);
    await exports.main(['evmctl', 'ima_verify', '--sigfile', '--key', vectors + '/rsa2048.cer', f], quiet);
    await exports.main(['--help'], quiet);
    const list = vectors + '/synthetic_binary_runtime_measurements_sha1';
    await exports.main(['refs', 'from-list', list, '--out', work + '/refs.imr'], quiet);
    await exports.main(['log', 'verify', list, '--refs', work + '/refs.imr', '--pcrs', 'sha256,' + vectors + '/synthetic_pcrs_sha256.txt'], quiet);
    writeCodeCaches(bundle, scripts);
  `;
  const c = spawnSync(
    process.execPath,
    ['--input-type=module', '-e', warm, bundle, join(root, 'test/vectors'), work],
    { encoding: 'utf8', maxBuffer: 256 << 20 },
  );
  // no cache only costs start-up time; the bundle still runs
  if (c.status !== 0) console.error(`imakit build: no code cache (${c.stderr.trim().split('\n').pop()})`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
writeFileSync(join(distDir, STAMP), stampText(root, started));
