/**
 * Worker side of {@link HashPool} (host/workers/hash-pool.ts): hashes files with
 * {@link hashFileSync}, reusing ONE 1 MiB read buffer for every file this worker ever reads
 * (dependencies.md §2e). Batching and error transport are the shared batch-worker protocol
 * (worker-protocol.ts `serveBatches`).
 */
import { FILE_HASH_BUFFER_SIZE, hashFileSync } from '../fs/file-hash.ts';
import type { FsVerityAlgo } from '../../core/hash/fsverity.ts';
import { serveBatches } from './worker-protocol.ts';

/** One file to hash. */
export interface WorkerJob {
  readonly path: string;
  readonly algos: readonly string[];
  readonly verity?: FsVerityAlgo;
  /** an open descriptor of the main thread's to hash instead of opening `path` */
  readonly fd?: number;
}

/** One file's digests, as the worker returns them. */
export interface WorkerDigests {
  readonly size: number;
  readonly digests: Map<string, Uint8Array>;
  readonly verity?: Uint8Array;
}

// only in a thread our pool started: importing this module elsewhere does nothing
serveBatches<undefined, WorkerJob, WorkerDigests>('hash-worker', () => {
  const buffer = Buffer.allocUnsafe(FILE_HASH_BUFFER_SIZE);
  return (job) => {
    const r = hashFileSync(job.path, job.algos, {
      buffer,
      ...(job.verity !== undefined ? { verity: job.verity } : {}),
      ...(job.fd !== undefined ? { fd: job.fd } : {}),
    });
    return r.verity !== undefined
      ? { size: r.size, digests: r.digests, verity: r.verity }
      : { size: r.size, digests: r.digests };
  };
});
