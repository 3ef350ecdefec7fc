/**
 * Putting a `node:http(s)` server on a configured address and taking it down again, as the agent's
 * endpoints (pull evidence, Keylime's API) and the fleet verifier's host all do.
 */
import type { Server } from 'node:http';
import { ImakitError } from '../../errors.ts';

/** A plain-HTTP server listening on a configured address. */
export interface ListeningServer {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Listen on `host:port` (already parsed from `listen`, which only names the address in the error).
 * @returns the bound port (the one the system chose for port 0)
 * @throws ImakitError E_API_UNAVAILABLE (the port is taken, the address is not local, …)
 */
export async function listenOn(server: Server, host: string, port: number, listen: string): Promise<number> {
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (e) {
    throw new ImakitError(
      'E_API_UNAVAILABLE',
      `cannot listen on ${listen}: ${(e as Error).message}`,
      {},
      { cause: e },
    );
  }
  const addr = server.address();
  return typeof addr === 'object' && addr !== null ? addr.port : port;
}

/** Stop listening; open keep-alive connections are dropped, so this does not wait on idle clients. */
export function closeServer(server: Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/**
 * Listen as `listenOn` does and hand back the server's URL and a `close`.
 * @throws ImakitError E_API_UNAVAILABLE
 */
export async function serveHttpOn(
  server: Server,
  host: string,
  port: number,
  listen: string,
): Promise<ListeningServer> {
  const bound = await listenOn(server, host, port, listen);
  return Object.freeze({
    url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}`,
    port: bound,
    close: () => closeServer(server),
  });
}
