/**
 * A worker_threads pool that hashes many files in parallel (dependencies.md §2e: about 2x on two
 * cores). Each worker reads with its own reused 1 MiB buffer (host/workers/hash-worker.ts); the
 * main thread only schedules, through the shared {@link BatchPool} (batching, in-flight limits,
 * idle unref, crash handling).
 *
 * Workers run the compiled module or the TypeScript sources through tsx, as the caller does
 * (host/workers/module-worker.ts).
 */
import { availableParallelism } from 'node:os';
import { resolveHashAlgo, type HashAlgoLike } from '../../core/hash/hash-algo.ts';
import type { FsVerityAlgo } from '../../core/hash/fsverity.ts';
import type { FileDigests } from '../fs/file-hash.ts';
import { BatchPool } from './batch-pool.ts';
import type { WorkerDigests, WorkerJob } from './hash-worker.ts';

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

/**
 * A pool of hashing workers.
 * @example
 *   const pool = HashPool.create();
 *   const results = await Promise.all(paths.map((p) => pool.hash(p, ['sha256'])));
 *   await pool.close();
 */
export class HashPool {
  private constructor(private readonly pool: BatchPool<undefined, WorkerJob, WorkerDigests>) {}

  /**
   * Start a pool.
   * @throws RangeError for a worker count outside 1..256 or a non-positive batch size
   */
  static create(opts: HashPoolOptions = {}): HashPool {
    return new HashPool(
      new BatchPool({
        base: import.meta.url,
        module: 'hash-worker',
        workers: opts.workers ?? availableParallelism(),
        maxBatch: opts.maxBatch ?? 32,
        setup: undefined,
      }),
    );
  }

  /** Number of workers. */
  get size(): number {
    return this.pool.size;
  }

  /**
   * Hash one file in a worker (same semantics and errors as `hashFileSync`).
   * @throws ImakitError E_HASH_UNKNOWN synchronously-rejected for unknown algorithms; the file's
   *   own errors (E_IO_NOT_REGULAR, E_IO_CHANGED, E_IO_READ...) with its path
   */
  async hash(path: string, algos: readonly HashAlgoLike[], opts: PoolHashOptions = {}): Promise<FileDigests> {
    const names = algos.map((a) => resolveHashAlgo(a).name);
    const job: WorkerJob = {
      path,
      algos: names,
      ...(opts.verity !== undefined ? { verity: opts.verity } : {}),
      ...(opts.fd !== undefined ? { fd: opts.fd } : {}),
    };
    const r = await this.pool.submit(job);
    return r.verity !== undefined
      ? {
          path,
          size: r.size,
          digests: r.digests,
          verity: r.verity,
          ...(opts.verity !== undefined ? { verityAlgo: opts.verity } : {}),
        }
      : { path, size: r.size, digests: r.digests };
  }

  /** Wait for queued work, then stop the workers. */
  close(): Promise<void> {
    return this.pool.close();
  }
}
