/**
 * Benchmark (issue 13): a fleet of simulated agents attesting in push mode against real verifier
 * processes on this machine. Each attestation is a challenge, then evidence: an RSA-2048 quote of
 * sha256:10 and `--entries` new `ima-ng` entries (binary list from the stored offset), replayed on
 * top of the stored PCR and evaluated against a `--paths`-path reference set. Reported per case
 * (PGlite with one process; PostgreSQL with one and two processes, requests spread over them):
 * sustained attestations/s, p50/p99 of the whole attestation and of the evidence request, verifier
 * RSS per agent (after the run, all agents attested at least once when the run is long enough),
 * and database bytes per attestation, hence per agent per day at one attestation per `--interval`.
 * The load generator (signing and list building, ~1 ms of CPU per attestation) runs on the same
 * 2 cores: its CPU share is printed.
 *   node --import tsx --conditions=source bench/fleet.ts [--agents 10000] [--paths 100000]
 *     [--entries 100] [--seconds 20] [--warmup 5] [--concurrency 32] [--cases pglite:1,postgres:1,postgres:2]
 *     [--keys 16] [--interval 120] [--cpu-prof DIR (profiles of the verifier processes)]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { sql } from 'kysely';
import { openDatabase, type OpenDatabase } from '../src/index.ts';
import { refsId } from '../src/refs-store.ts';
import { startPg, type PgServer } from '../test/pg-server.ts';
import { SimAgent, fleetReferenceSet, rsaAk } from './fleet-sim.ts';

const { values: a } = parseArgs({
  options: {
    agents: { type: 'string', default: '10000' },
    paths: { type: 'string', default: '100000' },
    entries: { type: 'string', default: '100' },
    seconds: { type: 'string', default: '20' },
    warmup: { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '32' },
    cases: { type: 'string', default: 'pglite:1,postgres:1,postgres:2' },
    keys: { type: 'string', default: '16' },
    interval: { type: 'string', default: '120' },
    'cpu-prof': { type: 'string' },
  },
});
const AGENTS = Number(a.agents);
const PATHS = Number(a.paths);
const ENTRIES = Number(a.entries);
const SECONDS = Number(a.seconds);
const WARMUP = Number(a.warmup);
const CONCURRENCY = Number(a.concurrency);
const INTERVAL = Number(a.interval);
const here = import.meta.dirname;

interface Child {
  readonly proc: ChildProcess;
  readonly port: number;
  rss(): Promise<{ rss: number; hwm: number; cpuUs: number }>;
}

async function spawnVerifier(kind: string, where: string): Promise<Child> {
  const proc = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '--conditions=source',
      ...(a['cpu-prof'] === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${a['cpu-prof']}`]),
      join(here, 'fleet-verifier.ts'),
      kind,
      where,
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: proc.stdout! });
  const waiters: ((l: string) => void)[] = [];
  lines.on('line', (l) => waiters.shift()?.(l));
  const next = (): Promise<string> => new Promise((r) => waiters.push(r));
  const ready = await next();
  const port = (JSON.parse(ready.replace(/^ready /, '')) as { port: number }).port;
  return {
    proc,
    port,
    async rss() {
      const p = next();
      proc.stdin!.write('rss\n');
      return JSON.parse((await p).replace(/^rss /, '')) as { rss: number; hwm: number; cpuUs: number };
    },
  };
}

async function stop(c: Child): Promise<void> {
  const exited = new Promise((r) => c.proc.once('exit', r));
  c.proc.kill('SIGTERM');
  await exited;
}

function dirBytes(d: string): number {
  let n = 0;
  for (const e of readdirSync(d, { withFileTypes: true, recursive: true }))
    if (e.isFile()) n += statSync(join(e.parentPath, e.name)).size;
  return n;
}

/** Insert the reference set, the agents (RSA AKs from a pool) and their tokens. */
async function seed(db: OpenDatabase['db'], refs: Uint8Array, aks: ReturnType<typeof rsaAk>[]) {
  const id = refsId(refs);
  await db.insertInto('reference_sets').values({ id, name: 'fleet', body: refs }).execute();
  const tokens: string[] = [];
  for (let i = 0; i < AGENTS; i += 1000) {
    const ids = Array.from({ length: Math.min(1000, AGENTS - i) }, (_, k) => i + k);
    await db
      .insertInto('agents')
      .values(
        ids.map((n) => ({
          id: `agent-${n}`,
          name: `agent-${n}`,
          state: 'failing',
          ak_public: aks[n % aks.length]!.akPublic,
          reference_set: id,
          require_pcrs: 'sha256:10',
          interval_s: INTERVAL,
        })),
      )
      .execute();
    const batch = ids.map(() => `ima_${randomBytes(32).toString('base64url')}`);
    tokens.push(...batch);
    await db
      .insertInto('agent_tokens')
      .values(
        batch.map((t, k) => ({
          agent_id: `agent-${ids[k]}`,
          token_sha256: new Uint8Array(createHash('sha256').update(t).digest()),
        })),
      )
      .execute();
  }
  return tokens;
}

const pct = (xs: number[], p: number): number =>
  xs[Math.min(xs.length - 1, Math.floor(xs.length * p))] ?? NaN;

interface CaseResult {
  readonly label: string;
  readonly rate: number;
  readonly p50: number;
  readonly p99: number;
  readonly ev50: number;
  readonly ev99: number;
  readonly failures: number;
  readonly attested: number;
  readonly rssPerAgent: number;
  readonly rssTotal: number;
  readonly bytesPerAttestation: number;
  readonly genCpu: number;
  /** verifier processes' CPU per attestation (the database server's not included) */
  readonly verifierCpuMs: number;
}

async function runCase(
  kind: 'pglite' | 'postgres',
  procs: number,
  refs: Uint8Array,
  aks: ReturnType<typeof rsaAk>[],
) {
  let pg: PgServer | undefined;
  let dataDir: string | undefined;
  let where: string;
  if (kind === 'postgres') {
    pg = await startPg();
    where = pg.url;
  } else {
    dataDir = mkdtempSync(join(tmpdir(), 'imakit-fleet-bench-'));
    where = dataDir;
  }
  const children: Child[] = [];
  let admin: OpenDatabase | undefined;
  try {
    const seedDb = await openDatabase(
      kind === 'postgres' ? { kind, url: where, max: 2 } : { kind, dataDir: where },
    );
    const tokens = await seed(seedDb.db, refs, aks);
    if (kind === 'pglite') await seedDb.close();
    else admin = seedDb;
    const dbBytes = async (): Promise<number> =>
      admin
        ? Number(
            (
              await sql<{ n: number }>`SELECT pg_database_size(current_database())::int8 AS n`.execute(
                admin.db,
              )
            ).rows[0]!.n,
          )
        : 0;
    for (let i = 0; i < procs; i++) children.push(await spawnVerifier(kind, where));
    const sims = Array.from({ length: AGENTS }, (_, i) => new SimAgent(aks[i % aks.length]!, PATHS, i));
    const seen = new Set<number>();
    let cursor = 0;
    let rr = 0;
    const lat: number[] = [];
    const evLat: number[] = [];
    let failures = 0;
    let firstFailure = '';
    let measuring = false;
    let stopAt = 0;
    const base = (c: Child): string => `http://127.0.0.1:${c.port}`;
    const attestOne = async (): Promise<void> => {
      const n = cursor++ % AGENTS;
      const auth = { authorization: `Agent ${tokens[n]}`, 'content-type': 'application/json' };
      const t0 = performance.now();
      const ch = await fetch(`${base(children[rr++ % procs]!)}/v1/attest/challenge`, {
        method: 'POST',
        headers: auth,
        body: '{}',
      });
      if (ch.status !== 200) {
        failures++;
        firstFailure ||= `challenge ${ch.status} ${await ch.text()}`;
        return;
      }
      const { nonce } = (await ch.json()) as { nonce: string };
      const ev = sims[n]!.evidence(nonce, ENTRIES);
      const t1 = performance.now();
      const r = await fetch(`${base(children[rr++ % procs]!)}/v1/attest/evidence`, {
        method: 'POST',
        headers: auth,
        body: ev.body,
      });
      const text = await r.text();
      const t2 = performance.now();
      const status =
        r.status === 200 ? (JSON.parse(text) as { verdict: { status: string } }).verdict.status : '';
      if (status !== 'pass') {
        failures++;
        firstFailure ||= `evidence ${r.status} ${text.slice(0, 400)}`;
        return;
      }
      ev.commit();
      seen.add(n);
      if (measuring) {
        lat.push(t2 - t0);
        evLat.push(t2 - t1);
      }
    };
    const worker = async (): Promise<void> => {
      while (performance.now() < stopAt) await attestOne();
    };
    stopAt = performance.now() + WARMUP * 1000;
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const bytes0 = await dbBytes();
    const cpu0 = await Promise.all(children.map((c) => c.rss()));
    measuring = true;
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    stopAt = t0 + SECONDS * 1000;
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const wall = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(c0);
    measuring = false;
    const bytes1 = await dbBytes();
    const rss = await Promise.all(children.map((c) => c.rss()));
    for (const c of children.splice(0)) await stop(c);
    let bytesPerAttestation = (bytes1 - bytes0) / lat.length;
    if (dataDir !== undefined) bytesPerAttestation = NaN; // PGlite: reported from the data directory below
    const pgliteBytes = dataDir !== undefined ? dirBytes(dataDir) : 0;
    lat.sort((x, y) => x - y);
    evLat.sort((x, y) => x - y);
    const rssTotal = rss.reduce((s, r) => s + r.rss, 0);
    const verifierCpuUs = rss.reduce((s, r, i) => s + r.cpuUs - cpu0[i]!.cpuUs, 0);
    if (firstFailure) console.log(`  first failure (${kind}×${procs}): ${firstFailure}`);
    return {
      label: `${kind === 'pglite' ? 'PGlite' : 'PostgreSQL'}, ${procs} process${procs > 1 ? 'es' : ''}`,
      rate: lat.length / wall,
      p50: pct(lat, 0.5),
      p99: pct(lat, 0.99),
      ev50: pct(evLat, 0.5),
      ev99: pct(evLat, 0.99),
      failures,
      attested: seen.size,
      rssTotal,
      rssPerAgent: rssTotal / AGENTS,
      bytesPerAttestation: Number.isNaN(bytesPerAttestation)
        ? pgliteBytes / Math.max(1, cursor)
        : bytesPerAttestation,
      genCpu: (cpu.user + cpu.system) / 1e6 / wall,
      verifierCpuMs: verifierCpuUs / 1000 / Math.max(1, lat.length),
    } satisfies CaseResult;
  } finally {
    for (const c of children) await stop(c).catch(() => undefined);
    await admin?.close();
    await pg?.stop();
    if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true });
  }
}

const t0 = performance.now();
const aks = Array.from({ length: Number(a.keys) }, rsaAk);
const refs = fleetReferenceSet(PATHS);
console.log(
  `fleet: ${AGENTS} agents (${a.keys} RSA-2048 AKs), ${ENTRIES} new ima-ng entries per attestation, ` +
    `${PATHS}-path reference set (${(refs.length / 1048576).toFixed(1)} MiB); ${CONCURRENCY} in flight, ` +
    `${WARMUP} s warm-up + ${SECONDS} s measured; setup ${((performance.now() - t0) / 1000).toFixed(1)} s; ` +
    `load ${loadavg()[0]!.toFixed(1)} on ${availableParallelism()} cores`,
);
const results: CaseResult[] = [];
for (const c of a.cases!.split(',')) {
  const [kind, n] = c.split(':');
  if (kind !== 'pglite' && kind !== 'postgres') throw new Error(`--cases: ${c}`);
  results.push(await runCase(kind, Number(n ?? 1), refs, aks));
}
const kib = (b: number): string => (b / 1024).toFixed(1);
console.log(
  '| case | attestations/s | p50 / p99 attestation (ms) | p50 / p99 evidence (ms) | failures | agents attested | verifier RSS (total, per agent) | DB bytes per attestation (per agent per day) | verifier CPU per attestation | generator CPU |',
);
console.log('|---|---|---|---|---|---|---|---|---|---|');
for (const r of results)
  console.log(
    `| ${r.label} | ${r.rate.toFixed(0)} | ${r.p50.toFixed(1)} / ${r.p99.toFixed(1)} | ${r.ev50.toFixed(1)} / ${r.ev99.toFixed(1)} | ${r.failures} | ${r.attested} | ${(r.rssTotal / 1048576).toFixed(0)} MiB, ${kib(r.rssPerAgent)} KiB | ${r.bytesPerAttestation.toFixed(0)} (${kib((r.bytesPerAttestation * 86400) / INTERVAL)} KiB at one per ${INTERVAL} s, before retention) | ${r.verifierCpuMs.toFixed(2)} ms | ${(r.genCpu * 100).toFixed(0)}% of a core |`,
  );
console.log(
  `Keylime 7.14 (peers README, this machine): POST /v2.6/verify/evidence 256-331 small requests/s (2.7-3.9 ms each, one client); 1.6-1.8 s for one request with a 100k-entry list. Target: >= 10x its throughput, p99 < 100 ms, < 50 KiB verifier memory per agent. Load now ${loadavg()[0]!.toFixed(1)}.`,
);
