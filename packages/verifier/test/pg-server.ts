/**
 * A throwaway PostgreSQL server for tests: Debian's binaries (scripts/install-deps.sh installs
 * `postgresql`), a fresh cluster in a temp directory, listening on a free loopback port only, stopped
 * by PID. PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` user.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface PgServer {
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
  /** stop the server but keep its data (an outage); `start()` brings it back on the same port */
  kill(): Promise<void>;
  start(): Promise<void>;
}

function pgBin(): string {
  const base = '/usr/lib/postgresql';
  const versions = existsSync(base) ? readdirSync(base).sort((a, b) => Number(b) - Number(a)) : [];
  for (const v of versions) if (existsSync(join(base, v, 'bin/initdb'))) return join(base, v, 'bin');
  throw new Error(
    'PostgreSQL server binaries not found (apt-get install postgresql; scripts/install-deps.sh)',
  );
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a !== null ? a.port : 0));
    });
  });
}

export async function startPg(): Promise<PgServer> {
  const bin = pgBin();
  const dir = mkdtempSync(join(tmpdir(), 'imakit-pg-'));
  const asRoot = process.getuid?.() === 0;
  const uid = asRoot ? Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout.trim()) : -1;
  const gid = asRoot ? Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim()) : -1;
  if (asRoot) chownSync(dir, uid, gid);
  // run as the postgres user directly (no runuser in between, so signals reach the server)
  const ids = asRoot ? { uid, gid } : {};
  const data = join(dir, 'data');
  const init = spawnSync(join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync'], {
    encoding: 'utf8',
    cwd: dir,
    ...ids,
  });
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr}`);
  const port = await freePort();
  let proc: ChildProcess | undefined;
  const start = async () => {
    const args = [
      '-D',
      data,
      '-p',
      String(port),
      '-k',
      dir,
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'fsync=off',
    ];
    proc = spawn(join(bin, 'postgres'), args, { stdio: 'ignore', cwd: dir, ...ids });
    const deadline = Date.now() + 30_000;
    for (;;) {
      const r = spawnSync(join(bin, 'pg_isready'), ['-h', '127.0.0.1', '-p', String(port)]);
      if (r.status === 0) return;
      if (Date.now() > deadline) throw new Error('PostgreSQL did not start within 30 s');
      await new Promise((res) => setTimeout(res, 100));
    }
  };
  const kill = async () => {
    const p = proc;
    if (p === undefined || p.exitCode !== null) return;
    await new Promise<void>((res) => {
      p.once('exit', () => res());
      p.kill('SIGINT'); // fast shutdown
    });
    proc = undefined;
  };
  await start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    start,
    kill,
    async stop() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
