/**
 * Agent authentication (sessions bound to the AK) and request rate limits, through inject(), on
 * PGlite with a real software TPM: two agents enrolled by TPM2_ActivateCredential; a session that
 * expires is refused with V_SESSION_EXPIRED and renewed by a TPM2_Quote over a session nonce signed
 * by the agent's own AK; another agent's AK, nonce or token is refused with its own code.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { buildApp, createToken, openDatabase, type App, type OpenDatabase } from '../src/index.ts';
import { createRateLimiter, DEFAULT_RATE_LIMITS } from '../src/rate-limit.ts';
import { SwtpmMachine } from './swtpm-machine.ts';
import { enrolInTpm } from './tpm-enrol.ts';

describe('agent sessions bound to the AK', () => {
  let app: App;
  let database: OpenDatabase;
  let m: SwtpmMachine;
  let operate = '';
  const aks: Record<string, { handle: number; publicBytes: Uint8Array }> = {};
  const tokens: Record<string, string> = {};
  const agent = (t: string) => ({ authorization: `Agent ${t}` });

  before(async () => {
    database = await openDatabase({ kind: 'pglite' });
    app = await buildApp({ database, agentSessionSeconds: 600 });
    operate = await createToken(database.db, 'operate');
    m = await SwtpmMachine.start();
    for (const id of ['host-a', 'host-b']) {
      aks[id] = await m.newAk();
      let r = await app.inject({
        method: 'POST',
        url: '/v1/agents',
        headers: { authorization: `Bearer ${operate}` },
        payload: { id },
      });
      assert.equal(r.statusCode, 201, r.body);
      r = (await enrolInTpm(app, m, id, aks[id])).activated;
      assert.equal(r.statusCode, 200, r.body);
      tokens[id] = r.json().agentToken;
      // the session issued at activation expires in agentSessionSeconds
      const ttl = Date.parse(r.json().expiresAt) - Date.now();
      assert.ok(ttl > 590_000 && ttl <= 600_000, `session ttl ${ttl} ms`);
    }
  });
  after(async () => {
    await m?.stop();
    await app?.close();
  });

  const challenge = (headers: Record<string, string>) =>
    app.inject({ method: 'POST', url: '/v1/attest/challenge', headers });
  const sessionChallenge = async (id: string) => {
    const r = await app.inject({ method: 'POST', url: '/v1/registrar/session/challenge', payload: { id } });
    assert.equal(r.statusCode, 200, r.body);
    return r.json() as { nonce: string; pcrs: string };
  };
  const prove = async (id: string, nonce: string, pcrs: string, akOf = id) =>
    app.inject({
      method: 'POST',
      url: '/v1/registrar/session',
      payload: { id, nonce, ...(await m.quote(aks[akOf]!.handle, nonce, pcrs)) },
    });

  test('no credentials, a malformed header or an unknown token: 401 V_UNAUTHENTICATED', async () => {
    for (const headers of [
      {},
      { authorization: 'Agent' },
      agent('ima_nope'),
      { authorization: `Bearer ${operate}` },
    ]) {
      const r = await challenge(headers);
      assert.equal(r.statusCode, 401, JSON.stringify(headers));
      assert.equal(r.json().error.code, 'V_UNAUTHENTICATED');
    }
    assert.equal((await challenge(agent(tokens['host-a']!))).statusCode, 200);
  });

  test("another agent's credentials: its token answers only its own nonces (403 V_NONCE_OTHER_AGENT)", async () => {
    const c = (await challenge(agent(tokens['host-a']!))).json();
    const q = await m.quote(aks['host-a']!.handle, c.nonce, c.pcrs);
    const r = await app.inject({
      method: 'POST',
      url: '/v1/attest/evidence',
      headers: agent(tokens['host-b']!),
      payload: { nonce: c.nonce, ...q },
    });
    assert.equal(r.statusCode, 403);
    assert.equal(r.json().error.code, 'V_NONCE_OTHER_AGENT');
  });

  test('an expired session is 401 V_SESSION_EXPIRED; an AK proof renews it and revokes the old token', async () => {
    await database.db
      .updateTable('agent_tokens')
      .set({ expires_at: new Date(Date.now() - 1000) })
      .where('agent_id', '=', 'host-a')
      .execute();
    let r = await challenge(agent(tokens['host-a']!));
    assert.equal(r.statusCode, 401);
    assert.equal(r.json().error.code, 'V_SESSION_EXPIRED');
    assert.equal(r.json().error.agent, 'host-a');

    const c = await sessionChallenge('host-a');
    assert.equal(c.pcrs, 'sha256:0');
    r = await prove('host-a', c.nonce, c.pcrs);
    assert.equal(r.statusCode, 200, r.body);
    const fresh = r.json().agentToken as string;
    assert.notEqual(fresh, tokens['host-a']);
    assert.equal((await challenge(agent(fresh))).statusCode, 200);
    // the old token is gone, not merely expired
    r = await challenge(agent(tokens['host-a']!));
    assert.equal(r.json().error.code, 'V_UNAUTHENTICATED');
    tokens['host-a'] = fresh;
    // single use: the same nonce again
    r = await prove('host-a', c.nonce, c.pcrs);
    assert.equal(r.statusCode, 409);
    assert.equal(r.json().error.code, 'V_NONCE_UNKNOWN');
  });

  test("a proof with another agent's AK, or another agent's nonce, is refused", async () => {
    let c = await sessionChallenge('host-a');
    let r = await prove('host-a', c.nonce, c.pcrs, 'host-b');
    assert.equal(r.statusCode, 403);
    assert.equal(r.json().error.code, 'V_AK_PROOF_FAILED');
    assert.equal(r.json().error.reason, 'signature-invalid');
    c = await sessionChallenge('host-a');
    r = await prove('host-b', c.nonce, c.pcrs);
    assert.equal(r.statusCode, 403);
    assert.equal(r.json().error.code, 'V_NONCE_OTHER_AGENT');
    // a quote over a nonce the verifier did not issue for this proof
    const own = await sessionChallenge('host-a');
    r = await app.inject({
      method: 'POST',
      url: '/v1/registrar/session',
      payload: {
        id: 'host-a',
        nonce: own.nonce,
        ...(await m.quote(aks['host-a']!.handle, 'ab'.repeat(32), own.pcrs)),
      },
    });
    assert.equal(r.statusCode, 403);
    assert.equal(r.json().error.reason, 'nonce-mismatch');
  });

  test('a session nonce never answers for evidence, and an evidence nonce never for a session', async () => {
    const s = await sessionChallenge('host-a');
    const q = await m.quote(aks['host-a']!.handle, s.nonce, 'sha256:0-7,10');
    let r = await app.inject({
      method: 'POST',
      url: '/v1/attest/evidence',
      headers: agent(tokens['host-a']!),
      payload: { nonce: s.nonce, ...q },
    });
    assert.equal(r.statusCode, 409);
    assert.equal(r.json().error.code, 'V_NONCE_UNKNOWN');
    const c = (await challenge(agent(tokens['host-a']!))).json();
    r = await prove('host-a', c.nonce, 'sha256:0');
    assert.equal(r.statusCode, 409);
    assert.equal(r.json().error.code, 'V_NONCE_UNKNOWN');
  });

  test('OpenAPI: agent routes use the agent scheme, the session routes need no credential', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json();
    assert.equal(doc.components.securitySchemes.agent.type, 'apiKey');
    for (const path of ['/v1/attest/challenge', '/v1/attest/evidence'])
      assert.deepEqual(doc.paths[path].post.security, [{ agent: [] }], path);
    for (const path of ['/v1/registrar/session/challenge', '/v1/registrar/session'])
      assert.deepEqual(doc.paths[path].post.security, [], path);
    assert.ok(
      doc.paths['/v1/registrar/session'].post.requestBody.content['application/json'].schema.properties.quote,
    );
  });

  test('session challenges: unknown agent 404, not enrolled 409, bad body 400', async () => {
    let r = await app.inject({
      method: 'POST',
      url: '/v1/registrar/session/challenge',
      payload: { id: 'ghost' },
    });
    assert.equal(r.json().error.code, 'V_NOT_FOUND');
    await app.inject({
      method: 'POST',
      url: '/v1/agents',
      headers: { authorization: `Bearer ${operate}` },
      payload: { id: 'host-new' },
    });
    r = await app.inject({
      method: 'POST',
      url: '/v1/registrar/session/challenge',
      payload: { id: 'host-new' },
    });
    assert.equal(r.statusCode, 409);
    assert.equal(r.json().error.code, 'V_NOT_ENROLLED');
    r = await app.inject({
      method: 'POST',
      url: '/v1/registrar/session',
      payload: { id: 'host-a', nonce: 'zz', quote: { attest: '', signature: '' }, pcrs: {} },
    });
    assert.equal(r.statusCode, 400);
    assert.equal(r.json().error.code, 'V_VALIDATION');
    assert.match(r.json().error.field, /nonce/);
  });
});

describe('rate limits', () => {
  test('token bucket: burst, refill, Retry-After, bounded keys (least recently used dropped)', () => {
    let t = 0;
    const l = createRateLimiter({ perSecond: 2, burst: 3 }, 2, () => t);
    for (let i = 0; i < 3; i++) assert.deepEqual(l.take('a'), { ok: true });
    assert.deepEqual(l.take('a'), { ok: false, retryAfterS: 1 });
    t = 500; // one token back
    assert.deepEqual(l.take('a'), { ok: true });
    assert.equal(l.take('a').ok, false);
    l.take('b');
    l.take('c'); // 'a' was least recently used: dropped
    assert.equal(l.size(), 2);
    assert.deepEqual(l.take('a'), { ok: true }, 'a dropped key starts with a full bucket');
    assert.equal(l.size(), 2);
    const slow = createRateLimiter({ perSecond: 0.1, burst: 1 }, 10, () => 0);
    slow.take('x');
    assert.deepEqual(slow.take('x'), { ok: false, retryAfterS: 10 });
    assert.throws(() => createRateLimiter({ perSecond: 0, burst: 1 }, 1), RangeError);
    assert.throws(() => createRateLimiter({ perSecond: 1, burst: 1 }, 0), RangeError);
  });

  test('defaults are generous for a 10,000-agent run and bounded in memory', () => {
    assert.equal(DEFAULT_RATE_LIMITS.exemptLoopback, true);
    assert.ok(DEFAULT_RATE_LIMITS.maxKeys >= 10_000);
  });

  test('per address, per operator token, per agent: 429 V_RATE_LIMITED with Retry-After', async () => {
    const database = await openDatabase({ kind: 'pglite' });
    const app = await buildApp({
      database,
      rateLimit: {
        address: { perSecond: 0.01, burst: 3 },
        operator: { perSecond: 0.01, burst: 2 },
        agent: { perSecond: 0.01, burst: 1 },
        exemptLoopback: false,
      },
    });
    try {
      const read1 = await createToken(database.db, 'read');
      const read2 = await createToken(database.db, 'read');
      const get = (token: string, remoteAddress: string) =>
        app.inject({
          method: 'GET',
          url: '/v1/agents',
          remoteAddress,
          headers: { authorization: `Bearer ${token}` },
        });
      // per token: two, then 429 — from another address too
      assert.equal((await get(read1, '10.0.0.1')).statusCode, 200);
      assert.equal((await get(read1, '10.0.0.2')).statusCode, 200);
      let r = await get(read1, '10.0.0.3');
      assert.equal(r.statusCode, 429);
      assert.equal(r.json().error.code, 'V_RATE_LIMITED');
      assert.equal(r.headers['retry-after'], '100');
      assert.equal(r.json().error.retryAfterSeconds, 100);
      // another token is its own bucket
      assert.equal((await get(read2, '10.0.0.3')).statusCode, 200);
      // per address: 10.0.0.3 has used 2 of 3; the third passes, the fourth is refused before any lookup
      assert.equal((await get(read2, '10.0.0.3')).statusCode, 200);
      r = await app.inject({ method: 'GET', url: '/health', remoteAddress: '10.0.0.3' });
      assert.equal(r.statusCode, 429);
      assert.ok(Number(r.headers['retry-after']) >= 1);
      // unauthenticated routes are limited per address too
      for (let i = 0; i < 3; i++)
        assert.equal(
          (
            await app.inject({
              method: 'POST',
              url: '/v1/registrar/activate',
              remoteAddress: '10.0.0.9',
              payload: {},
            })
          ).statusCode,
          400,
        );
      r = await app.inject({
        method: 'POST',
        url: '/v1/registrar/activate',
        remoteAddress: '10.0.0.9',
        payload: {},
      });
      assert.equal(r.statusCode, 429);
      // per agent: the bucket is the agent id's, whatever address it comes from
      await database.db
        .insertInto('agents')
        .values({
          id: 'h',
          name: 'h',
          state: 'unenrolled',
          require_pcrs: 'sha256:0',
          interval_s: 60,
          ak_public: new Uint8Array(1),
        })
        .execute();
      await database.db
        .insertInto('agent_tokens')
        .values({
          token_sha256: new Uint8Array(
            await crypto.subtle.digest('SHA-256', new TextEncoder().encode('ima_agenttoken')),
          ),
          agent_id: 'h',
          expires_at: null,
        })
        .execute();
      const ch = (ip: string) =>
        app.inject({
          method: 'POST',
          url: '/v1/attest/challenge',
          remoteAddress: ip,
          headers: { authorization: 'Agent ima_agenttoken' },
        });
      assert.equal((await ch('10.1.0.1')).statusCode, 200);
      r = await ch('10.1.0.2');
      assert.equal(r.statusCode, 429);
      assert.equal(r.json().error.code, 'V_RATE_LIMITED');
    } finally {
      await app.close();
    }
  });

  test('loopback is exempt from the address limit by default; rateLimit: false turns limits off', async () => {
    for (const rateLimit of [{ address: { perSecond: 0.01, burst: 1 } }, false] as const) {
      const app = await buildApp({ database: await openDatabase({ kind: 'pglite' }), rateLimit });
      try {
        for (let i = 0; i < 5; i++)
          assert.equal(
            (await app.inject({ method: 'GET', url: '/health', remoteAddress: '127.0.0.1' })).statusCode,
            200,
          );
        const other = await app.inject({ method: 'GET', url: '/health', remoteAddress: '192.0.2.1' });
        assert.equal(other.statusCode, 200);
        const again = await app.inject({ method: 'GET', url: '/health', remoteAddress: '192.0.2.1' });
        assert.equal(again.statusCode, rateLimit === false ? 200 : 429);
      } finally {
        await app.close();
      }
    }
  });
});
