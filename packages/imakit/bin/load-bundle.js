// Load the bundled CLI (dist/cli.cjs, scripts/build.mjs) as a CommonJS module compiled with its V8
// code cache. This is what `require()` does, plus `cachedData`: Node 20 has no
// module.enableCompileCache, and compiling the bundle is a large share of a short command's time.
// The build makes the cache through this same function, so the compiled text is byte-identical.
'use strict';
const { readFileSync } = require('node:fs');
const { createRequire } = require('node:module');
const { dirname } = require('node:path');
const { Script, constants } = require('node:vm');

/**
 * @param {string} file path of dist/cli.cjs
 * @param {Buffer | undefined} cachedData the code cache, if any (V8 rejects one that does not fit)
 * @returns {{ exports: { main: (argv: readonly string[], io?: unknown) => Promise<number> }, script: Script }}
 */
function loadBundle(file, cachedData) {
  const text = `(function (exports, require, module, __filename, __dirname) {${readFileSync(file, 'utf8')}\n})`;
  const script = new Script(text, {
    filename: file,
    cachedData,
    // dynamic import() of an external package from inside the bundle goes to the normal loader
    importModuleDynamically: constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(file), module, file, dirname(file));
  return { exports: module.exports, script };
}

/** The code cache beside the bundle, or undefined when there is none. */
function readCodeCache(file) {
  try {
    return readFileSync(`${file}.cache`);
  } catch {
    return undefined;
  }
}

module.exports = { loadBundle, readCodeCache };
