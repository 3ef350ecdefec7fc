/**
 * The one worker pool: N workers running the same module (host/workers/module-worker.ts), each
 * built from one setup value, fed batches of jobs. Jobs submitted in the same tick are batched
 * (several per message, so the per-message cost is paid per batch, not per job); each worker holds
 * up to {@link IN_FLIGHT_PER_WORKER} batches so it never idles waiting for the next one; the least
 * busy worker gets the next batch. Workers are unref'ed while the pool is idle, so a forgotten
 * `close()` does not keep the process alive. A crashed worker makes the pool unusable: every
 * pending and later job is rejected with E_INTERNAL.
 *
 * The hash pool (hash-pool.ts) and the preflight judges (preflight/preflight-pool.ts) are thin
 * wrappers over it; the worker side is worker-protocol.ts `serveBatches`.
 */
import type { ResourceLimits, Worker } from 'node:worker_threads';
import { ImakitError } from '../../errors.ts';
import { startModuleWorker } from './module-worker.ts';
import { fromWorkerError, type BatchReply, type BatchRequest } from './worker-protocol.ts';

/** Batches a worker may hold at once. */
export const IN_FLIGHT_PER_WORKER = 2;

/** Options of {@link BatchPool}. */
export interface BatchPoolOptions<S> {
  /** the `import.meta.url` of a module beside the worker module */
  readonly base: string;
  /** the worker module's file name without extension */
  readonly module: string;
  readonly workers: number;
  /** most jobs per message */
  readonly maxBatch: number;
  /** handed to every worker's init (structured-cloned) */
  readonly setup: S;
  readonly resourceLimits?: ResourceLimits;
}

interface Pending<J, R> {
  readonly job: J;
  readonly resolve: (v: R) => void;
  readonly reject: (e: unknown) => void;
}

interface Slot<J, R> {
  readonly worker: Worker;
  readonly batches: Map<number, Pending<J, R>[]>;
}

/**
 * A pool of workers answering jobs of type J with results of type R.
 * @example
 *   const pool = new BatchPool<undefined, WorkerJob, HashOk>({ base: import.meta.url,
 *     module: 'hash-worker', workers: 2, maxBatch: 32, setup: undefined });
 *   const r = await pool.submit(job);
 *   await pool.close();
 */
export class BatchPool<S, J, R> {
  private readonly slots: Slot<J, R>[];
  private readonly queue: Pending<J, R>[] = [];
  private readonly maxBatch: number;
  private readonly module: string;
  private nextId = 1;
  private outstanding = 0;
  private dispatchQueued = false;
  private closing = false;
  private failure: ImakitError | null = null;
  private drained: Array<() => void> = [];

  constructor(opts: BatchPoolOptions<S>) {
    const n = opts.workers;
    if (!Number.isInteger(n) || n < 1 || n > 256) throw new RangeError(`workers must be 1..256, got ${n}`);
    if (!Number.isInteger(opts.maxBatch) || opts.maxBatch < 1)
      throw new RangeError(`maxBatch must be a positive integer, got ${opts.maxBatch}`);
    this.maxBatch = opts.maxBatch;
    this.module = opts.module;
    this.slots = Array.from({ length: n }, () => {
      const worker = startModuleWorker(opts.base, opts.module, opts.resourceLimits);
      const slot: Slot<J, R> = { worker, batches: new Map() };
      worker.on('message', (m: BatchReply<R>) => this.onReply(slot, m));
      worker.on('error', (e) => this.fail(e));
      worker.on('exit', (code) => {
        if (!this.closing) this.fail(new Error(`exited with code ${code}`));
      });
      // messages are handled in order, so batches may follow before the worker is initialised
      worker.postMessage({ type: 'init', setup: opts.setup } satisfies BatchRequest<S, J>);
      worker.unref();
      return slot;
    });
  }

  /** Number of workers. */
  get size(): number {
    return this.slots.length;
  }

  /** Run one job in a worker: its result, or its error rebuilt as the same ImakitError. */
  submit(job: J): Promise<R> {
    if (this.closing) return Promise.reject(new ImakitError('E_INTERNAL', `${this.module} pool is closed`));
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ job, resolve, reject });
      this.outstanding++;
      if (this.outstanding === 1) for (const s of this.slots) s.worker.ref();
      if (!this.dispatchQueued) {
        this.dispatchQueued = true;
        // let the caller queue the rest of this tick's jobs first, so they can be batched
        queueMicrotask(() => {
          this.dispatchQueued = false;
          this.dispatch();
        });
      }
    });
  }

  /** Wait for submitted jobs, then stop the workers. */
  async close(): Promise<void> {
    if (this.outstanding > 0 && this.failure === null) await new Promise<void>((r) => this.drained.push(r));
    this.closing = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  private dispatch(): void {
    while (this.queue.length > 0 && this.failure === null) {
      let best: Slot<J, R> | null = null;
      for (const s of this.slots)
        if (s.batches.size < IN_FLIGHT_PER_WORKER && (best === null || s.batches.size < best.batches.size))
          best = s;
      if (best === null) return;
      // share the queue across every worker's free batches rather than filling the first worker
      const share = Math.ceil(this.queue.length / (this.slots.length * IN_FLIGHT_PER_WORKER));
      const batch = this.queue.splice(0, Math.max(1, Math.min(this.maxBatch, share)));
      const id = this.nextId++;
      best.batches.set(id, batch);
      best.worker.postMessage({ type: 'batch', id, jobs: batch.map((p) => p.job) } satisfies BatchRequest<
        S,
        J
      >);
    }
  }

  private onReply(slot: Slot<J, R>, m: BatchReply<R>): void {
    if (m.type === 'error') return this.fail(fromWorkerError(m.error));
    const batch = slot.batches.get(m.id);
    if (!batch) return;
    slot.batches.delete(m.id);
    batch.forEach((p, i) => {
      const r = m.results[i];
      if (r === undefined) p.reject(new ImakitError('E_INTERNAL', `${this.module} returned too few results`));
      else if (r.ok) p.resolve(r.value);
      else p.reject(fromWorkerError(r.error));
    });
    this.settle(batch.length);
    this.dispatch();
  }

  private settle(n: number): void {
    this.outstanding -= n;
    if (this.outstanding === 0) {
      for (const s of this.slots) s.worker.unref();
      const waiters = this.drained;
      this.drained = [];
      for (const w of waiters) w();
    }
  }

  /** A worker crashed or failed to initialise: the pool is unusable; reject everything. */
  private fail(e: unknown): void {
    if (this.closing) return;
    const err =
      this.failure ??
      (e instanceof ImakitError
        ? e
        : new ImakitError(
            'E_INTERNAL',
            `${this.module} failed: ${e instanceof Error ? e.message : String(e)}`,
            {},
            { cause: e },
          ));
    this.failure = err;
    const lost: Pending<J, R>[] = this.queue.splice(0);
    for (const s of this.slots) {
      for (const b of s.batches.values()) lost.push(...b);
      s.batches.clear();
    }
    for (const p of lost) p.reject(err);
    this.settle(lost.length);
  }
}
