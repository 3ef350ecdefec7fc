/**
 * Every route and its errors through fastify's inject(), on both storage back ends: PGlite (the
 * embedded default) and a real PostgreSQL started on loopback. Same migrations, same answers.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp, createToken, openDatabase, type App, type DatabaseTarget } from '../src/index.ts';
import { startPg, type PgServer } from './pg-server.ts';

interface Ctx {
  app: App;
  admin: string;
  operate: string;
  read: string;
}

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

function suite(
  name: string,
  target: () => Promise<{ target: DatabaseTarget; done: () => Promise<void>; pg?: PgServer }>,
) {
  describe(`verifier API on ${name}`, () => {
    const ctx = {} as Ctx;
    let done: () => Promise<void> = async () => undefined;
    let pg: PgServer | undefined;
    before(async () => {
      const t = await target();
      done = t.done;
      pg = t.pg;
      const database = await openDatabase(t.target);
      ctx.app = await buildApp({ database, bodyLimit: 1024 * 1024 });
      ctx.admin = await createToken(database.db, 'admin');
      ctx.operate = await createToken(database.db, 'operate');
      ctx.read = await createToken(database.db, 'read');
    });
    after(async () => {
      await ctx.app?.close();
      await done();
    });

    test('health answers with the database kind', async () => {
      const r = await ctx.app.inject({ method: 'GET', url: '/health' });
      assert.equal(r.statusCode, 200);
      assert.deepEqual(r.json(), {
        status: 'ok',
        database: { kind: name === 'PGlite' ? 'pglite' : 'postgres', up: true },
      });
    });

    test('tokens: none, unknown, and a role too small', async () => {
      let r = await ctx.app.inject({ method: 'GET', url: '/v1/agents' });
      assert.equal(r.statusCode, 401);
      assert.equal(r.json().error.code, 'V_UNAUTHENTICATED');
      r = await ctx.app.inject({ method: 'GET', url: '/v1/agents', headers: bearer('imk_nope') });
      assert.equal(r.statusCode, 401);
      r = await ctx.app.inject({
        method: 'POST',
        url: '/v1/agents',
        headers: bearer(ctx.read),
        payload: { id: 'x' },
      });
      assert.equal(r.statusCode, 403);
      assert.equal(r.json().error.code, 'V_FORBIDDEN');
      assert.match(r.json().error.message, /'operate' role/);
    });

    test('agents: add, duplicate, bad input named by field', async () => {
      let r = await ctx.app.inject({
        method: 'POST',
        url: '/v1/agents',
        headers: bearer(ctx.operate),
        payload: { id: 'host-a', name: 'web 1', requirePcrs: 'sha256:0-7,10' },
      });
      assert.equal(r.statusCode, 201, r.body);
      const a = r.json();
      assert.equal(a.state, 'unenrolled');
      assert.equal(a.enrolled, false);
      assert.equal(a.requirePcrs, 'sha256:0-7,10');
      assert.equal(a.stale, false);
      r = await ctx.app.inject({
        method: 'POST',
        url: '/v1/agents',
        headers: bearer(ctx.operate),
        payload: { id: 'host-a' },
      });
      assert.equal(r.statusCode, 409);
      assert.equal(r.json().error.code, 'V_AGENT_EXISTS');
      r = await ctx.app.inject({
        method: 'POST',
        url: '/v1/agents',
        headers: bearer(ctx.operate),
        payload: { id: '../x' },
      });
      assert.equal(r.statusCode, 400);
      assert.equal(r.json().error.code, 'V_VALIDATION');
      assert.equal(r.json().error.field, 'body/id');
      r = await ctx.app.inject({
        method: 'POST',
        url: '/v1/agents',
        headers: bearer(ctx.operate),
        payload: { id: 'host-b', requirePcrs: 'sha999:1' },
      });
      assert.equal(r.statusCode, 400);
      assert.equal(r.json().error.field, 'body/requirePcrs');
      r = await ctx.app.inject({
        method: 'POST',
        url: '/v1/agents',
        headers: bearer(ctx.operate),
        payload: { id: 'h', extra: 1 },
      });
      assert.equal(r.statusCode, 400);
      r = await ctx.app.inject({
        method: 'POST',
        url: '/v1/agents',
        headers: { ...bearer(ctx.operate), 'content-type': 'application/json' },
        payload: '{"id": ',
      });
      assert.equal(r.statusCode, 400);
      assert.equal(r.json().error.code, 'V_BAD_REQUEST');
      r = await ctx.app.inject({
        method: 'POST',
        url: '/v1/agents',
        headers: bearer(ctx.operate),
        payload: { id: 'host-c', referenceSet: 'a'.repeat(64) },
      });
      assert.equal(r.statusCode, 404);
      assert.equal(r.json().error.field, 'referenceSet');
    });

    test('agents: list with filter, sort and paging; show; 404', async () => {
      for (let i = 0; i < 12; i++)
        await ctx.app.inject({
          method: 'POST',
          url: '/v1/agents',
          headers: bearer(ctx.operate),
          payload: { id: `node-${String(i).padStart(2, '0')}`, name: `node ${String(i).padStart(2, '0')}` },
        });
      let r = await ctx.app.inject({
        method: 'GET',
        url: '/v1/agents?q=node&limit=5&offset=5&sort=name&order=desc',
        headers: bearer(ctx.read),
      });
      assert.equal(r.statusCode, 200, r.body);
      const page = r.json();
      assert.equal(page.total, 12);
      assert.deepEqual(
        page.agents.map((a: { id: string }) => a.id),
        ['node-06', 'node-05', 'node-04', 'node-03', 'node-02'],
      );
      r = await ctx.app.inject({ method: 'GET', url: '/v1/agents?state=paused', headers: bearer(ctx.read) });
      assert.equal(r.json().total, 0);
      r = await ctx.app.inject({ method: 'GET', url: '/v1/agents?limit=0', headers: bearer(ctx.read) });
      assert.equal(r.statusCode, 400);
      assert.equal(r.json().error.field, 'querystring/limit');
      r = await ctx.app.inject({ method: 'GET', url: '/v1/agents/node-03', headers: bearer(ctx.read) });
      assert.equal(r.json().name, 'node 03');
      r = await ctx.app.inject({ method: 'GET', url: '/v1/agents/nobody', headers: bearer(ctx.read) });
      assert.equal(r.statusCode, 404);
      assert.equal(r.json().error.agent, 'nobody');
    });

    test('agents: update in place, pause/resume with events, delete; ack events', async () => {
      let r = await ctx.app.inject({
        method: 'PATCH',
        url: '/v1/agents/host-a',
        headers: bearer(ctx.operate),
        payload: { intervalSeconds: 30, requirePcrs: 'sha1:10+sha256:0-7,10' },
      });
      assert.equal(r.statusCode, 200, r.body);
      assert.equal(r.json().intervalSeconds, 30);
      r = await ctx.app.inject({
        method: 'PATCH',
        url: '/v1/agents/host-a',
        headers: bearer(ctx.operate),
        payload: {},
      });
      assert.equal(r.statusCode, 400);
      r = await ctx.app.inject({
        method: 'POST',
        url: '/v1/agents/host-a/pause',
        headers: bearer(ctx.operate),
        payload: { reason: 'maintenance' },
      });
      assert.equal(r.statusCode, 200, r.body);
      assert.equal(r.json().state, 'paused');
      r = await ctx.app.inject({
        method: 'POST',
        url: '/v1/agents/host-a/resume',
        headers: bearer(ctx.operate),
      });
      assert.equal(r.statusCode, 200, r.body);
      assert.equal(r.json().state, 'unenrolled');
      r = await ctx.app.inject({ method: 'GET', url: '/v1/events?agent=host-a', headers: bearer(ctx.read) });
      const events = r.json().events as { id: number; from: string; to: string; reason: { note?: string } }[];
      assert.deepEqual(
        events.map((e) => `${e.from}>${e.to}`),
        ['paused>unenrolled', 'unenrolled>paused', 'none>unenrolled'],
      );
      assert.equal(events[1]!.reason.note, 'maintenance');
      r = await ctx.app.inject({
        method: 'POST',
        url: `/v1/events/${events[0]!.id}/ack`,
        headers: bearer(ctx.read),
      });
      assert.equal(r.statusCode, 403);
      r = await ctx.app.inject({
        method: 'POST',
        url: `/v1/events/${events[0]!.id}/ack`,
        headers: bearer(ctx.operate),
      });
      assert.equal(r.statusCode, 204);
      r = await ctx.app.inject({
        method: 'POST',
        url: '/v1/events/999999/ack',
        headers: bearer(ctx.operate),
      });
      assert.equal(r.statusCode, 404);
      r = await ctx.app.inject({ method: 'DELETE', url: '/v1/agents/host-a', headers: bearer(ctx.operate) });
      assert.equal(r.statusCode, 204);
      r = await ctx.app.inject({ method: 'DELETE', url: '/v1/agents/host-a', headers: bearer(ctx.operate) });
      assert.equal(r.statusCode, 404);
    });

    test('a body over the limit is a 413, an unknown route a 404, both in the catalogue shape', async () => {
      let r = await ctx.app.inject({
        method: 'POST',
        url: '/v1/agents',
        headers: { ...bearer(ctx.operate), 'content-type': 'application/json' },
        payload: JSON.stringify({ name: 'x'.repeat(2 * 1024 * 1024) }),
      });
      assert.equal(r.statusCode, 413);
      assert.equal(r.json().error.code, 'V_BODY_TOO_LARGE');
      r = await ctx.app.inject({ method: 'GET', url: '/v2/nothing' });
      assert.equal(r.statusCode, 404);
      assert.equal(r.json().error.code, 'V_NOT_FOUND');
    });

    test('the OpenAPI document lists every route with its schemas', async () => {
      const r = await ctx.app.inject({ method: 'GET', url: '/openapi.json' });
      const doc = r.json();
      assert.match(doc.openapi, /^3\.\d+\.\d+$/);
      for (const p of [
        '/health',
        '/v1/agents',
        '/v1/agents/{id}',
        '/v1/agents/{id}/pause',
        '/v1/events',
        '/v1/events/{id}/ack',
      ])
        assert.ok(doc.paths[p], `missing ${p}`);
      assert.ok(
        doc.paths['/v1/agents'].post.requestBody.content['application/json'].schema.properties.requirePcrs,
      );
    });

    if (name === 'PostgreSQL')
      test('a database outage is a 503, and the verifier recovers when PostgreSQL is back', async () => {
        await pg!.kill();
        let r = await ctx.app.inject({ method: 'GET', url: '/health' });
        assert.equal(r.statusCode, 503);
        assert.equal(r.json().database.up, false);
        r = await ctx.app.inject({ method: 'GET', url: '/v1/agents', headers: bearer(ctx.read) });
        assert.equal(r.statusCode, 503);
        assert.equal(r.json().error.code, 'V_DATABASE_UNAVAILABLE');
        await pg!.start();
        r = await ctx.app.inject({ method: 'GET', url: '/v1/agents?limit=1', headers: bearer(ctx.read) });
        assert.equal(r.statusCode, 200, r.body);
        assert.ok(r.json().total >= 12, 'state survived the outage');
      });
  });
}

suite('PGlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'imakit-pglite-'));
  return {
    target: { kind: 'pglite', dataDir: join(dir, 'data') },
    done: async () => rmSync(dir, { recursive: true, force: true }),
  };
});
suite('PostgreSQL', async () => {
  const pg = await startPg();
  return { target: { kind: 'postgres', url: pg.url }, done: () => pg.stop(), pg };
});
