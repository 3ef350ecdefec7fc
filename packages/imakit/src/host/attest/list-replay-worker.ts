/**
 * Worker side of {@link workerOffload} (host/list-replay-offload.ts): replays the banks it is given
 * (typically sha256 beside the main thread's sha1) over the list's chunks with the same
 * ListReplayer and ChunkScanner as the local pass, and returns the banks' outcome and state.
 * Messages: `start` (ReplayOptions), `chunk` (a transferred Uint8Array, acknowledged with `ack`),
 * `end` → `done`; any error → `error` (worker-protocol.ts) and the worker stops. With
 * `valuesOnly` every `ack` also carries the emitted banks' values of the entries the chunk completed
 * (ListReplayer.valuesInto); a spent values buffer may come back with a later `chunk`.
 */
import type { MessagePort } from 'node:worker_threads';
import { ChunkScanner, type EntryCursor } from '../../core/ima-list/binary.ts';
import { ListReplayer, type ReplayOptions, type RemoteReplayResult } from '../../core/ima-list/replay.ts';
import { nativeHashes } from '../workers/native-hash.ts';
import { poolPort, toWorkerError, type WorkerError } from '../workers/worker-protocol.ts';

/** Main → worker. */
export type OffloadRequest =
  | { readonly type: 'start'; readonly opts: ReplayOptions; readonly valuesOnly?: boolean }
  | { readonly type: 'chunk'; readonly chunk: Uint8Array; readonly spare?: Uint8Array }
  | { readonly type: 'end' };

/** Worker → main. */
export type OffloadReply =
  | {
      readonly type: 'ack';
      readonly chunk?: Uint8Array;
      /** valuesOnly: the values to extend of the entries this chunk completed */
      readonly values?: Uint8Array;
      readonly count?: number;
    }
  | { readonly type: 'done'; readonly result: RemoteReplayResult }
  | { readonly type: 'error'; readonly error: WorkerError };

function serve(port: MessagePort): void {
  let replayer: ListReplayer | undefined;
  let scanner: ChunkScanner | undefined;
  let feed: ((c: EntryCursor) => void) | undefined;
  // valuesOnly: the current run's buffer, filled `n` entries deep; spares come back from main
  let out: Uint8Array = new Uint8Array(0);
  let n = 0;
  let stride = 0;
  const spares: Uint8Array[] = [];
  const reply = (m: OffloadReply): void => port.postMessage(m);
  port.on('message', (m: OffloadRequest) => {
    try {
      if (m.type === 'start') {
        const r = new ListReplayer({ ...m.opts, hashes: nativeHashes() });
        replayer = r;
        scanner = new ChunkScanner(m.opts.format);
        stride = m.valuesOnly ? r.emittedStride : 0;
        feed = m.valuesOnly
          ? (c) => {
              if ((n + 1) * stride > out.length) {
                const grown = new Uint8Array(Math.max(out.length * 2, stride * 4096));
                grown.set(out.subarray(0, n * stride));
                out = grown;
              }
              r.valuesInto(c, out, n * stride);
              n++;
            }
          : (c) => r.feed(c);
        if (m.valuesOnly) out = new Uint8Array(stride * 4096);
      } else if (m.type === 'chunk') {
        if (m.spare) spares.push(m.spare);
        n = 0;
        scanner!.push(m.chunk, feed!);
        // the scanner copied any partial tail: the buffer goes back to the main thread for reuse
        if (stride > 0) {
          const values = out;
          port.postMessage({ type: 'ack', chunk: m.chunk, values, count: n } satisfies OffloadReply, [
            m.chunk.buffer as ArrayBuffer,
            values.buffer as ArrayBuffer,
          ]);
          const s = spares.pop();
          out = s && s.length >= values.length ? s : new Uint8Array(values.length);
        } else
          port.postMessage({ type: 'ack', chunk: m.chunk } satisfies OffloadReply, [
            m.chunk.buffer as ArrayBuffer,
          ]);
      } else {
        scanner!.end();
        reply({
          type: 'done',
          result: {
            banks: replayer!.outcome(),
            state: replayer!.state(),
            violations: replayer!.violationCount,
          },
        });
        port.close();
      }
    } catch (e) {
      reply({ type: 'error', error: toWorkerError(e) });
      port.close();
    }
  });
}

// only in a thread our offload started: importing this module elsewhere does nothing
const port = poolPort('list-replay-worker');
if (port) serve(port);
