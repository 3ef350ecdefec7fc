/**
 * `imakit verifier serve --database postgres://…` through the real CLI (child processes) on a
 * PostgreSQL started on loopback: two verifier processes with their own data directories share
 * one database (an agent added through one is seen by the other; each one's admin token works on
 * both), no PGlite directory is made, and a PostgreSQL outage is a 503 V_DATABASE_UNAVAILABLE
 * over HTTP with the processes staying up, answering again when the server is back. A
 * --database that is not postgres:// is exit 2; a database that cannot be reached at start, 5.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../imakit/src/cli/main.ts';
import { memoryIo } from '../../imakit/src/cli/io.ts';
import { serveVerifier, type ServedVerifier } from '../../imakit/test/unit/cli/verifier-child.ts';
import { freePort, startPg, type PgServer } from './pg-server.ts';

let pg: PgServer;
let dir = '';
const served: ServedVerifier[] = [];

before(async () => {
  pg = await startPg();
  dir = mkdtempSync(join(tmpdir(), 'imakit-serve-pg-'));
});
after(async () => {
  for (const s of served) await s.stop();
  await pg?.stop();
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

const call = async (v: ServedVerifier, token: string, method: string, path: string, body?: unknown) => {
  const r = await fetch(v.url + path, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  return { status: r.status, json: (await r.json()) as { error?: { code: string }; state?: string } };
};

test('two verifier serve processes on one PostgreSQL share state; an outage is 503, then they recover', async () => {
  const [a, b] = [join(dir, 'a'), join(dir, 'b')];
  for (const d of [a, b])
    served.push(
      await serveVerifier([
        '--http',
        '--listen',
        '127.0.0.1:0',
        '--data',
        d,
        '--database',
        pg.url,
        '--poll-interval',
        '0.5',
      ]),
    );
  const [va, vb] = served as [ServedVerifier, ServedVerifier];
  assert.equal(va.info.database, 'postgres');
  assert.equal(va.info.pollIntervalSeconds, 0.5);
  assert.ok(!existsSync(join(a, 'db')), 'no PGlite directory with --database');
  const ta = readFileSync(join(a, 'admin-token'), 'utf8').trim();
  const tb = readFileSync(join(b, 'admin-token'), 'utf8').trim();
  assert.notEqual(ta, tb);

  assert.equal((await call(va, ta, 'POST', '/v1/agents', { id: 'shared-1' })).status, 201);
  let r = await call(vb, ta, 'GET', '/v1/agents/shared-1');
  assert.equal(r.status, 200);
  assert.equal(r.json.state, 'unenrolled');
  assert.equal((await call(va, tb, 'GET', '/v1/agents/shared-1')).status, 200, "b's token works on a");

  await pg.kill();
  for (const v of [va, vb]) {
    r = await call(v, ta, 'GET', '/v1/agents/shared-1');
    assert.equal(r.status, 503);
    assert.equal(r.json.error?.code, 'V_DATABASE_UNAVAILABLE');
  }
  const health = await fetch(`${va.url}/health`);
  assert.equal(health.status, 503);
  assert.equal(va.child.exitCode, null, 'the process stays up');

  await pg.start();
  for (const v of [va, vb]) {
    r = await call(v, tb, 'GET', '/v1/agents/shared-1');
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.state, 'unenrolled', 'state kept');
  }
  for (const v of served.splice(0)) assert.equal(await v.stop(), 0);
});

test('verifier serve --database: not postgres:// is exit 2; an unreachable server is exit 5', async () => {
  const serve = async (data: string, database: string) => {
    const io = memoryIo();
    const argv = ['verifier', 'serve', '--http', '--listen', '127.0.0.1:0', '--data', join(dir, data)];
    return { code: await main([...argv, '--database', database], io), err: io.err() };
  };
  let r = await serve('c', 'mysql://x/y');
  assert.equal(r.code, 2);
  assert.match(r.err, /--database/);
  const nobody = `postgres://postgres@127.0.0.1:${await freePort()}/postgres`;
  r = await serve('d', nobody);
  assert.equal(r.code, 5, r.err);
  assert.match(r.err, /cannot open the database/);
});
