import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { BatchPool } from '../../../../src/host/workers/batch-pool.ts';
import type { WorkerDigests, WorkerJob } from '../../../../src/host/workers/hash-worker.ts';
import type { JudgeSetup, FileJudgement } from '../../../../src/host/preflight/preflight-judge.ts';
import type { JudgeJob } from '../../../../src/host/preflight/preflight-worker.ts';
import { isImakitError } from '../../../../src/errors.ts';
import { REPO_ROOT, freshFile, tempDir } from '../../../helpers.ts';

// The one pool behind the hash and preflight pools: results in submission order across batches
// and workers, one job's error rejects only that job (with its code and path), a worker whose
// setup fails rejects every job with that error, and close() waits for submitted work.
const WORKERS_DIR = pathToFileURL(join(REPO_ROOT, 'src/host/workers/batch-pool.ts')).href;
const PREFLIGHT_DIR = pathToFileURL(join(REPO_ROOT, 'src/host/preflight/preflight-pool.ts')).href;

test('many jobs in one tick: each result is its own job, one bad job rejects alone', async () => {
  const { dir, cleanup } = tempDir();
  const pool = new BatchPool<undefined, WorkerJob, WorkerDigests>({
    base: WORKERS_DIR,
    module: 'hash-worker',
    workers: 2,
    maxBatch: 7,
    setup: undefined,
  });
  try {
    const files = Array.from({ length: 40 }, (_, i) => freshFile(dir, `f${i}`, 100 + i));
    const missing = join(dir, 'missing');
    const jobs = [...files.slice(0, 20), missing, ...files.slice(20)].map((path) => ({
      path,
      algos: ['sha256'],
    }));
    const settled = await Promise.allSettled(jobs.map((j) => pool.submit(j)));
    settled.forEach((s, i) => {
      const path = jobs[i]!.path;
      if (path === missing) {
        assert.equal(s.status, 'rejected');
        const e = (s as PromiseRejectedResult).reason as unknown;
        assert.ok(isImakitError(e) && e.context.path === missing, String(e));
        return;
      }
      assert.equal(s.status, 'fulfilled', path);
      const v = (s as PromiseFulfilledResult<WorkerDigests>).value;
      const want = createHash('sha256').update(readFileSync(path)).digest();
      assert.deepEqual(Buffer.from(v.digests.get('sha256')!), want, path);
    });
  } finally {
    await pool.close();
    cleanup();
  }
});

test('a setup the worker cannot build rejects every job with its error', async () => {
  const bad = { profile: 'no-such-kernel' } as unknown as JudgeSetup;
  const pool = new BatchPool<JudgeSetup, JudgeJob, FileJudgement>({
    base: PREFLIGHT_DIR,
    module: 'preflight-worker',
    workers: 1,
    maxBatch: 4,
    setup: bad,
  });
  try {
    const results = await Promise.allSettled([pool.submit(['/a', 'a']), pool.submit(['/b', 'b'])]);
    for (const r of results) {
      assert.equal(r.status, 'rejected');
      const e = (r as PromiseRejectedResult).reason as unknown;
      assert.ok(isImakitError(e), String(e));
      assert.notEqual(e.code, undefined);
    }
    await assert.rejects(pool.submit(['/c', 'c']), (e) => isImakitError(e));
  } finally {
    await pool.close();
  }
});

test('argument checks and close() draining', async () => {
  const mk = (workers: number, maxBatch: number): unknown =>
    new BatchPool({ base: WORKERS_DIR, module: 'hash-worker', workers, maxBatch, setup: undefined });
  assert.throws(() => mk(0, 1), RangeError);
  assert.throws(() => mk(1, 0), RangeError);
  const { dir, cleanup } = tempDir();
  const pool = new BatchPool<undefined, WorkerJob, WorkerDigests>({
    base: WORKERS_DIR,
    module: 'hash-worker',
    workers: 1,
    maxBatch: 2,
    setup: undefined,
  });
  try {
    const f = freshFile(dir, 'f', 10);
    const pending = [1, 2, 3, 4, 5].map(() => pool.submit({ path: f, algos: ['sha1'] }));
    await pool.close(); // waits for the five
    for (const r of await Promise.all(pending)) assert.equal(r.size, 10);
    await assert.rejects(pool.submit({ path: f, algos: ['sha1'] }), (e) => isImakitError(e, 'E_INTERNAL'));
  } finally {
    cleanup();
  }
});
