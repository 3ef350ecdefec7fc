/**
 * Scale-out (issue 13 part 4): three verifier processes (test/poller-child.ts: buildApp + a poller)
 * on one real PostgreSQL on loopback, N simulated agents (software-TPM AKs, test/soft-tpm.ts)
 * served over HTTP by this process (each answer takes AGENT_LATENCY_MS, like a TPM quote), one verifier SIGKILLed mid-run. Asserts from the verdict rows
 * (each carries its start, end and process): every agent keeps being attested, no two
 * attestations of one agent overlap (and the agents never saw two requests at once), no verdict
 * a surviving process reported is missing, the killed process's agents are taken over within
 * leaseMs + pollMs, no lease stays expired and unclaimed, and a push challenge from one process
 * is answered at another. Prints the measured figures.
 * IMAKIT_SCALE_AGENTS sets N (default 1000).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { sql } from 'kysely';
import { openDatabase } from '../src/index.ts';
import { startPg } from './pg-server.ts';
import { softAgent, type SoftAgent } from './soft-tpm.ts';

const N = Number(process.env.IMAKIT_SCALE_AGENTS ?? 1000);
const INTERVAL_S = 5;
const POLL_MS = 500;
const LEASE_MS = 3000;
const CONCURRENCY = 24;
const BEFORE_KILL_MS = 8000;
const AFTER_KILL_MS = 16000;
/** attestations every agent must have started after the kill (16 s at one per 5 s: about 3) */
const K = 2;
/** how long a simulated agent takes to answer (a TPM quote takes about this long) */
const AGENT_LATENCY_MS = 150;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Child {
  readonly proc: ChildProcess;
  readonly owner: string;
  readonly port: number;
  readonly lines: string[];
}

async function spawnChild(pgUrl: string, owner: string): Promise<Child> {
  const proc = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '--conditions=source',
      join(import.meta.dirname, 'poller-child.ts'),
      pgUrl,
      owner,
      String(POLL_MS),
      String(LEASE_MS),
      String(CONCURRENCY),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'], cwd: join(import.meta.dirname, '..') },
  );
  const lines: string[] = [];
  let buf = '';
  proc.stdout!.setEncoding('utf8');
  const port = await new Promise<number>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${owner} did not start within 60 s`)), 60_000);
    proc.once('exit', (c) => reject(new Error(`${owner} exited ${c}`)));
    proc.stdout!.on('data', (d: string) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        lines.push(line);
        if (line.startsWith('ready ')) {
          clearTimeout(t);
          resolve((JSON.parse(line.slice(6)) as { port: number }).port);
        }
      }
    });
  });
  return { proc, owner, port, lines };
}

test(`three verifiers, ${N} pull agents, one SIGKILLed`, { timeout: 240_000 }, async () => {
  const pg = await startPg();
  const { db, close } = await openDatabase({ kind: 'postgres', url: pg.url, max: 2 });
  const children: Child[] = [];
  const server = createServer();
  try {
    // the simulated agents: one loopback server, /agents/<id>/v1/evidence
    const sims = new Map<string, SoftAgent>();
    for (let i = 0; i < N; i++) sims.set(`sim-${String(i).padStart(4, '0')}`, softAgent());
    const busy = new Set<string>();
    let overlaps = 0;
    let served = 0;
    server.on('request', (req, res) => {
      const u = new URL(req.url ?? '/', 'http://x');
      const m = /^\/agents\/([^/]+)\/v1\/evidence$/.exec(u.pathname);
      const sim = m === null ? undefined : sims.get(m[1]!);
      if (sim === undefined) {
        res.writeHead(404).end();
        return;
      }
      const id = m![1]!;
      if (busy.has(id)) overlaps++;
      busy.add(id);
      // the request is over when its connection closes too (the asking process was killed)
      res.once('close', () => busy.delete(id));
      const body = JSON.stringify(
        sim.evidence(u.searchParams.get('nonce') ?? '', Number(u.searchParams.get('offset'))),
      );
      served++;
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(body);
      }, AGENT_LATENCY_MS);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const simPort = (server.address() as { port: number }).port;
    // first due times spread over one interval, as in a fleet that has been running a while
    const base = Date.now() + 2000;
    const rows = [...sims].map(([id, s], i) => ({
      id,
      name: id,
      state: 'failing',
      ak_public: s.akPublic,
      require_pcrs: 'sha256:10',
      interval_s: INTERVAL_S,
      pull_url: `http://127.0.0.1:${simPort}/agents/${id}`,
      next_due: new Date(base + Math.floor((i / N) * INTERVAL_S * 1000)),
    }));
    for (let i = 0; i < rows.length; i += 500)
      await db
        .insertInto('agents')
        .values(rows.slice(i, i + 500))
        .execute();
    // a push-only agent with a token (enrolment itself is attest.test.ts's subject)
    const pushSim = softAgent();
    const token = `ima_${randomBytes(32).toString('base64url')}`;
    await db
      .insertInto('agents')
      .values({
        id: 'push-1',
        name: 'push-1',
        state: 'failing',
        ak_public: pushSim.akPublic,
        require_pcrs: 'sha256:10',
        interval_s: 60,
      })
      .execute();
    await db
      .insertInto('agent_tokens')
      .values({
        agent_id: 'push-1',
        token_sha256: new Uint8Array(createHash('sha256').update(token).digest()),
      })
      .execute();

    const t0 = Date.now();
    children.push(...(await Promise.all([0, 1, 2].map((i) => spawnChild(pg.url, `verifier-${i}`)))));
    const startMs = Date.now() - t0;

    // push: the challenge from one process, the evidence to another
    const auth = { authorization: `Agent ${token}`, 'content-type': 'application/json' };
    const ch = (await (
      await fetch(`http://127.0.0.1:${children[1]!.port}/v1/attest/challenge`, {
        method: 'POST',
        headers: auth,
        body: '{}',
      })
    ).json()) as { nonce: string };
    const pushed = await fetch(`http://127.0.0.1:${children[2]!.port}/v1/attest/evidence`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify(pushSim.evidence(ch.nonce, 0)),
    });
    assert.equal(pushed.status, 200);
    assert.equal(((await pushed.json()) as { verdict: { status: string } }).verdict.status, 'pass');

    await sleep(BEFORE_KILL_MS);
    const victim = children[0]!;
    // kill while it holds leases (attestations in flight), so the takeover is exercised
    for (let tries = 0; tries < 250; tries++) {
      const live = await db
        .selectFrom('agents')
        .select(sql<number>`count(*)::int`.as('n'))
        .where('lease_owner', '=', victim.owner)
        .where('lease_until', '>', sql<Date>`now()`)
        .executeTakeFirstOrThrow();
      if (Number(live.n) >= 1) break;
      await sleep(20);
    }
    victim.proc.kill('SIGKILL');
    await new Promise((r) => victim.proc.once('exit', r));
    const { killAt } = await sql<{ killAt: Date }>`SELECT now() AS "killAt"`
      .execute(db)
      .then((r) => r.rows[0]!);
    const held = await db
      .selectFrom('agents')
      .select('id')
      .where('lease_owner', '=', victim.owner)
      .where('lease_until', '>', sql<Date>`now()`)
      .execute();

    // watch for leases that expired and stayed unclaimed
    let worstExpiredMs = 0;
    const until = Date.now() + AFTER_KILL_MS;
    while (Date.now() < until) {
      const r = await sql<{ ms: number | null }>`
        SELECT max(extract(epoch FROM now() - lease_until) * 1000)::float8 AS ms
        FROM agents WHERE lease_until < now()`.execute(db);
      worstExpiredMs = Math.max(worstExpiredMs, Number(r.rows[0]?.ms ?? 0));
      await sleep(250);
    }
    const stats: Record<string, { verdicts: number; errors: string[] }> = {};
    await Promise.all(
      children.slice(1).map(async (c) => {
        const exited = new Promise((r) => c.proc.once('exit', r));
        c.proc.kill('SIGTERM');
        await exited;
        const line = c.lines.find((l) => l.startsWith('stats '));
        assert.ok(line !== undefined, `${c.owner} printed its stats`);
        stats[c.owner] = JSON.parse(line.slice(6)) as { verdicts: number; errors: string[] };
      }),
    );
    const endAt = new Date();

    const verdicts = await db
      .selectFrom('verdicts')
      .select(['agent_id', 'owner', 'status', 'started_at', 'at'])
      .where('owner', 'is not', null)
      .orderBy('agent_id')
      .orderBy('started_at')
      .execute();
    const byAgent = new Map<string, typeof verdicts>();
    for (const v of verdicts) byAgent.set(v.agent_id, [...(byAgent.get(v.agent_id) ?? []), v]);

    // no verdict lost: what each surviving process reported is in the database
    for (const c of children.slice(1)) {
      assert.deepEqual(stats[c.owner]!.errors, [], `${c.owner} errors`);
      assert.equal(verdicts.filter((v) => v.owner === c.owner).length, stats[c.owner]!.verdicts, c.owner);
    }
    assert.equal(verdicts.filter((v) => v.status !== 'pass').length, 0, 'every verdict passes');
    assert.equal(overlaps, 0, 'no agent was asked twice at once');
    let minAfter = Infinity;
    let overlapping = 0;
    let takeoverWorst = 0;
    const heldSet = new Set(held.map((h) => h.id));
    for (const id of sims.keys()) {
      const vs = byAgent.get(id) ?? [];
      for (let i = 1; i < vs.length; i++)
        if (new Date(vs[i]!.started_at!).getTime() < new Date(vs[i - 1]!.at).getTime()) overlapping++;
      const after = vs.filter((v) => new Date(v.started_at!).getTime() >= killAt.getTime());
      minAfter = Math.min(minAfter, after.length);
      if (heldSet.has(id)) {
        const first = after.find((v) => v.owner !== victim.owner);
        assert.ok(first !== undefined, `${id} was taken over`);
        takeoverWorst = Math.max(takeoverWorst, new Date(first.started_at!).getTime() - killAt.getTime());
      }
    }
    const stuck = await db.selectFrom('agents').select('id').where('lease_owner', 'is not', null).execute();
    const figures = {
      agents: N,
      processes: 3,
      childStartMs: startMs,
      attestations: verdicts.length,
      servedBySimulatedAgents: served,
      inFlightWithKilledProcess: served - verdicts.length,
      perSecond: Math.round((verdicts.length / (endAt.getTime() - t0 - startMs)) * 1000),
      byOwner: Object.fromEntries(
        children.map((c) => [c.owner, verdicts.filter((v) => v.owner === c.owner).length]),
      ),
      heldByKilledAtKill: held.length,
      takeoverWorstMs: takeoverWorst,
      worstExpiredUnclaimedMs: Math.round(worstExpiredMs),
      minAttestationsAfterKill: minAfter,
    };
    process.stdout.write(`# scale-out figures ${JSON.stringify(figures)}\n`);
    assert.ok(held.length > 0, 'the killed process held leases');
    assert.ok(served >= verdicts.length, 'every pull verdict answers evidence an agent served');
    assert.equal(overlapping, 0, 'no two attestations of one agent overlap in time');
    assert.ok(minAfter >= K, `every agent attested at least ${K} times after the kill (least: ${minAfter})`);
    assert.ok(
      takeoverWorst <= LEASE_MS + POLL_MS + 1000,
      `takeover within leaseMs + pollMs (+1 s): ${takeoverWorst} ms`,
    );
    assert.ok(
      worstExpiredMs <= POLL_MS + 1000,
      `no lease stayed expired and unclaimed: ${worstExpiredMs} ms`,
    );
    assert.deepEqual(stuck, [], 'no lease held after the survivors stopped');
  } finally {
    for (const c of children)
      if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
    server.closeAllConnections();
    server.close();
    await close();
    await pg.stop();
  }
});
