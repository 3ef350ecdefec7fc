/**
 * Worker side of {@link HashPool} (host/hash-pool.ts): hashes batches of files with
 * {@link hashFileSync}, reusing ONE 1 MiB read buffer for every file this worker ever reads
 * (dependencies.md §2e). Errors travel back as plain data (worker-protocol.ts) and are rebuilt as
 * ImakitError on the main thread.
 */
import type { MessagePort } from 'node:worker_threads';
import { poolPort, toWorkerError, type WorkerError } from './worker-protocol.ts';
import { FILE_HASH_BUFFER_SIZE, hashFileSync } from '../fs/file-hash.ts';
import type { FsVerityAlgo } from '../../core/hash/fsverity.ts';

/** One file to hash. */
export interface WorkerJob {
  readonly path: string;
  readonly algos: readonly string[];
  readonly verity?: FsVerityAlgo;
  /** an open descriptor of the main thread's to hash instead of opening `path` */
  readonly fd?: number;
}

/** A batch sent to a worker. */
export interface WorkerRequest {
  readonly id: number;
  readonly jobs: readonly WorkerJob[];
}

/** One job's outcome. */
export type WorkerResult =
  | {
      readonly ok: true;
      readonly size: number;
      readonly digests: Map<string, Uint8Array>;
      readonly verity?: Uint8Array;
    }
  | { readonly ok: false; readonly error: WorkerError };

/** The reply to a batch, results in job order. */
export interface WorkerReply {
  readonly id: number;
  readonly results: readonly WorkerResult[];
}

function run(port: MessagePort): void {
  const buffer = Buffer.allocUnsafe(FILE_HASH_BUFFER_SIZE);
  port.on('message', (req: WorkerRequest) => {
    const results: WorkerResult[] = req.jobs.map((job) => {
      try {
        const r = hashFileSync(job.path, job.algos, {
          buffer,
          ...(job.verity !== undefined ? { verity: job.verity } : {}),
          ...(job.fd !== undefined ? { fd: job.fd } : {}),
        });
        return r.verity !== undefined
          ? { ok: true, size: r.size, digests: r.digests, verity: r.verity }
          : { ok: true, size: r.size, digests: r.digests };
      } catch (e) {
        return { ok: false, error: toWorkerError(e) };
      }
    });
    const reply: WorkerReply = { id: req.id, results };
    port.postMessage(reply);
  });
}

// only in a thread our pool started: importing this module elsewhere does nothing
const port = poolPort('hash-worker');
if (port) run(port);
