/**
 * The verifier's event stream (GET /v1/dashboard/stream, text/event-stream) read with fetch, so the
 * bearer token travels in a header (EventSource cannot send one) and never in a URL. Reconnects
 * after a drop with Last-Event-ID, waiting the server's `retry` (or 3 s).
 */
import { getToken } from './api.ts';
import type { EventView } from './types.ts';

export interface StreamHandle {
  close(): void;
}

export function openStream(onEvent: (e: EventView) => void, onStatus: (live: boolean) => void): StreamHandle {
  let closed = false;
  let lastId: string | undefined;
  let retryMs = 3000;
  let ctrl: AbortController | undefined;
  const run = async (): Promise<void> => {
    while (!closed) {
      ctrl = new AbortController();
      try {
        const headers: Record<string, string> = { accept: 'text/event-stream' };
        const token = getToken();
        if (token !== null) headers.authorization = `Bearer ${token}`;
        if (lastId !== undefined) headers['last-event-id'] = lastId;
        const res = await fetch('/v1/dashboard/stream', { headers, signal: ctrl.signal });
        if (!res.ok || res.body === null) throw new Error(`stream: HTTP ${res.status}`);
        onStatus(true);
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let i: number;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            let data = '';
            let type = 'message';
            for (const line of block.split('\n')) {
              if (line.startsWith('data: ')) data += line.slice(6);
              else if (line.startsWith('event: ')) type = line.slice(7);
              else if (line.startsWith('id: ')) lastId = line.slice(4);
              else if (line.startsWith('retry: ')) retryMs = Number(line.slice(7)) || retryMs;
            }
            if (type === 'state' && data !== '') onEvent(JSON.parse(data) as EventView);
          }
        }
      } catch {
        // dropped or refused: shown as offline, tried again below
      }
      onStatus(false);
      if (!closed) await new Promise((r) => setTimeout(r, retryMs));
    }
  };
  void run();
  return {
    close() {
      closed = true;
      ctrl?.abort();
    },
  };
}
