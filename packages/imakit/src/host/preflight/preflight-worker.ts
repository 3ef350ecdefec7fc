/**
 * Worker side of the preflight pool (host/preflight.ts): one {@link PreflightJudge} per worker,
 * built from the first message, then batches of paths judged in order. Batches (64-256 paths per
 * message) keep the per-message cost far below the per-file work; lstat, xattrs, hashing and the
 * emulator's decision all happen here, so the main thread only walks and collects.
 */
import type { MessagePort } from 'node:worker_threads';
import { ImakitError } from '../../errors.ts';
import { poolPort, toWorkerError, type WorkerError } from '../workers/worker-protocol.ts';
import { PreflightJudge, type FileJudgement, type JudgeSetup } from './preflight-judge.ts';

/** Messages to a worker. */
export type PreflightWorkerRequest =
  | { readonly type: 'init'; readonly setup: JudgeSetup }
  | { readonly type: 'batch'; readonly id: number; readonly files: ReadonlyArray<readonly [string, string]> };

/** Messages from a worker. */
export type PreflightWorkerReply =
  | { readonly type: 'ready' }
  | { readonly type: 'batch'; readonly id: number; readonly out: readonly FileJudgement[] }
  | { readonly type: 'error'; readonly error: WorkerError };

function run(port: MessagePort): void {
  let judge: PreflightJudge | null = null;
  port.on('message', (m: PreflightWorkerRequest) => {
    try {
      if (m.type === 'init') {
        judge = new PreflightJudge(m.setup);
        port.postMessage({ type: 'ready' } satisfies PreflightWorkerReply);
        return;
      }
      if (judge === null) throw new ImakitError('E_INTERNAL', 'preflight worker used before init');
      const j = judge;
      const out = m.files.map(([abs, rel]) => j.judge(abs, rel));
      port.postMessage({ type: 'batch', id: m.id, out } satisfies PreflightWorkerReply);
    } catch (e) {
      port.postMessage({ type: 'error', error: toWorkerError(e) } satisfies PreflightWorkerReply);
    }
  });
}

// only in a thread our pool started: importing this module elsewhere does nothing
const port = poolPort('preflight-worker');
if (port) run(port);
