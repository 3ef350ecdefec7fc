import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ImakitError } from '../../../../src/errors.ts';
import { fromWorkerError, poolPort, toWorkerError } from '../../../../src/host/workers/worker-protocol.ts';
import { HashPool } from '../../../../src/host/workers/hash-pool.ts';
import { REPO_ROOT, tempDir, freshFile } from '../../../helpers.ts';

// A caller's own worker thread that imports imakit/host (and, to be sure, every worker entry
// module) must keep its parentPort to itself: its first message is answered by the caller's
// handler only (issue 10 item 14: a re-exported worker entry served parentPort on import).
const ENTRIES = [
  'src/host/index.ts',
  'src/host/workers/hash-worker.ts',
  'src/host/attest/list-replay-worker.ts',
  'src/host/preflight/preflight-worker.ts',
].map((p) => fileURLToPath(new URL(p, `file://${REPO_ROOT}/`)));

const USER_WORKER = `const { parentPort, workerData } = require('node:worker_threads');
require(workerData.tsx).register();
for (const m of workerData.modules) require(m);
parentPort.on('message', (m) => parentPort.postMessage({ echo: m }));
parentPort.postMessage('ready');`;

test("importing imakit's host entry and worker modules in a caller's worker leaves its messages alone", async () => {
  const worker = new Worker(USER_WORKER, {
    eval: true,
    execArgv: [],
    workerData: { tsx: createRequire(import.meta.url).resolve('tsx/cjs/api'), modules: ENTRIES },
  });
  const got: unknown[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      worker.on('error', reject);
      worker.on('message', (m: unknown) => {
        if (m === 'ready') worker.postMessage({ type: 'hello', jobs: [] });
        else got.push(m);
        // give a hijacking handler time to answer too before deciding
        if (got.length === 1) setTimeout(resolve, 300);
      });
    });
  } finally {
    await worker.terminate();
  }
  assert.deepEqual(got, [{ echo: { type: 'hello', jobs: [] } }]);
});

test('poolPort: null on the main thread (nothing to serve)', () => {
  assert.equal(poolPort('hash-worker'), null);
});

test('worker errors cross threads with code, detail and context (message rebuilt the same)', () => {
  const e = new ImakitError('E_IO_READ', 'short read', { path: '/x', offset: 7 });
  const back = fromWorkerError(structuredClone(toWorkerError(e)));
  assert.equal(back.code, 'E_IO_READ');
  assert.equal(back.message, e.message);
  assert.deepEqual({ ...back.context }, { path: '/x', offset: 7 });
  const internal = fromWorkerError(toWorkerError(new TypeError('boom')));
  assert.equal(internal.code, 'E_INTERNAL');
  assert.match(internal.message, /TypeError: boom/);
  assert.equal(fromWorkerError({ code: 'E_NOT_A_CODE', detail: 'd', context: {} }).code, 'E_INTERNAL');
});

test('the pools still start their workers (marker set by startModuleWorker)', async () => {
  const { dir, cleanup } = tempDir();
  const pool = HashPool.create({ workers: 1 });
  try {
    const f = freshFile(dir, 'f', 1000);
    const r = await pool.hash(f, ['sha256']);
    assert.equal(r.size, 1000);
  } finally {
    await pool.close();
    cleanup();
  }
});
