'use strict';
// import() from a real CommonJS module, for the bundled CLI: dist/cli.cjs runs in a script V8
// compiled from a code cache, which loses its dynamic-import callback
// (ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING), so imports of packages only known at run time (the
// fleet verifier) go through here. TypeScript packages load through tsx's hooks where tsx is
// installed (a checkout); they are registered before the import, not after a failed one, because
// Node caches the failed module job for the URL. (tsx's CommonJS API resolves its own hooks
// wrongly from here, so its ESM API is imported.)
module.exports = async function esmImport(specifier) {
  let api;
  try {
    api = await import('tsx/esm/api');
  } catch {
    api = undefined; // no tsx: the package must be JavaScript
  }
  if (api !== undefined) api.register();
  return import(specifier);
};
