/**
 * `imakit verifier serve`: run the fleet verifier (issue 13 part 7).
 *
 *   verifier serve [--listen HOST:PORT] [--data DIR] [--database postgres://…] [--http]
 *                  [--poll-interval SECONDS] [--refs-key CERT]… [--json]
 *
 * On first start it writes an admin token to DATA/admin-token (0600), which `imakit fleet` reads
 * from the default data dir or takes with `--token`. HTTPS by default, with a self-signed
 * certificate generated into DATA/tls.crt (key DATA/tls.key, 0600) on first start; plain HTTP only
 * with `--http` and only on a loopback address. PGlite in DATA/db unless `--database` names a
 * PostgreSQL server. The pull poller runs in the same process: agents added with a pull URL are
 * attested every interval, looked for every `--poll-interval` seconds (default 1), leased per
 * agent so several processes on one PostgreSQL share them. Prints where it listens; SIGINT or
 * SIGTERM close it cleanly (exit 0), after the attestations in flight are stored. With
 * `--refs-key` every uploaded reference set must be signed by one of those keys (a DSSE envelope,
 * or a detached `imakit refs sign` signature sent by `fleet refs upload --sig`).
 *
 * The verifier is the separate package `@imakit/verifier` (it depends on imakit, never the other
 * way): it is loaded here by a dynamic import whose specifier is a variable, so neither tsc nor the
 * CLI bundle links it, and its absence is an E_TOOL_MISSING error (exit 5) saying how to install it.
 *
 * Exit: 0 closed by a signal; 2 bad flags (--http off loopback, a bad --listen, an unreadable
 * --refs-key); 3 the data
 * directory cannot be written; 5 the verifier package is missing, the port is taken or the database
 * cannot be opened.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { ImakitError } from '../../errors.ts';
import { startVerifier, type VerifierModule } from '../../host/agent/verifier-host.ts';
import { loadVerifyKeyFile } from '../../host/label/label-file.ts';
import type { CommandContext, CommandModule } from '../command.ts';
import { typed } from '../command.ts';
import { collect } from './attest-output.ts';

/** The verifier package's name; a variable, so bundlers and tsc leave the import to run time. */
const VERIFIER_PACKAGE: string = '@imakit/verifier';

export const DEFAULT_LISTEN = '127.0.0.1:8443';

/**
 * The default data directory: /var/lib/imakit/verifier as root, else
 * $XDG_DATA_HOME/imakit/verifier (~/.local/share/imakit/verifier).
 */
export function defaultVerifierDataDir(
  env: Readonly<Record<string, string | undefined>>,
  uid: number | undefined,
): string {
  if (uid === 0) return '/var/lib/imakit/verifier';
  const base = env.XDG_DATA_HOME ?? (env.HOME !== undefined ? join(env.HOME, '.local/share') : undefined);
  if (base === undefined)
    throw new ImakitError(
      'E_USAGE',
      'no HOME or XDG_DATA_HOME to put the data directory in: give --data DIR',
    );
  return join(base, 'imakit/verifier');
}

/** The current user's id (undefined where there is none). */
export const currentUid = (): number | undefined =>
  typeof process.getuid === 'function' ? process.getuid() : undefined;

function hasCode(e: unknown, code: string): boolean {
  return (e as { code?: unknown } | undefined)?.code === code;
}

/**
 * Load `@imakit/verifier`. From the sources (tsx) a plain import. Compiled, an `import()` written
 * here would run inside the bundled CLI, a script V8 compiled from a code cache, which loses its
 * dynamic-import callback (ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING): bin/esm-import.cjs does it.
 * @throws ImakitError E_TOOL_MISSING when the package is not installed
 */
export async function loadVerifierModule(): Promise<VerifierModule> {
  try {
    if (import.meta.url.endsWith('.ts')) return (await import(VERIFIER_PACKAGE)) as VerifierModule;
    // compiled: the import happens in bin/esm-import.cjs, outside the bundle (see there)
    const esmImport = createRequire(import.meta.url)('../../../bin/esm-import.cjs') as (
      s: string,
    ) => Promise<unknown>;
    return (await esmImport(VERIFIER_PACKAGE)) as VerifierModule;
  } catch (e) {
    if (
      (hasCode(e, 'ERR_MODULE_NOT_FOUND') || hasCode(e, 'MODULE_NOT_FOUND')) &&
      String((e as Error).message).includes(VERIFIER_PACKAGE)
    )
      throw new ImakitError(
        'E_TOOL_MISSING',
        `the fleet verifier is a separate package: install ${VERIFIER_PACKAGE} beside imakit (npm install ${VERIFIER_PACKAGE})`,
        {},
        { cause: e },
      );
    throw e;
  }
}

/** The dashboard package's name (optional beside the verifier; a variable for the same reason). */
const DASHBOARD_PACKAGE: string = '@imakit/dashboard';

/**
 * The built dashboard's directory (its dist/ with index.html), found where npm installed
 * `@imakit/dashboard` beside imakit; undefined when it is not installed or not built.
 */
export function installedDashboardDir(): string | undefined {
  try {
    const pkg = createRequire(import.meta.url).resolve(`${DASHBOARD_PACKAGE}/package.json`);
    const dir = join(dirname(pkg), 'dist');
    return existsSync(join(dir, 'index.html')) ? dir : undefined;
  } catch {
    return undefined;
  }
}

interface ServeFlags {
  listen: string;
  data?: string;
  database?: string;
  http?: boolean;
  pollInterval: string;
  refsKey?: string[];
  json?: boolean;
}

/** `--poll-interval`: seconds, > 0 (fractions allowed), at most an hour. */
function pollSeconds(text: string): number {
  const n = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || !(n > 0 && n <= 3600))
    throw new ImakitError('E_USAGE', `--poll-interval: expected seconds in (0, 3600], got '${text}'`);
  return n;
}

async function serve(f: ServeFlags, ctx: CommandContext): Promise<number> {
  if (f.database !== undefined && !/^postgres(ql)?:\/\//.test(f.database))
    throw new ImakitError('E_USAGE', `--database: expected postgres://…, got '${f.database}'`);
  const dataDir = f.data ?? defaultVerifierDataDir(ctx.io.env, currentUid());
  // read before anything starts: a bad key file is exit 2 with nothing listening
  const refsKeys = (f.refsKey ?? []).flatMap((k) => loadVerifyKeyFile(k));
  const mod = await loadVerifierModule();
  let lastPollError: string | undefined;
  const dashboardDir = installedDashboardDir();
  const v = await startVerifier(mod, {
    listen: f.listen,
    dataDir,
    ...(f.database !== undefined ? { database: f.database } : {}),
    ...(f.http === true ? { http: true } : {}),
    pollSeconds: pollSeconds(f.pollInterval),
    // a database outage: said once per distinct cause, not once per poll
    onPollError: (e: unknown) => {
      const msg = e instanceof Error ? e.message : String(e);
      if (msg !== lastPollError) ctx.io.stderr(`imakit verifier: pull poller: ${msg}\n`);
      lastPollError = msg;
    },
    ...(dashboardDir !== undefined ? { dashboardDir } : {}),
    ...(refsKeys.length > 0 ? { refsKeys } : {}),
  });
  const info = {
    listening: v.url,
    scheme: v.scheme,
    dataDir,
    database: v.database,
    adminToken: v.adminTokenPath,
    adminTokenCreated: v.adminTokenCreated,
    pollIntervalSeconds: v.poller.intervalSeconds,
    dashboard: dashboardDir !== undefined ? `${v.url}/` : null,
    ...(v.tls !== undefined
      ? { tls: { certificate: v.tls.certPath, sha256: v.tls.fingerprint, created: v.tls.created } }
      : {}),
  };
  ctx.io.stdout(
    f.json === true
      ? `${JSON.stringify(info)}\n`
      : `imakit verifier listening on ${v.url} (${v.database})\n` +
          `admin token: ${v.adminTokenPath}${v.adminTokenCreated ? ' (written now)' : ''}\n` +
          `pull-mode agents polled every ${v.poller.intervalSeconds} s\n` +
          (dashboardDir !== undefined
            ? `dashboard: ${v.url}/\n`
            : `dashboard: not installed (npm install ${DASHBOARD_PACKAGE})\n`) +
          (v.tls !== undefined
            ? `TLS certificate: ${v.tls.certPath}${v.tls.created ? ' (generated now)' : ''}, sha256 ${v.tls.fingerprint}\n` +
              `clients: imakit fleet list --verifier ${v.url} --ca ${v.tls.certPath}\n`
            : ''),
  );
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await v.close();
  if (f.json !== true) ctx.io.stderr(`imakit verifier: ${signal}, closed\n`);
  return 0;
}

export const command: CommandModule = {
  name: 'verifier',
  register(program, ctx) {
    const verifier = typed(program).command('verifier').description('the fleet verifier service');
    verifier
      .command('serve')
      .description('serve the verifier API: registrar, attestation, agents, events')
      .option('--listen <host:port>', 'address to listen on (0.0.0.0:8443 for a fleet)', DEFAULT_LISTEN)
      .option(
        '--data <dir>',
        'data directory: database, admin-token, tls.crt/tls.key (default ~/.local/share/imakit/verifier, /var/lib/imakit/verifier as root)',
      )
      .option('--database <url>', 'PostgreSQL instead of the embedded PGlite: postgres://user@host/db')
      .option('--http', 'plain HTTP (loopback addresses only)')
      .option(
        '--poll-interval <seconds>',
        'how often the pull poller looks for pull-mode agents due for attestation',
        '1',
      )
      .option(
        '--refs-key <cert>',
        'uploaded reference sets must be signed by this key (DSSE, or a detached signature: fleet refs upload --sig); repeatable',
        collect,
      )
      .option('--json', 'print the listening address as one JSON line')
      .addHelpText(
        'after',
        '\nExample:\n  imakit verifier serve --listen 0.0.0.0:8443 --data /var/lib/imakit/verifier\n',
      )
      .action((f) => ctx.run(() => serve(f, ctx), { json: f.json === true }));
  },
};
