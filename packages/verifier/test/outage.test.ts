/**
 * A PostgreSQL outage (Debian's server on loopback, shut down with SIGINT: active connections are
 * terminated, new ones refused) while agents attest in push mode and the pull poller runs: every
 * route that needs the database answers 503 V_DATABASE_UNAVAILABLE from the one catalogue — agent
 * routes, the registrar, operator routes, health — never a 500, and the process stays up. When the
 * server is back the verifier recovers on its own: the stored state (verdicts, the agent's state
 * and IMA offset) is intact, and the next attestation continues from where the last one left off.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  buildApp,
  createToken,
  openDatabase,
  ReferenceSetCache,
  startPoller,
  type App,
} from '../src/index.ts';
import { startPg, type PgServer } from './pg-server.ts';
import { softAgent, type SoftAgent } from './soft-tpm.ts';

let pg: PgServer;
let app: App;
let sim: SoftAgent;
let read = '';
const AGENT_TOKEN = 'ima_outage-test-token';
const agent = { authorization: `Agent ${AGENT_TOKEN}` };

before(async () => {
  pg = await startPg();
  const database = await openDatabase({ kind: 'postgres', url: pg.url });
  app = await buildApp({ database });
  read = await createToken(database.db, 'read');
  const operate = await createToken(database.db, 'operate');
  sim = softAgent();
  const r = await app.inject({
    method: 'POST',
    url: '/v1/agents',
    headers: { authorization: `Bearer ${operate}` },
    payload: { id: 'o1', requirePcrs: 'sha256:10' },
  });
  assert.equal(r.statusCode, 201, r.body);
  // a software AK enrolled directly, and a session token for it (enrolment is tested elsewhere)
  await database.db.updateTable('agents').set({ ak_public: sim.akPublic }).where('id', '=', 'o1').execute();
  await database.db
    .insertInto('agent_tokens')
    .values({
      token_sha256: new Uint8Array(createHash('sha256').update(AGENT_TOKEN).digest()),
      agent_id: 'o1',
      expires_at: null,
    })
    .execute();
});
after(async () => {
  await app?.close();
  await pg?.stop();
});

async function pushOnce(): Promise<{ status: string; next: number }> {
  const c = await app.inject({ method: 'POST', url: '/v1/attest/challenge', headers: agent });
  assert.equal(c.statusCode, 200, c.body);
  const { nonce, imaOffset } = c.json() as { nonce: string; imaOffset: { bytes: number } };
  const r = await app.inject({
    method: 'POST',
    url: '/v1/attest/evidence',
    headers: agent,
    payload: sim.evidence(nonce, imaOffset.bytes),
  });
  assert.equal(r.statusCode, 200, r.body);
  const v = r.json().verdict;
  return { status: v.status, next: v.next.imaOffset.bytes };
}

test('an outage is 503 V_DATABASE_UNAVAILABLE on every route; the verifier recovers without losing state', async () => {
  const first = await pushOnce();
  assert.equal(first.status, 'pass');
  assert.ok(first.next > 0);
  const errors: unknown[] = [];
  const database = await openDatabase({ kind: 'postgres', url: pg.url });
  const poller = startPoller({
    db: database.db,
    owner: 'outage-test',
    refs: new ReferenceSetCache(4),
    retention: 10,
    pollMs: 50,
    onError: (e) => errors.push(e),
  });
  try {
    await pg.kill();
    const calls: {
      method: 'GET' | 'POST';
      url: string;
      headers?: Record<string, string>;
      payload?: Record<string, unknown>;
    }[] = [
      { method: 'GET', url: '/health' },
      { method: 'GET', url: '/v1/agents', headers: { authorization: `Bearer ${read}` } },
      { method: 'GET', url: '/v1/agents/o1/verdicts', headers: { authorization: `Bearer ${read}` } },
      { method: 'POST', url: '/v1/attest/challenge', headers: agent },
      { method: 'POST', url: '/v1/registrar/session/challenge', payload: { id: 'o1' } },
      { method: 'POST', url: '/v1/registrar/activate', payload: { id: 'o1', secret: 'AAAA' } },
    ];
    for (const call of calls) {
      const r = await app.inject(call);
      assert.equal(r.statusCode, 503, `${call.method} ${call.url}: ${r.body}`);
      if (call.url !== '/health') assert.equal(r.json().error.code, 'V_DATABASE_UNAVAILABLE', call.url);
    }
    // the poller meets the outage too: it reports and keeps trying, the process stays up
    const t0 = Date.now();
    while (errors.length === 0 && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 50));
    assert.ok(errors.length > 0, 'the poller reported the outage');

    await pg.start();
    const health = await app.inject({ method: 'GET', url: '/health' });
    assert.equal(health.statusCode, 200, health.body);
    const a = await app.inject({
      method: 'GET',
      url: '/v1/agents/o1',
      headers: { authorization: `Bearer ${read}` },
    });
    assert.equal(a.statusCode, 200, a.body);
    assert.equal(a.json().state, 'passing', 'state survived');
    const h = await app.inject({
      method: 'GET',
      url: '/v1/agents/o1/verdicts',
      headers: { authorization: `Bearer ${read}` },
    });
    assert.equal(h.statusCode, 200, h.body);
    const kept = h.json().verdicts as { status: string }[];
    assert.deepEqual(
      kept.map((x) => x.status),
      ['pass'],
      'the one verdict is kept',
    );
    // the next attestation continues from the stored offset
    const c = await app.inject({ method: 'POST', url: '/v1/attest/challenge', headers: agent });
    assert.equal(c.json().imaOffset.bytes, first.next);
    const again = await pushOnce();
    assert.equal(again.status, 'pass');
  } finally {
    await poller.stop();
    await database.close();
  }
});
