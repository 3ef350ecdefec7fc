// Load the bundled CLI (scripts/build.mjs): dist/cli.cjs and, when it first requires them, the
// chunks it was split into (dist/cli-chunks/*.cjs: one per command and per shared group of modules,
// so a command compiles and runs only the code it reaches). Each file is loaded as a CommonJS
// module compiled with its V8 code cache (FILE.cache): this is what `require()` does, plus
// `cachedData`, which Node 20 offers only through vm.Script (no module.enableCompileCache). The
// build makes the caches through this same loader, so the compiled text is byte-identical.
'use strict';
const { readdirSync, readFileSync, writeFileSync } = require('node:fs');
const { createRequire } = require('node:module');
const { dirname, join } = require('node:path');
const { pathToFileURL } = require('node:url');
const { Script, constants } = require('node:vm');

/** The directory of the chunks beside the entry file. */
const chunkDir = (file) => join(dirname(file), 'cli-chunks');

/** The wrapper a file is compiled in (the same text for the build's caches and the launcher). */
const wrap = (text) =>
  `(function (exports, require, module, __filename, __dirname, __imakitUrl) {${text}\n})`;

function compile(path, cachedData) {
  return new Script(wrap(readFileSync(path, 'utf8')), {
    filename: path,
    cachedData,
    // dynamic import() of an external package from inside the bundle goes to the normal loader
    importModuleDynamically: constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
}

/** The code cache beside `path`, or undefined when there is none. */
function readCodeCache(path) {
  try {
    return readFileSync(`${path}.cache`);
  } catch {
    return undefined;
  }
}

/**
 * Load the entry `file` (dist/cli.cjs); its chunks load as they are required.
 * @param {string} file path of dist/cli.cjs
 * @param {{ cache?: boolean }} [opts] cache: use the code caches (default true)
 * @returns {{ exports: { main: (argv: readonly string[], io?: unknown) => Promise<number> }, script: Script, scripts: Map<string, Script> }}
 */
function loadBundle(file, opts = {}) {
  const useCache = opts.cache !== false;
  const dist = dirname(file);
  const chunks = chunkDir(file);
  const outside = createRequire(file);
  /** @type {Map<string, { exports: unknown }>} */
  const modules = new Map();
  /** @type {Map<string, Script>} */
  const scripts = new Map();
  // paths computed from a source file's import.meta.url: its tsc-compiled twin in dist/
  const imakitUrl = (twin) => pathToFileURL(join(dist, twin)).href;
  const load = (path) => {
    let m = modules.get(path);
    if (m) return m.exports;
    m = { exports: {} };
    modules.set(path, m);
    const script = compile(path, useCache ? readCodeCache(path) : undefined);
    scripts.set(path, script);
    script.runInThisContext()(m.exports, req, m, path, dist, imakitUrl);
    return m.exports;
  };
  // the chunks name each other './NAME.js' (esbuild's ES module output, turned into CommonJS)
  const req = (spec) =>
    spec.startsWith('./') ? load(join(chunks, `${spec.slice(2).replace(/\.js$/, '')}.cjs`)) : outside(spec);
  const exports = load(file);
  return { exports, script: scripts.get(file), scripts };
}

/**
 * Write the code cache of the entry and of every chunk: from `scripts` for the files that ran (their
 * lazily compiled functions included), else compiled afresh (top-level code only).
 * @param {string} file path of dist/cli.cjs
 * @param {Map<string, Script>} scripts what loadBundle loaded
 */
function writeCodeCaches(file, scripts) {
  const chunks = chunkDir(file);
  const all = [
    file,
    ...readdirSync(chunks)
      .filter((f) => f.endsWith('.cjs'))
      .map((f) => join(chunks, f)),
  ];
  for (const path of all)
    writeFileSync(`${path}.cache`, (scripts.get(path) ?? compile(path, undefined)).createCachedData());
}

module.exports = { loadBundle, readCodeCache, writeCodeCaches };
