/**
 * The preflight worker pool (host/preflight/preflight.ts, preflight-worker.ts): workers each
 * holding a {@link PreflightJudge} built from the same setup, over the shared {@link BatchPool}.
 * Workers are spawned as soon as the walk shows the tree is large, so their start-up (tsx
 * registration and the emulator's module graph, ~0.3 s from source) overlaps the rest of the walk.
 * Paths go out in batches of up to {@link BATCH}, so the per-message cost is paid once per batch.
 */
import { ImakitError } from '../../errors.ts';
import { BatchPool } from '../workers/batch-pool.ts';
import type { FileJudgement, JudgeSetup } from './preflight-judge.ts';
import type { JudgeJob } from './preflight-worker.ts';

/** Most paths per worker message. */
export const BATCH = 128;

/** Progress is reported every this many files (and at the end), as the single-thread path does. */
const PROGRESS_EVERY = 256;

/** Workers each holding a judge built from the same setup. One `run` at a time. */
export class JudgePool {
  private readonly pool: BatchPool<JudgeSetup, JudgeJob, FileJudgement>;
  private running = false;

  constructor(setup: JudgeSetup, n: number) {
    this.pool = new BatchPool({
      base: import.meta.url,
      module: 'preflight-worker',
      workers: n,
      maxBatch: BATCH,
      setup,
      resourceLimits: { maxYoungGenerationSizeMb: 32 },
    });
  }

  /** Number of workers. */
  get size(): number {
    return this.pool.size;
  }

  /** Judge `pairs` ([absolute, shown] paths); results in the same order. */
  async run(
    pairs: ReadonlyArray<readonly [string, string]>,
    onProgress?: (done: number, total: number) => void,
  ): Promise<FileJudgement[]> {
    if (this.running) throw new ImakitError('E_INTERNAL', 'JudgePool.run is not re-entrant');
    this.running = true;
    try {
      let done = 0;
      return await Promise.all(
        pairs.map(async (pair) => {
          const j = await this.pool.submit(pair);
          done++;
          if (done % PROGRESS_EVERY === 0 || done === pairs.length) onProgress?.(done, pairs.length);
          return j;
        }),
      );
    } finally {
      this.running = false;
    }
  }

  /** Stop the workers. */
  close(): Promise<void> {
    return this.pool.close();
  }
}
