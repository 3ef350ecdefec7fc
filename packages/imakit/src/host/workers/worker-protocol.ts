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
