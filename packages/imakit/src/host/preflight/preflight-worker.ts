/**
 * Worker side of the preflight pool (host/preflight/preflight-pool.ts): one {@link PreflightJudge}
 * per worker, built from the pool's setup, then batches of paths judged in order. Batches (up to 128
 * paths per message) keep the per-message cost far below the per-file work; lstat, xattrs, hashing
 * and the emulator's decision all happen here, so the main thread only walks and collects.
 */
import { PreflightJudge, type FileJudgement, type JudgeSetup } from './preflight-judge.ts';
import { serveBatches } from '../workers/worker-protocol.ts';

/** One file to judge: [absolute path, path as shown]. */
export type JudgeJob = readonly [string, string];

// only in a thread our pool started: importing this module elsewhere does nothing
serveBatches<JudgeSetup, JudgeJob, FileJudgement>('preflight-worker', (setup) => {
  const judge = new PreflightJudge(setup);
  return ([abs, rel]) => judge.judge(abs, rel);
});
