/**
 * Pull mode in one process, on PGlite and on a real PostgreSQL: PATCH pullUrl (validated), leases
 * (two owners never hold one agent; an expired lease is taken over; a stalled owner's verdict is
 * refused, not stored), and the poller attesting software-TPM agents through an injected
 * fetchEvidence with the same pipeline and storage as push.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { buildApp, createToken, openDatabase, type App, type OpenDatabase } from '../src/index.ts';
import { claimDueAgents } from '../src/db/leases.ts';
import { startPoller, type PollOutcome } from '../src/poller/poller.ts';
import { storeAttestation, evidenceFromBody, type EvidenceBodyT } from '../src/attest-store.ts';
import { ReferenceSetCache } from '../src/refs-store.ts';
import { startPg, type PgServer } from './pg-server.ts';
import { softAgent, type SoftAgent } from './soft-tpm.ts';

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

for (const kind of ['pglite', 'postgres'] as const)
  describe(`pull mode on ${kind}`, () => {
    let pg: PgServer | undefined;
    let database: OpenDatabase;
    let app: App;
    let operate: string;
    const sims = new Map<string, SoftAgent>();
    before(async () => {
      if (kind === 'postgres') pg = await startPg();
      database = await openDatabase(
        pg === undefined ? { kind: 'pglite' } : { kind: 'postgres', url: pg.url },
      );
      app = await buildApp({ database });
      operate = await createToken(database.db, 'operate');
      for (let i = 0; i < 6; i++) {
        const id = `p${i}`;
        const sim = softAgent();
        sims.set(id, sim);
        const r = await app.inject({
          method: 'POST',
          url: '/v1/agents',
          headers: bearer(operate),
          payload: { id, requirePcrs: 'sha256:10', intervalSeconds: 1 },
        });
        assert.equal(r.statusCode, 201, r.body);
        await database.db
          .updateTable('agents')
          .set({ ak_public: sim.akPublic })
          .where('id', '=', id)
          .execute();
      }
    });
    after(async () => {
      await app?.close();
      await pg?.stop();
    });

    test('PATCH pullUrl: http(s) only, shown on the agent, null turns pull off', async () => {
      for (const bad of ['ftp://x/', 'http://', 'http://user@host/', 'not a url', 'http://h/?q=1']) {
        const r = await app.inject({
          method: 'PATCH',
          url: '/v1/agents/p0',
          headers: bearer(operate),
          payload: { pullUrl: bad },
        });
        assert.equal(r.statusCode, 400, bad);
        assert.equal(r.json().error.field, 'body/pullUrl', bad);
      }
      let r = await app.inject({
        method: 'PATCH',
        url: '/v1/agents/p0',
        headers: bearer(operate),
        payload: { pullUrl: 'http://127.0.0.1:9/agents/p0' },
      });
      assert.equal(r.statusCode, 200, r.body);
      assert.equal(r.json().pullUrl, 'http://127.0.0.1:9/agents/p0');
      r = await app.inject({
        method: 'PATCH',
        url: '/v1/agents/p0',
        headers: bearer(operate),
        payload: { pullUrl: null },
      });
      assert.equal(r.json().pullUrl, null);
      for (const id of sims.keys())
        await app.inject({
          method: 'PATCH',
          url: `/v1/agents/${id}`,
          headers: bearer(operate),
          payload: { pullUrl: `http://127.0.0.1:9/agents/${id}` },
        });
    });

    test('leases: one holder per agent, expiry hands over, a stale holder cannot store', async () => {
      const db = database.db;
      const a = await claimDueAgents(db, 'A', 4, 300);
      const b = await claimDueAgents(db, 'B', 10, 300);
      assert.equal(a.length, 4);
      assert.equal(b.length, 2, 'B gets only what A does not hold');
      assert.equal(new Set([...a, ...b].map((x) => x.id)).size, 6);
      assert.equal((await claimDueAgents(db, 'C', 10, 300)).length, 0);
      await new Promise((r) => setTimeout(r, 400));
      const c = await claimDueAgents(db, 'C', 10, 60_000);
      assert.equal(c.length, 6, 'expired leases are taken over');
      // A stalled: its evidence arrives after C took the agent over; nothing is stored
      const id = a[0]!.id;
      const nonce = '11'.repeat(32);
      const ev = evidenceFromBody(sims.get(id)!.evidence(nonce) as EvidenceBodyT);
      await assert.rejects(
        storeAttestation(db, { refs: new ReferenceSetCache(2), retention: 10 }, id, ev, {
          owner: 'A',
          startedAt: a[0]!.claimedAt,
        }),
        (e: Error & { code?: string }) => e.code === 'V_LEASE_LOST',
      );
      const n = await db
        .selectFrom('verdicts')
        .select(sql<number>`count(*)::int`.as('n'))
        .executeTakeFirstOrThrow();
      assert.equal(Number(n.n), 0);
      await db.updateTable('agents').set({ lease_owner: null, lease_until: null }).execute();
    });

    test('the poller attests every agent through fetchEvidence, one at a time, and releases', async () => {
      const outcomes: PollOutcome[] = [];
      const errors: unknown[] = [];
      const busy = new Set<string>();
      let overlap = 0;
      const poller = startPoller({
        db: database.db,
        owner: 'test',
        refs: new ReferenceSetCache(2),
        retention: 100,
        pollMs: 100,
        leaseMs: 5000,
        concurrency: 3,
        fetchEvidence: async (req) => {
          if (busy.has(req.agentId)) overlap++;
          busy.add(req.agentId);
          await new Promise((r) => setTimeout(r, 5));
          busy.delete(req.agentId);
          if (req.agentId === 'p5') throw new Error('unreachable');
          if (req.agentId === 'p4') return { nonce: req.nonce };
          return sims.get(req.agentId)!.evidence(req.nonce, req.offsetBytes);
        },
        onOutcome: (o) => outcomes.push(o),
        onError: (e) => errors.push(e),
      });
      await new Promise((r) => setTimeout(r, 2600));
      await poller.stop();
      assert.deepEqual(errors, []);
      assert.equal(overlap, 0);
      const byAgent = (id: string) => outcomes.filter((o) => o.agentId === id);
      for (const id of ['p0', 'p1', 'p2', 'p3']) {
        const mine = byAgent(id);
        assert.ok(mine.length >= 2, `${id} attested ${mine.length} times (interval 1 s over 2.6 s)`);
        for (const o of mine) {
          assert.equal(o.kind, 'verdict');
          if (o.kind === 'verdict') assert.equal(o.verdict.status, 'pass', JSON.stringify(o.verdict.failure));
        }
      }
      assert.deepEqual(
        byAgent('p4').map((o) => o.kind),
        ['evidence-invalid'],
        'retried only after retryMs',
      );
      assert.deepEqual(
        byAgent('p5').map((o) => o.kind),
        ['unreachable'],
      );
      const rows = await database.db
        .selectFrom('verdicts')
        .select(['agent_id', 'owner', 'started_at', 'at'])
        .execute();
      assert.equal(rows.length, outcomes.filter((o) => o.kind === 'verdict').length, 'every verdict stored');
      assert.ok(rows.every((r) => r.owner === 'test' && r.started_at !== null));
      const held = await database.db
        .selectFrom('agents')
        .select('id')
        .where('lease_owner', 'is not', null)
        .execute();
      assert.deepEqual(held, [], 'no lease left after stop');
      assert.equal(poller.stats().inFlight, 0);
    });
  });
