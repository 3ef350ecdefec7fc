/**
 * The preflight worker pool (host/preflight.ts, host/preflight-worker.ts). Workers are spawned as
 * soon as the walk shows the tree is large, so their start-up (tsx registration and the emulator's
 * module graph, ~0.3 s from source) overlaps the rest of the walk. Paths go out in batches of {@link BATCH} with
 * {@link IN_FLIGHT} batches per worker, so a worker never idles and the per-message cost is paid
 * once per batch, not per file.
 */
import type { Worker } from 'node:worker_threads';
import { ImakitError } from '../../errors.ts';
import type { FileJudgement, JudgeSetup } from './preflight-judge.ts';
import type { PreflightWorkerReply, PreflightWorkerRequest } from './preflight-worker.ts';
import { startModuleWorker } from '../workers/module-worker.ts';
import { fromWorkerError } from '../workers/worker-protocol.ts';

/** Paths per worker message. */
export const BATCH = 128;
/** Batches a worker may hold at once. */
const IN_FLIGHT = 2;

interface Job {
  readonly pairs: ReadonlyArray<readonly [string, string]>;
  readonly out: FileJudgement[];
  next: number;
  done: number;
  readonly onProgress: ((done: number, total: number) => void) | undefined;
  readonly resolve: () => void;
  readonly reject: (e: unknown) => void;
}

/** Workers each holding a judge built from the same setup. One `run` at a time. */
export class JudgePool {
  private readonly workers: Worker[] = [];
  private readonly ready = new Set<Worker>();
  private job: Job | null = null;
  private failure: unknown = null;
  private closed = false;

  constructor(setup: JudgeSetup, n: number) {
    for (let i = 0; i < n; i++) {
      const w = startModuleWorker(import.meta.url, 'preflight-worker', { maxYoungGenerationSizeMb: 32 });
      this.workers.push(w);
      w.on('error', (e) => this.fail(e));
      w.on('exit', (code) => {
        if (!this.closed)
          this.fail(new ImakitError('E_INTERNAL', `preflight worker exited with code ${code}`));
      });
      w.on('message', (m: PreflightWorkerReply) => this.onMessage(w, m));
      w.postMessage({ type: 'init', setup } satisfies PreflightWorkerRequest);
    }
  }

  /** Number of workers. */
  get size(): number {
    return this.workers.length;
  }

  /** Judge `pairs` ([absolute, shown] paths); results in the same order. */
  run(
    pairs: ReadonlyArray<readonly [string, string]>,
    onProgress?: (done: number, total: number) => void,
  ): Promise<FileJudgement[]> {
    if (this.failure !== null) return Promise.reject(this.failure);
    if (this.job !== null)
      return Promise.reject(new ImakitError('E_INTERNAL', 'JudgePool.run is not re-entrant'));
    const out = new Array<FileJudgement>(pairs.length);
    if (pairs.length === 0) return Promise.resolve(out);
    return new Promise<FileJudgement[]>((resolve, reject) => {
      this.job = {
        pairs,
        out,
        next: 0,
        done: 0,
        onProgress,
        resolve: () => resolve(out),
        reject,
      };
      for (const w of this.ready) this.fill(w);
    });
  }

  /** Stop the workers. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private fill(w: Worker): void {
    for (let k = 0; k < IN_FLIGHT; k++) this.send(w);
  }

  private send(w: Worker): void {
    const j = this.job;
    if (j === null || j.next >= j.pairs.length) return;
    const start = j.next;
    j.next = Math.min(j.pairs.length, start + BATCH);
    w.postMessage({
      type: 'batch',
      id: start,
      files: j.pairs.slice(start, j.next),
    } satisfies PreflightWorkerRequest);
  }

  private onMessage(w: Worker, m: PreflightWorkerReply): void {
    if (m.type === 'error') return this.fail(fromWorkerError(m.error));
    if (m.type === 'ready') {
      this.ready.add(w);
      this.fill(w);
      return;
    }
    const j = this.job;
    if (j === null) return;
    m.out.forEach((x, k) => (j.out[m.id + k] = x));
    j.done += m.out.length;
    j.onProgress?.(j.done, j.pairs.length);
    if (j.done === j.pairs.length) {
      this.job = null;
      j.resolve();
    } else this.send(w);
  }

  private fail(e: unknown): void {
    if (this.closed || this.failure !== null) return;
    this.failure = e;
    const j = this.job;
    this.job = null;
    j?.reject(e);
  }
}
