/**
 * POST /v1/attest/challenge on PGlite: the bound on unanswered challenges per agent (429
 * V_RATE_LIMITED, expired ones not counted and purged), the agent's state (paused, not enrolled),
 * and imaOffset following the stored list position after an accepted attestation.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { buildApp, openDatabase, type App, type OpenDatabase } from '../src/index.ts';
import { softAgent } from './soft-tpm.ts';

let database: OpenDatabase;
let app: App;
const tokens = new Map<string, string>();
const sim = softAgent();

async function addAgent(id: string, enrolled: boolean): Promise<void> {
  await database.db
    .insertInto('agents')
    .values({
      id,
      name: id,
      state: 'failing',
      ak_public: enrolled ? sim.akPublic : null,
      require_pcrs: 'sha256:10',
      interval_s: 60,
    })
    .execute();
  const token = `ima_${randomBytes(32).toString('base64url')}`;
  await database.db
    .insertInto('agent_tokens')
    .values({ agent_id: id, token_sha256: new Uint8Array(createHash('sha256').update(token).digest()) })
    .execute();
  tokens.set(id, token);
}

const challenge = (id: string) =>
  app.inject({
    method: 'POST',
    url: '/v1/attest/challenge',
    headers: { authorization: `Agent ${tokens.get(id)}`, 'content-type': 'application/json' },
    payload: '{}',
  });

before(async () => {
  database = await openDatabase({ kind: 'pglite' });
  app = await buildApp({ database, maxOutstandingNonces: 2, nonceTtlSeconds: 1 });
  await addAgent('a1', true);
  await addAgent('a2', true);
  await addAgent('unenrolled', false);
});
after(async () => {
  await app?.close();
});

test('at most maxOutstandingNonces unanswered challenges; expired ones free their place and are purged', async () => {
  assert.equal((await challenge('a1')).statusCode, 200);
  assert.equal((await challenge('a1')).statusCode, 200);
  const third = await challenge('a1');
  assert.equal(third.statusCode, 429, third.body);
  assert.equal(third.json().error.code, 'V_RATE_LIMITED');
  // another agent's bound is its own
  assert.equal((await challenge('a2')).statusCode, 200);
  await new Promise((r) => setTimeout(r, 1100));
  assert.equal((await challenge('a1')).statusCode, 200);
  const { n } = await database.db
    .selectFrom('nonces')
    .select(sql<number>`count(*)::int`.as('n'))
    .where('agent_id', '=', 'a1')
    .executeTakeFirstOrThrow();
  assert.equal(Number(n), 1, 'the two expired challenges were deleted when the third was issued');
});

test('a paused or unenrolled agent gets no challenge', async () => {
  const u = await challenge('unenrolled');
  assert.equal(u.statusCode, 409, u.body);
  assert.equal(u.json().error.code, 'V_NOT_ENROLLED');
  await database.db.updateTable('agents').set({ state: 'paused' }).where('id', '=', 'a2').execute();
  const p = await challenge('a2');
  assert.equal(p.json().error.code, 'V_AGENT_PAUSED');
  assert.equal(p.statusCode >= 400 && p.statusCode < 500, true);
  await database.db.updateTable('agents').set({ state: 'failing' }).where('id', '=', 'a2').execute();
});

test('imaOffset is where the stored list continues', async () => {
  await new Promise((r) => setTimeout(r, 1100));
  const first = await challenge('a2');
  assert.deepEqual(first.json().imaOffset, { entries: 0, bytes: 0 });
  const ev = await app.inject({
    method: 'POST',
    url: '/v1/attest/evidence',
    headers: { authorization: `Agent ${tokens.get('a2')}`, 'content-type': 'application/json' },
    payload: sim.evidence(first.json().nonce, 0),
  });
  assert.equal(ev.statusCode, 200, ev.body);
  assert.equal(ev.json().verdict.status, 'pass', ev.body);
  const next = await challenge('a2');
  assert.equal(next.json().imaOffset.entries, 1);
  assert.ok(next.json().imaOffset.bytes > 0);
});
