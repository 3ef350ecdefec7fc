/**
 * Hosting the fleet verifier (`imakit verifier serve`): the data directory (PGlite database,
 * admin token, TLS certificate), then an HTTPS (or, on loopback only, HTTP) server in front of the
 * verifier's app.
 *
 * `@imakit/verifier` depends on imakit, so imakit never imports it statically: the caller loads it
 * (a dynamic import) and passes the module in. `VerifierModule` is the part of its API used here,
 * written structurally so that imakit's types do not reach into the verifier package.
 *
 * The pull poller runs in the same process, on the same database, leasing due agents.
 *
 * The app from `buildApp` is served through `app.routing` by a server made here, so HTTPS needs no
 * option in the verifier's app factory and the same code serves both schemes.
 */
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { PublicKey } from '../../core/keys/keys.ts';
import { ImakitError, fromSystemError } from '../../errors.ts';
import { isLoopbackHost, parseListen } from './config.ts';
import { readSecretFile, writeSecretFile } from './secret-files.ts';
import { ensureSelfSignedCert } from './tls-cert.ts';
import { closeServer, listenOn } from './http-listen.ts';

/** What of `@imakit/verifier` is used. */
export interface VerifierModule {
  openDatabase(target: { kind: 'pglite'; dataDir?: string } | { kind: 'postgres'; url: string }): Promise<{
    readonly db: unknown;
    readonly kind: string;
    close(): Promise<void>;
  }>;
  buildApp(deps: {
    database: never;
    logger?: boolean;
    dashboardDir?: string;
    refsKeys?: readonly PublicKey[];
  }): Promise<{
    ready(): PromiseLike<unknown>;
    routing(req: IncomingMessage, res: ServerResponse): void;
    close(): PromiseLike<unknown>;
  }>;
  createToken(db: never, role: 'read' | 'operate' | 'admin'): Promise<string>;
  /** the pull-mode poller (the verifier's poller/poller.ts) */
  startPoller(o: {
    db: never;
    owner: string;
    refs: never;
    retention: number;
    pollMs: number;
    onError?: (e: unknown) => void;
  }): { stop(): Promise<void>; stats(): { readonly claimed: number; readonly verdicts: number } };
  ReferenceSetCache: new (size: number) => unknown;
}

export interface VerifierServeOptions {
  /** `HOST:PORT`; port 0 picks a free one */
  readonly listen: string;
  readonly dataDir: string;
  /** PostgreSQL URL; undefined = PGlite in `dataDir/db` */
  readonly database?: string;
  /** plain HTTP (refused unless the listen host is loopback) */
  readonly http?: boolean;
  /**
   * how often the pull poller looks for agents due for attestation (pull-mode agents, those with
   * a pullUrl), seconds (default 1)
   */
  readonly pollSeconds?: number;
  /** told about a failed poll (the database is down): the poller keeps trying */
  readonly onPollError?: (e: unknown) => void;
  /** the built dashboard's directory, served at `/` (undefined: the API only) */
  readonly dashboardDir?: string;
  /** keys every uploaded reference set must be signed by (none: sets are stored unchecked) */
  readonly refsKeys?: readonly PublicKey[];
}

export interface RunningVerifier {
  /** `https://HOST:PORT` as clients reach it (the bound port) */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly scheme: 'http' | 'https';
  readonly adminTokenPath: string;
  /** true when this start wrote the admin token */
  readonly adminTokenCreated: boolean;
  readonly tls:
    { readonly certPath: string; readonly fingerprint: string; readonly created: boolean } | undefined;
  readonly database: string;
  /** the pull poller: its interval, and what it has done */
  readonly poller: {
    readonly intervalSeconds: number;
    stats(): { readonly claimed: number; readonly verdicts: number };
  };
  close(): Promise<void>;
}

/**
 * Open the database, write the admin token on first start, and listen.
 * @throws ImakitError E_USAGE (bad --listen, --http on a non-loopback address), E_IO_WRITE,
 *   E_API_UNAVAILABLE (the port is taken, the database cannot be opened)
 */
export async function startVerifier(mod: VerifierModule, o: VerifierServeOptions): Promise<RunningVerifier> {
  const { host, port } = parseListen(o.listen);
  const pollSeconds = o.pollSeconds ?? 1;
  if (!(pollSeconds > 0 && pollSeconds <= 3600))
    throw new ImakitError('E_USAGE', `the poll interval must be > 0 and ≤ 3600 seconds, not ${pollSeconds}`, {
      field: 'poll-interval',
    });
  if (o.http === true && !isLoopbackHost(host))
    throw new ImakitError(
      'E_USAGE',
      `--http serves tokens and evidence in clear: only on a loopback address (127.0.0.1, ::1, localhost), not '${host}'`,
      { field: 'listen' },
    );
  try {
    mkdirSync(o.dataDir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw fromSystemError(e, 'E_IO_WRITE', o.dataDir);
  }
  const tls = o.http === true ? undefined : ensureSelfSignedCert(o.dataDir, [host]);
  let database;
  try {
    database = await mod.openDatabase(
      o.database !== undefined
        ? { kind: 'postgres', url: o.database }
        : { kind: 'pglite', dataDir: join(o.dataDir, 'db') },
    );
  } catch (e) {
    throw new ImakitError(
      'E_API_UNAVAILABLE',
      `cannot open the database (${o.database !== undefined ? 'PostgreSQL' : join(o.dataDir, 'db')}): ${(e as Error).message}`,
      {},
      { cause: e },
    );
  }
  const adminTokenPath = join(o.dataDir, 'admin-token');
  let adminTokenCreated = false;
  let app;
  try {
    if (readSecretFile(adminTokenPath) === undefined) {
      writeSecretFile(adminTokenPath, `${await mod.createToken(database.db as never, 'admin')}\n`);
      adminTokenCreated = true;
    }
    app = await mod.buildApp({
      database: database as never,
      ...(o.dashboardDir !== undefined && { dashboardDir: o.dashboardDir }),
      ...(o.refsKeys !== undefined && o.refsKeys.length > 0 && { refsKeys: o.refsKeys }),
    });
    await app.ready();
  } catch (e) {
    await database.close().catch(() => undefined);
    throw e;
  }
  const handler = (req: IncomingMessage, res: ServerResponse): void => app.routing(req, res);
  const server: Server =
    tls !== undefined
      ? createHttpsServer({ key: tls.key, cert: tls.cert }, handler)
      : createHttpServer(handler);
  let bound: number;
  try {
    bound = await listenOn(server, host, port, o.listen);
  } catch (e) {
    await app.close();
    throw e;
  }
  // pull mode: agents with a pullUrl are polled from here (leased per agent: several verifier
  // processes on one PostgreSQL share the work)
  const poller = mod.startPoller({
    db: database.db as never,
    owner: `${hostname()}/${process.pid}/${Date.now()}`,
    refs: new mod.ReferenceSetCache(32) as never,
    retention: 100,
    pollMs: pollSeconds * 1000,
    ...(o.onPollError !== undefined && { onError: o.onPollError }),
  });
  const scheme = tls !== undefined ? 'https' : 'http';
  const urlHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  let closing: Promise<void> | undefined;
  return Object.freeze({
    url: `${scheme}://${urlHost}:${bound}`,
    host,
    port: bound,
    scheme,
    adminTokenPath,
    adminTokenCreated,
    tls:
      tls !== undefined
        ? Object.freeze({ certPath: tls.certPath, fingerprint: tls.fingerprint, created: tls.created })
        : undefined,
    database: o.database !== undefined ? 'postgres' : `pglite ${join(o.dataDir, 'db')}`,
    poller: Object.freeze({ intervalSeconds: pollSeconds, stats: () => poller.stats() }),
    close: () =>
      (closing ??= (async () => {
        // attestations in flight finish (and store their verdicts) before the database closes
        await poller.stop();
        await closeServer(server);
        // the app's onClose hook closes the database
        await app.close();
      })()),
  });
}
