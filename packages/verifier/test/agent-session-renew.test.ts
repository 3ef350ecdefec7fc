/**
 * The agent's side of AK-bound sessions, end to end over HTTP: imakit's own agent code
 * (host/agent: enrol, attestOnce, session.ts) against this verifier listening on loopback, with a
 * software TPM. The agent enrols (activation issues its first session), attests; the session is
 * then expired in the database, and the next `attestOnce` meets 401 V_SESSION_EXPIRED, proves its
 * AK with a TPM quote over a session nonce, stores the new token and attests — one call, no
 * operator. A token file of another agent is refused.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp, createToken, openDatabase, type App, type OpenDatabase } from '../src/index.ts';
import type { AgentConfig } from '../../imakit/src/host/agent/config.ts';
import { enrol, agentTokenPath } from '../../imakit/src/host/agent/enrol.ts';
import { attestOnce } from '../../imakit/src/host/agent/attest.ts';
import { ApiError } from '../../imakit/src/host/agent/api-client.ts';
import { startTestTpm, type TestTpm } from '../../imakit/test/unit/tpm-helpers.ts';

let app: App;
let database: OpenDatabase;
let tpm: TestTpm;
let dir = '';
let config: AgentConfig;

before(async () => {
  database = await openDatabase({ kind: 'pglite' });
  app = await buildApp({ database, agentSessionSeconds: 600 });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const operate = await createToken(database.db, 'operate');
  for (const id of ['renew-1', 'renew-2']) {
    const r = await app.inject({
      method: 'POST',
      url: '/v1/agents',
      headers: { authorization: `Bearer ${operate}` },
      payload: { id, requirePcrs: 'sha256:10' },
    });
    assert.equal(r.statusCode, 201, r.body);
  }
  tpm = await startTestTpm({ manufacture: false });
  dir = mkdtempSync(join(tmpdir(), 'imakit-session-'));
  writeFileSync(join(dir, 'ima-list'), new Uint8Array(0));
  writeFileSync(join(dir, 'boot_id'), 'b8f2c6c0-0000-4000-8000-000000000001\n');
  config = {
    verifier: url,
    id: 'renew-1',
    tpm: tpm.selector,
    akDir: join(dir, 'ak'),
    ek: 'rsa',
    imaList: join(dir, 'ima-list'),
    eventLog: undefined,
    bootIdPath: join(dir, 'boot_id'),
    stateDir: join(dir, 'state'),
    intervalSeconds: 60,
    maxBackoffSeconds: 60,
    tls: { ca: undefined, insecure: false },
    listen: undefined,
  };
});
after(async () => {
  await app?.close();
  tpm?.stop();
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

test('an expired session is renewed by the agent with a TPM quote, and the attestation goes on', async () => {
  await enrol(config);
  const first = readFileSync(agentTokenPath(config), 'utf8').trim();
  let out = await attestOnce(config);
  assert.equal(out.verdict.status, 'pass', JSON.stringify(out.verdict));

  await database.db
    .updateTable('agent_tokens')
    .set({ expires_at: new Date(Date.now() - 1000) })
    .where('agent_id', '=', 'renew-1')
    .execute();
  out = await attestOnce(config);
  assert.equal(out.verdict.status, 'pass', JSON.stringify(out.verdict));
  const renewed = readFileSync(agentTokenPath(config), 'utf8').trim();
  assert.notEqual(renewed, first, 'a new session token was stored');
  const row = await database.db
    .selectFrom('agent_tokens')
    .select('expires_at')
    .where('agent_id', '=', 'renew-1')
    .executeTakeFirstOrThrow();
  assert.ok(
    new Date(row.expires_at!).getTime() > Date.now() + 590_000,
    'the new session lasts agentSessionSeconds',
  );
});

test("another agent's identity: its AK proof fails, and the agent says so (E_API_REJECTED, V_AK_PROOF_FAILED)", async () => {
  // renew-2 is enrolled with its own AK; this agent's AK cannot renew renew-2's session
  const other: AgentConfig = {
    ...config,
    id: 'renew-2',
    akDir: join(dir, 'ak2'),
    stateDir: join(dir, 'state2'),
  };
  await enrol(other);
  await database.db
    .updateTable('agent_tokens')
    .set({ expires_at: new Date(Date.now() - 1000) })
    .where('agent_id', '=', 'renew-2')
    .execute();
  const impostor: AgentConfig = { ...other, akDir: config.akDir };
  await assert.rejects(attestOnce(impostor), (e: unknown) => {
    assert.ok(e instanceof ApiError);
    assert.equal(e.code, 'E_API_REJECTED');
    assert.equal(e.status, 403);
    assert.equal(e.apiCode, 'V_AK_PROOF_FAILED');
    return true;
  });
});
