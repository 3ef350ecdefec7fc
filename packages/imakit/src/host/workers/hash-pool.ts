/**
 * A worker_threads pool that hashes many files in parallel (dependencies.md §2e: about 2x on two
 * cores). Each worker reads with its own reused 1 MiB buffer (host/hash-worker.ts); the main thread
 * only schedules.
 *
 * Requests made in the same tick are batched (several files per message) so per-file message
 * overhead does not dominate small files; each worker keeps up to two batches in flight so it never
 * idles waiting for the next one. Workers are unref'ed while the pool is idle, so a forgotten
 * `close()` does not keep the process alive.
 *
 * Workers run the compiled module or the TypeScript sources through tsx, as the caller does
 * (host/module-worker.ts).
 */
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { ImakitError } from '../../errors.ts';
import { resolveHashAlgo, type HashAlgoLike } from '../../core/hash/hash-algo.ts';
import type { FsVerityAlgo } from '../../core/hash/fsverity.ts';
import type { FileDigests } from '../fs/file-hash.ts';
import { startModuleWorker } from './module-worker.ts';
import type { WorkerJob, WorkerReply, WorkerRequest } from './hash-worker.ts';
import { fromWorkerError } from './worker-protocol.ts';

/** Options of {@link HashPool.create}. */
export interface HashPoolOptions {
  /** number of workers (default `os.availableParallelism()`) */
  workers?: number;
  /** most files per message (default 32) */
  maxBatch?: number;
}

/** Per-file options of {@link HashPool.hash}. */
export interface PoolHashOptions {
  verity?: FsVerityAlgo;
  /**
   * hash the file open on this descriptor (the caller's; workers share the process's descriptor
   * table) instead of opening `path`: the caller then writes labels through the same descriptor
   */
  fd?: number;
}

interface PendingJob {
  readonly job: WorkerJob;
  readonly resolve: (v: FileDigests) => void;
  readonly reject: (e: unknown) => void;
}

interface Slot {
  readonly worker: Worker;
  readonly batches: Map<number, PendingJob[]>;
}

/** Batches a worker may hold at once. */
const IN_FLIGHT_PER_WORKER = 2;

/**
 * A pool of hashing workers.
 * @example
 *   const pool = HashPool.create();
 *   const results = await Promise.all(paths.map((p) => pool.hash(p, ['sha256'])));
 *   await pool.close();
 */
export class HashPool {
  private readonly slots: Slot[];
  private readonly queue: PendingJob[] = [];
  private readonly maxBatch: number;
  private nextId = 1;
  private outstanding = 0;
  private dispatchQueued = false;
  private closing = false;
  private failure: ImakitError | null = null;
  private drained: Array<() => void> = [];

  private constructor(workers: number, maxBatch: number) {
    this.maxBatch = maxBatch;
    this.slots = Array.from({ length: workers }, () => {
      const worker = startModuleWorker(import.meta.url, 'hash-worker');
      const slot: Slot = { worker, batches: new Map() };
      worker.on('message', (reply: WorkerReply) => this.onReply(slot, reply));
      worker.on('error', (e) => this.fail(e));
      worker.on('exit', (code) => {
        if (!this.closing) this.fail(new Error(`hash worker exited with code ${code}`));
      });
      worker.unref();
      return slot;
    });
  }

  /** Start a pool. */
  static create(opts: HashPoolOptions = {}): HashPool {
    const n = opts.workers ?? availableParallelism();
    if (!Number.isInteger(n) || n < 1 || n > 256) throw new RangeError(`workers must be 1..256, got ${n}`);
    const b = opts.maxBatch ?? 32;
    if (!Number.isInteger(b) || b < 1) throw new RangeError(`maxBatch must be a positive integer, got ${b}`);
    return new HashPool(n, b);
  }

  /** Number of workers. */
  get size(): number {
    return this.slots.length;
  }

  /**
   * Hash one file in a worker (same semantics and errors as `hashFileSync`).
   * @throws ImakitError E_HASH_UNKNOWN synchronously-rejected for unknown algorithms; the file's
   *   own errors (E_IO_NOT_REGULAR, E_IO_CHANGED, E_IO_READ...) with its path
   */
  hash(path: string, algos: readonly HashAlgoLike[], opts: PoolHashOptions = {}): Promise<FileDigests> {
    if (this.closing) return Promise.reject(new Error('HashPool is closed'));
    if (this.failure) return Promise.reject(this.failure);
    let names: string[];
    try {
      names = algos.map((a) => resolveHashAlgo(a).name);
    } catch (e) {
      return Promise.reject(e);
    }
    const job: WorkerJob = {
      path,
      algos: names,
      ...(opts.verity !== undefined ? { verity: opts.verity } : {}),
      ...(opts.fd !== undefined ? { fd: opts.fd } : {}),
    };
    return new Promise<FileDigests>((resolve, reject) => {
      this.queue.push({ job, resolve, reject });
      this.outstanding++;
      if (this.outstanding === 1) for (const s of this.slots) s.worker.ref();
      if (!this.dispatchQueued) {
        this.dispatchQueued = true;
        // let the caller queue the rest of this tick's requests first, so they can be batched
        queueMicrotask(() => {
          this.dispatchQueued = false;
          this.dispatch();
        });
      }
    });
  }

  /** Wait for queued work, then stop the workers. */
  async close(): Promise<void> {
    if (this.outstanding > 0) await new Promise<void>((r) => this.drained.push(r));
    this.closing = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  private dispatch(): void {
    for (;;) {
      if (this.queue.length === 0) return;
      // the least busy worker with room
      let best: Slot | null = null;
      for (const s of this.slots)
        if (s.batches.size < IN_FLIGHT_PER_WORKER && (best === null || s.batches.size < best.batches.size))
          best = s;
      if (best === null) return;
      const share = Math.ceil(this.queue.length / (this.slots.length * IN_FLIGHT_PER_WORKER));
      const n = Math.max(1, Math.min(this.maxBatch, share));
      const batch = this.queue.splice(0, n);
      const id = this.nextId++;
      best.batches.set(id, batch);
      const req: WorkerRequest = { id, jobs: batch.map((p) => p.job) };
      best.worker.postMessage(req);
    }
  }

  private onReply(slot: Slot, reply: WorkerReply): void {
    const batch = slot.batches.get(reply.id);
    if (!batch) return;
    slot.batches.delete(reply.id);
    batch.forEach((p, i) => {
      const r = reply.results[i];
      if (r === undefined) p.reject(new ImakitError('E_INTERNAL', 'hash worker returned too few results'));
      else if (r.ok)
        p.resolve(
          r.verity !== undefined
            ? {
                path: p.job.path,
                size: r.size,
                digests: r.digests,
                verity: r.verity,
                ...(p.job.verity !== undefined ? { verityAlgo: p.job.verity } : {}),
              }
            : { path: p.job.path, size: r.size, digests: r.digests },
        );
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

  /** A worker crashed: the pool is unusable; reject everything. */
  private fail(e: unknown): void {
    const err =
      this.failure ??
      new ImakitError(
        'E_INTERNAL',
        `hash worker failed: ${e instanceof Error ? e.message : String(e)}`,
        {},
        { cause: e },
      );
    this.failure = err;
    const lost: PendingJob[] = [...this.queue.splice(0)];
    for (const s of this.slots) {
      for (const b of s.batches.values()) lost.push(...b);
      s.batches.clear();
    }
    for (const p of lost) p.reject(err);
    this.settle(lost.length);
  }
}
