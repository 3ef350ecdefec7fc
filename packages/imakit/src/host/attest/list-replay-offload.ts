/**
 * Measurement-list replay across two threads: a {@link BankOffload} that replays the banks other
 * than the list's own (sha256 beside the classic SHA-1 list) in a worker thread
 * (host/list-replay-worker.ts) while the main thread checks the listed digests and replays the
 * list's bank. Each bank's PCR chain is independent, so the split changes no result; it halves the
 * hashing on the critical path (per entry: main SHA-1 template + extend, worker SHA-256 template +
 * extend). With `valuesOnly` (verify.ts's listed-digest shortcut) the worker extends the list's bank
 * with the listed digests and returns the other banks' template digests per chunk (transferred
 * buffers, handed back for reuse); the main thread extends those (ListReplayer.applyDeferred).
 *
 * Chunks are copied once and transferred; at most {@link MAX_IN_FLIGHT} chunks wait in the worker
 * so memory stays flat whatever the list length. The worker costs ~100-200 ms to start from
 * source (tsx compiles the replay modules in the thread; less from dist/), so callers offload only
 * lists of tens of MiB or more ({@link OFFLOAD_MIN_BYTES}).
 */
import { statSync } from 'node:fs';
import type {
  BankOffload,
  DeferredValues,
  RemoteReplay,
  RemoteReplayResult,
  ReplayOptions,
} from '../../core/ima-list/replay.ts';
import type { OffloadReply, OffloadRequest } from './list-replay-worker.ts';
import { startModuleWorker } from '../workers/module-worker.ts';
import { fromWorkerError } from '../workers/worker-protocol.ts';

/** Chunks handed to the worker and not yet acknowledged, at most. */
export const MAX_IN_FLIGHT = 4;

/**
 * Lists smaller than this are replayed in one thread. The worker costs ~0.17-0.2 CPU-s and ~18 MB of
 * peak RSS to start and feed (its own isolate and heap, the chunk copies) whatever the list's length,
 * and pays that back in wall time only on long lists: measured (bench/refs-eval.ts inputs, replay
 * only, sha256 PCRs, 2 loaded cores), 11.7 MB list: one thread 0.29 CPU-s / 0.59 s / 65 MB against
 * 0.46 / 1.14 s / 83 MB; 35 MB: 0.48 / 1.20 s / 65 MB against 0.69 / 1.62 s / 84 MB; 117 MB:
 * 1.48 / 3.14 s / 65 MB against 1.42 / 2.44 s / 85 MB.
 */
export const OFFLOAD_MIN_BYTES = 64 << 20;

/** Start one worker replay of `opts.banks`. */
function startWorkerReplay(opts: ReplayOptions & { readonly valuesOnly?: boolean }): RemoteReplay {
  // a small young generation: the worker allocates almost nothing per entry (the replay's peak RSS target, README Benchmarks)
  const worker = startModuleWorker(import.meta.url, 'list-replay-worker', { maxYoungGenerationSizeMb: 4 });
  let inFlight = 0;
  const spare: Uint8Array[] = [];
  let failure: Error | undefined;
  let done: RemoteReplayResult | undefined;
  let waiter: (() => void) | undefined;
  // valuesOnly: runs of values not yet taken, and spent buffers to hand back with the next chunk
  const ready: DeferredValues[] = [];
  const spentValues: Uint8Array[] = [];
  let finished = false;
  const wake = (): void => {
    const w = waiter;
    waiter = undefined;
    w?.();
  };
  worker.on('message', (m: OffloadReply) => {
    if (m.type === 'ack') {
      inFlight--;
      // the worker hands the chunk's buffer back: reused for a later copy (no garbage per MiB)
      if (m.chunk) spare.push(m.chunk);
      if (m.values) ready.push({ values: m.values, count: m.count ?? 0 });
    } else if (m.type === 'done') done = m.result;
    else failure = fromWorkerError(m.error);
    wake();
  });
  worker.on('error', (e) => {
    failure ??= e;
    wake();
  });
  worker.on('exit', (code) => {
    if (!done && !failure && !finished) failure = new Error(`list replay worker exited with code ${code}`);
    wake();
  });
  const send = (m: OffloadRequest, transfer?: ArrayBuffer[]): void => worker.postMessage(m, transfer);
  const wait = (): Promise<void> => new Promise((r) => (waiter = r));
  // hashes: a function does not clone; the worker uses its own native hashers (list-replay-worker.ts)
  const { valuesOnly, hashes: _local, ...replay } = opts;
  send({ type: 'start', opts: replay, valuesOnly });
  return {
    async push(chunk) {
      if (failure) throw failure;
      let copy = spare.pop();
      if (copy?.buffer.byteLength === chunk.length) copy = new Uint8Array(copy.buffer);
      else copy = undefined;
      copy ??= new Uint8Array(chunk.length);
      copy.set(chunk);
      const back = spentValues.pop();
      send({ type: 'chunk', chunk: copy, spare: back }, [
        copy.buffer as ArrayBuffer,
        ...(back ? [back.buffer as ArrayBuffer] : []),
      ]);
      inFlight++;
      while (inFlight > MAX_IN_FLIGHT && !failure) await wait();
      if (failure) throw failure;
    },
    async finish() {
      send({ type: 'end' });
      while (!done && !failure) await wait();
      finished = true;
      await worker.terminate();
      if (failure) throw failure;
      return done!;
    },
    async nextValues() {
      while (ready.length === 0 && !failure) await wait();
      if (failure) throw failure;
      return ready.shift()!;
    },
    release(values) {
      if (spentValues.length < MAX_IN_FLIGHT) spentValues.push(values);
    },
    abort() {
      finished = true;
      void worker.terminate();
    },
  };
}

/** A BankOffload running each remote replay in its own worker thread. */
export function workerOffload(): BankOffload {
  return startWorkerReplay;
}

/**
 * The offload for a list file: a worker when the file holds at least {@link OFFLOAD_MIN_BYTES}
 * (securityfs files report size 0 and stay in one thread), else undefined.
 */
export function offloadForFile(path: string): BankOffload | undefined {
  let size = 0;
  try {
    size = statSync(path).size;
  } catch {
    return undefined; // the read itself reports the error
  }
  return size >= OFFLOAD_MIN_BYTES ? workerOffload() : undefined;
}
