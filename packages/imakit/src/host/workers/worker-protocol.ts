/**
 * What every imakit worker thread shares with the pool that started it: how it knows it was
 * started by imakit (a marker in `workerData`, set by host/workers/module-worker.ts), and how an
 * error crosses the thread boundary (plain data, rebuilt as the same ImakitError on the other side).
 *
 * Worker entry modules act only through {@link poolPort}: importing one from anywhere else, such
 * as a caller's own worker thread, does nothing (a worker entry that served `parentPort` on
 * import would answer the caller's first message itself, with E_INTERNAL).
 */
import { isMainThread, parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { CATALOGUE, ImakitError, type ErrorCode, type ErrorContext } from '../../errors.ts';

/** The `workerData` key naming the imakit worker module a thread was started for. */
export const WORKER_MARKER = 'imakitWorker';

/** An error as it crosses a thread boundary. */
export interface WorkerError {
  readonly code: string;
  /** the reason without the where-prefix (ImakitError.detail) */
  readonly detail: string;
  readonly context: ErrorContext;
}

/** The port to serve when this thread was started by imakit for module `name`, else null. */
export function poolPort(name: string): MessagePort | null {
  if (isMainThread || parentPort === null) return null;
  const data = workerData as Record<string, unknown> | null | undefined;
  return typeof data === 'object' && data !== null && data[WORKER_MARKER] === name ? parentPort : null;
}

/** Serialise any thrown value: ImakitErrors keep code, detail and context; others become E_INTERNAL. */
export function toWorkerError(e: unknown): WorkerError {
  if (e instanceof ImakitError) return { code: e.code, detail: e.detail, context: { ...e.context } };
  return {
    code: 'E_INTERNAL',
    detail: e instanceof Error ? `${e.name}: ${e.message}` : String(e),
    context: {},
  };
}

/** The ImakitError a {@link WorkerError} stands for (an unknown code becomes E_INTERNAL). */
export function fromWorkerError(e: WorkerError): ImakitError {
  const code: ErrorCode = Object.hasOwn(CATALOGUE, e.code) ? (e.code as ErrorCode) : 'E_INTERNAL';
  return new ImakitError(code, e.detail, e.context);
}

/** Pool → worker messages of a batch worker ({@link serveBatches}, host/workers/batch-pool.ts). */
export type BatchRequest<S, J> =
  | { readonly type: 'init'; readonly setup: S }
  | { readonly type: 'batch'; readonly id: number; readonly jobs: readonly J[] };

/** One job's outcome: its value, or its error (the other jobs of the batch are unaffected). */
export type BatchResult<R> =
  { readonly ok: true; readonly value: R } | { readonly ok: false; readonly error: WorkerError };

/** Worker → pool messages: a batch's results in job order, or a failure of the worker itself. */
export type BatchReply<R> =
  | { readonly type: 'batch'; readonly id: number; readonly results: readonly BatchResult<R>[] }
  | { readonly type: 'error'; readonly error: WorkerError };

/**
 * The worker side of a BatchPool: when this thread was started for module `name`, build a handler
 * from the pool's setup (first message), then answer each batch with one result per job. Does
 * nothing anywhere else, so a worker module can call it at top level.
 */
export function serveBatches<S, J, R>(name: string, init: (setup: S) => (job: J) => R): void {
  const port = poolPort(name);
  if (port === null) return;
  let handle: ((job: J) => R) | null = null;
  port.on('message', (m: BatchRequest<S, J>) => {
    if (m.type === 'init') {
      try {
        handle = init(m.setup);
      } catch (e) {
        port.postMessage({ type: 'error', error: toWorkerError(e) } satisfies BatchReply<R>);
      }
      return;
    }
    const h = handle;
    if (h === null) return; // init failed and was reported; the pool has stopped using this worker
    const results = m.jobs.map((job): BatchResult<R> => {
      try {
        return { ok: true, value: h(job) };
      } catch (e) {
        return { ok: false, error: toWorkerError(e) };
      }
    });
    port.postMessage({ type: 'batch', id: m.id, results } satisfies BatchReply<R>);
  });
}
