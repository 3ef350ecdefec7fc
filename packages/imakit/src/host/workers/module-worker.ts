/**
 * Start a worker thread on a sibling module, compiled or not. Running from `dist/` (the JavaScript
 * that `npm run build` emits, also on `npm ci`), the worker loads `NAME.js` directly. Running the
 * TypeScript sources, it registers tsx's CommonJS hook inside the thread and requires `NAME.ts`:
 * Node 20 does not apply `--import`/`module.register` ESM hooks inside worker threads (tried:
 * `execArgv: ['--import', tsx]` fails with ERR_UNKNOWN_FILE_EXTENSION for the .ts entry), so the
 * hook is registered by a small eval'd bootstrap instead. Paths resolve from the caller's module,
 * so any working directory works. Used by the hash, preflight and list-replay pools. `workerData`
 * carries {@link WORKER_MARKER}: the entry serves only a thread started here (worker-protocol.ts).
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Worker, type ResourceLimits } from 'node:worker_threads';
import { WORKER_MARKER } from './worker-protocol.ts';

const TSX_BOOT = `const { workerData } = require('node:worker_threads');
require(workerData.tsx).register();
require(workerData.entry);`;

/**
 * A worker running module `name` (file name without extension) beside the caller.
 * @param base the caller's `import.meta.url`: `.js` when running compiled, `.ts` from source
 */
export function startModuleWorker(base: string, name: string, resourceLimits?: ResourceLimits): Worker {
  // execArgv []: the parent's flags (--import tsx, --input-type) would break the bootstrap
  if (base.endsWith('.js'))
    return new Worker(new URL(`./${name}.js`, base), {
      execArgv: [],
      resourceLimits,
      workerData: { [WORKER_MARKER]: name },
    });
  const workerData = {
    [WORKER_MARKER]: name,
    tsx: createRequire(base).resolve('tsx/cjs/api'),
    entry: fileURLToPath(new URL(`./${name}.ts`, base)),
  };
  return new Worker(TSX_BOOT, { eval: true, workerData, execArgv: [], resourceLimits });
}
