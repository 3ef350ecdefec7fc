/**
 * The dashboard's routes through inject() (and one real socket for the event stream), on PGlite
 * and on a real PostgreSQL: overview counts and failure groups, the paged agents query with its
 * filters and errors, an agent explained (failure, reference provenance, PCRs quoted or not, the
 * stored list with per-entry verdicts), the impact preview of a set, the reference set's
 * provenance, whoami, the server-sent events stream, and the static files. Agents attest for real
 * through push attestation with software AKs (soft-tpm.ts): quotes the verifier checks as a TPM's.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  buildApp,
  createToken,
  openDatabase,
  type App,
  type DatabaseTarget,
  type OpenDatabase,
} from '../src/index.ts';
import { eventTypeName, parseEventLog, toHex } from 'imakit/core';
import { startPg } from './pg-server.ts';

const OVMF_LOG = new Uint8Array(
  readFileSync(
    join(import.meta.dirname, '../../imakit/test/fixtures/kernel/ovmf-uefi/binary_bios_measurements'),
  ),
);
import { softAgent, type SoftAgent } from './soft-tpm.ts';
import { keylimePolicy } from './keylime-policy.ts';

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
const SIM_DIGEST = '5a'.repeat(32);
const OTHER_DIGEST = '00'.repeat(32);

/** A Keylime runtime policy allowing `/usr/bin/sim` with `digest`. */
const policy = (digest: string, extra = ''): Buffer =>
  Buffer.from(keylimePolicy({ '/usr/bin/sim': [digest], ...(extra !== '' && { [extra]: [OTHER_DIGEST] }) }));

function suite(name: string, target: () => Promise<{ target: DatabaseTarget; done: () => Promise<void> }>) {
  describe(`dashboard API on ${name}`, () => {
    let app: App;
    let database: OpenDatabase;
    let read = '';
    let operate = '';
    let good = '';
    let bad = '';
    let done: () => Promise<void> = async () => undefined;
    const sims = new Map<string, { sim: SoftAgent; token: string }>();

    const attest = async (id: string, extraPcr = false, eventLog?: Uint8Array) => {
      const { sim, token } = sims.get(id)!;
      const auth = { authorization: `Agent ${token}` };
      const ch = await app.inject({
        method: 'POST',
        url: '/v1/attest/challenge',
        headers: auth,
        payload: {},
      });
      assert.equal(ch.statusCode, 200, ch.body);
      const c = ch.json() as { nonce: string; imaOffset: { bytes: number } };
      const body = sim.evidence(c.nonce, c.imaOffset.bytes) as {
        pcrs: Record<string, Record<string, string>>;
      };
      // a value the quote does not cover: sent, shown, never established
      if (extraPcr) body.pcrs.sha256!['0'] = 'ab'.repeat(32);
      if (eventLog !== undefined)
        (body as { eventLog?: string }).eventLog = Buffer.from(eventLog).toString('base64');
      const ev = await app.inject({
        method: 'POST',
        url: '/v1/attest/evidence',
        headers: auth,
        payload: body,
      });
      assert.equal(ev.statusCode, 200, ev.body);
      return (ev.json() as { verdict: { status: string } }).verdict;
    };

    before(async () => {
      const t = await target();
      done = t.done;
      database = await openDatabase(t.target);
      app = await buildApp({ database, streamPollMs: 100 });
      read = await createToken(database.db, 'read');
      operate = await createToken(database.db, 'operate');
      const up = async (body: Buffer, nm: string) => {
        const r = await app.inject({
          method: 'POST',
          url: `/v1/reference-sets?name=${nm}`,
          headers: { ...bearer(operate), 'content-type': 'application/octet-stream' },
          payload: body,
        });
        assert.ok(r.statusCode === 201 || r.statusCode === 200, r.body);
        return (r.json() as { id: string }).id;
      };
      good = await up(policy(SIM_DIGEST), 'good');
      bad = await up(policy(OTHER_DIGEST, '/usr/bin/other'), 'bad');
      // a1, a2 held to the bad set (one cause on two hosts), a3 to the good one
      for (const [id, set] of [
        ['a1', bad],
        ['a2', bad],
        ['a3', good],
      ] as const) {
        const sim = softAgent();
        const token = `ima_${randomBytes(32).toString('base64url')}`;
        await database.db
          .insertInto('agents')
          .values({
            id,
            name: `host ${id}`,
            state: 'unenrolled',
            ak_public: sim.akPublic,
            reference_set: set,
            require_pcrs: 'sha256:10',
            interval_s: 60,
          })
          .execute();
        await database.db
          .insertInto('agent_tokens')
          .values({ agent_id: id, token_sha256: new Uint8Array(createHash('sha256').update(token).digest()) })
          .execute();
        sims.set(id, { sim, token });
      }
      // a4 never enrolled; a5 passed long ago (stale)
      const r = await app.inject({
        method: 'POST',
        url: '/v1/agents',
        headers: bearer(operate),
        payload: { id: 'a4', name: 'host a4' },
      });
      assert.equal(r.statusCode, 201, r.body);
      await database.db
        .insertInto('agents')
        .values({
          id: 'a5',
          name: 'host a5',
          state: 'passing',
          require_pcrs: 'sha256:10',
          interval_s: 60,
          ak_public: new Uint8Array([1]),
          last_attested_at: new Date(Date.now() - 3600_000),
        })
        .execute();
      assert.equal((await attest('a1', true)).status, 'fail');
      assert.equal((await attest('a2')).status, 'fail');
      assert.equal((await attest('a3')).status, 'pass');
    });
    after(async () => {
      await app?.close();
      await done();
    });

    test('overview: counts by fleet state, verdicts over time, one cause on two hosts, events', async () => {
      const r = await app.inject({ method: 'GET', url: '/v1/dashboard/overview', headers: bearer(read) });
      assert.equal(r.statusCode, 200, r.body);
      const o = r.json();
      assert.deepEqual(o.counts, { total: 5, passing: 1, failing: 2, stale: 1, unenrolled: 1, paused: 0 });
      const sum = (a: number[]) => a.reduce((x, y) => x + y, 0);
      assert.equal(sum(o.series.pass), 1);
      assert.equal(sum(o.series.fail), 2);
      assert.ok(o.series.bucketSeconds >= 60);
      assert.equal(o.failures.length, 1);
      const g = o.failures[0];
      assert.deepEqual(
        [g.step, g.code, g.path, g.actual, g.hosts, g.scope],
        ['refs', 'digest-not-allowed', '/usr/bin/sim', `sha256:${SIM_DIGEST}`, 2, 'fleet'],
      );
      assert.deepEqual(
        g.agents.map((a: { id: string }) => a.id),
        ['a1', 'a2'],
      );
      assert.ok(
        o.events.some((e: { agentId: string; to: string }) => e.agentId === 'a3' && e.to === 'passing'),
      );
      const bad = await app.inject({
        method: 'GET',
        url: '/v1/dashboard/overview?hours=0',
        headers: bearer(read),
      });
      assert.equal(bad.statusCode, 400);
      assert.equal(bad.json().error.code, 'V_VALIDATION');
      const anon = await app.inject({ method: 'GET', url: '/v1/dashboard/overview' });
      assert.equal(anon.statusCode, 401);
      assert.equal(anon.json().error.code, 'V_UNAUTHENTICATED');
    });

    test('failures: grouped by cause', async () => {
      const r = await app.inject({ method: 'GET', url: '/v1/dashboard/failures', headers: bearer(read) });
      assert.equal(r.statusCode, 200);
      assert.equal(r.json().groups[0].hosts, 2);
      const e = await app.inject({
        method: 'GET',
        url: '/v1/dashboard/failures?limit=0',
        headers: bearer(read),
      });
      assert.equal(e.statusCode, 400);
    });

    test('agents: filter by fleet state, cause, set and text; sort; page; errors', async () => {
      const q = async (qs: string) => {
        const r = await app.inject({
          method: 'GET',
          url: `/v1/dashboard/agents${qs}`,
          headers: bearer(read),
        });
        assert.equal(r.statusCode, 200, r.body);
        return r.json() as {
          total: number;
          agents: { id: string; state: string; stale: boolean; cause: unknown }[];
        };
      };
      const all = await q('');
      assert.equal(all.total, 5);
      assert.deepEqual(
        all.agents.map((a) => a.id),
        ['a1', 'a2', 'a3', 'a4', 'a5'],
      );
      const stale = await q('?state=stale');
      assert.deepEqual(
        stale.agents.map((a) => [a.id, a.state, a.stale]),
        [['a5', 'stale', true]],
      );
      const failing = await q('?state=failing&sort=name&order=desc');
      assert.deepEqual(
        failing.agents.map((a) => a.id),
        ['a2', 'a1'],
      );
      assert.deepEqual(failing.agents[0]!.cause, {
        step: 'refs',
        code: 'digest-not-allowed',
        path: '/usr/bin/sim',
        actual: `sha256:${SIM_DIGEST}`,
      });
      assert.equal((await q(`?code=digest-not-allowed&path=${encodeURIComponent('/usr/bin/sim')}`)).total, 2);
      assert.equal((await q('?path=/nowhere')).total, 0);
      assert.deepEqual(
        (await q(`?referenceSet=${good}`)).agents.map((a) => a.id),
        ['a3'],
      );
      assert.equal((await q('?referenceSet=none')).total, 2);
      assert.deepEqual(
        (await q('?q=A4')).agents.map((a) => a.id),
        ['a4'],
      );
      const page = await q('?limit=2&offset=2&sort=lastAttestedAt&order=desc');
      assert.equal(page.total, 5);
      assert.equal(page.agents.length, 2);
      const sorted = await q('?sort=cause&order=asc');
      assert.deepEqual(
        sorted.agents.slice(0, 2).map((a) => a.id),
        ['a1', 'a2'],
        'agents with a cause first, nulls last',
      );
      for (const bad of [
        '?state=happy',
        '?sort=age',
        '?limit=501',
        '?offset=-1',
        '?referenceSet=xyz',
        '?extra=1',
      ]) {
        const r = await app.inject({
          method: 'GET',
          url: `/v1/dashboard/agents${bad}`,
          headers: bearer(read),
        });
        assert.equal(r.statusCode, 400, bad);
        assert.equal(r.json().error.code, 'V_VALIDATION', bad);
      }
    });

    test('an agent explained: failure, reference provenance, PCRs quoted or not, its list', async () => {
      const r = await app.inject({ method: 'GET', url: '/v1/dashboard/agents/a1', headers: bearer(read) });
      assert.equal(r.statusCode, 200, r.body);
      const d = r.json();
      assert.equal(d.state, 'failing');
      assert.equal(d.failure.step, 'refs');
      assert.equal(d.failure.entry, 0);
      assert.equal(d.failure.offset, 0);
      assert.equal(d.failure.path, '/usr/bin/sim');
      assert.equal(d.failure.actual, `sha256:${SIM_DIGEST}`);
      assert.match(d.failure.fix, /allowed digests/);
      assert.equal(d.referenceSetName, 'bad');
      assert.equal(d.reference.path, '/usr/bin/sim');
      assert.deepEqual(
        d.reference.digests.map((x: { digest: string }) => x.digest),
        [OTHER_DIGEST],
      );
      assert.equal(d.reference.digests[0].provenance.kind, 'keylime');
      assert.equal(d.verdicts.length, 1);
      assert.equal(d.verdicts[0].code, 'digest-not-allowed');
      // PCR 10 quoted; PCR 0 sent but not covered by the quote: not established
      const bank = d.pcrs.banks.find((b: { bank: string }) => b.bank === 'sha256');
      assert.deepEqual(
        bank.pcrs.map((p: { index: number; quoted: boolean }) => [p.index, p.quoted]),
        [
          [0, false],
          [10, true],
        ],
      );
      assert.equal(d.pcrs.quoted, 'sha256:10');
      assert.ok(
        d.notEstablished.some((s: string) => /PCR sha256:0: .*not cover/.test(s)),
        JSON.stringify(d.notEstablished),
      );
      assert.equal(d.boot, null, 'no event log sent');
      assert.deepEqual(d.list, { entries: 1, firstEntry: 0, bytes: d.list.bytes });
      const missing = await app.inject({
        method: 'GET',
        url: '/v1/dashboard/agents/nobody',
        headers: bearer(read),
      });
      assert.equal(missing.statusCode, 404);
      assert.equal(missing.json().error.code, 'V_NOT_FOUND');
      const badId = await app.inject({
        method: 'GET',
        url: '/v1/dashboard/agents/%20x',
        headers: bearer(read),
      });
      assert.equal(badId.statusCode, 400);
    });

    test('the stored list: per-entry verdicts, search, paging; a resent refused chunk is not doubled', async () => {
      // a1 is refused again: the same entry is sent again from offset 0 and replaces the stored one
      assert.equal((await attest('a1')).status, 'fail');
      const ima = async (id: string, qs = '') => {
        const r = await app.inject({
          method: 'GET',
          url: `/v1/dashboard/agents/${id}/ima${qs}`,
          headers: bearer(read),
        });
        assert.equal(r.statusCode, 200, r.body);
        return r.json();
      };
      const l = await ima('a1');
      assert.equal(l.listEntries, 1);
      assert.equal(l.total, 1);
      assert.deepEqual(
        [
          l.entries[0].index,
          l.entries[0].offset,
          l.entries[0].path,
          l.entries[0].status,
          l.entries[0].reason,
        ],
        [0, 0, '/usr/bin/sim', 'refused', 'digest-not-allowed'],
      );
      assert.equal((await ima('a1', '?status=allowed')).total, 0);
      assert.equal((await ima('a1', '?q=nothing')).total, 0);
      assert.equal((await ima('a1', '?q=SIM')).total, 1);
      const ok = await ima('a3');
      assert.equal(ok.entries[0].status, 'allowed');
      assert.equal(ok.entries[0].provenance.kind, 'keylime');
      const none = await ima('a4');
      assert.equal(none.listEntries, 0);
      assert.match(none.notEstablished[0], /no list entry/);
      const e = await app.inject({
        method: 'GET',
        url: '/v1/dashboard/agents/a1/ima?limit=0',
        headers: bearer(read),
      });
      assert.equal(e.statusCode, 400);
      const m = await app.inject({
        method: 'GET',
        url: '/v1/dashboard/agents/zz/ima',
        headers: bearer(read),
      });
      assert.equal(m.statusCode, 404);
    });

    test('impact preview: the good set would pass the failing agents, the bad one fail the passing', async () => {
      const post = (payload: Record<string, unknown>, token = read) =>
        app.inject({ method: 'POST', url: '/v1/dashboard/impact', headers: bearer(token), payload });
      let r = await post({ referenceSet: good, agents: ['a1', 'a2', 'a4'] });
      assert.equal(r.statusCode, 200, r.body);
      let i = r.json();
      assert.deepEqual([i.matched, i.evaluated, i.wouldPass, i.wouldFail, i.noList], [3, 3, 2, 0, 1]);
      r = await post({ referenceSet: bad, from: good });
      i = r.json();
      assert.deepEqual([i.matched, i.wouldFail], [1, 1]);
      assert.equal(i.results[0].agentId, 'a3');
      assert.deepEqual(
        [i.results[0].first[0].entry, i.results[0].first[0].path, i.results[0].first[0].reason],
        [0, '/usr/bin/sim', 'digest-not-allowed'],
      );
      r = await post({ referenceSet: 'f'.repeat(64) });
      assert.equal(r.statusCode, 404);
      assert.equal(r.json().error.code, 'V_NOT_FOUND');
      r = await post({ referenceSet: good, agents: [] });
      assert.equal(r.statusCode, 400);
      r = await post({ referenceSet: 'nope' });
      assert.equal(r.statusCode, 400);
      assert.match(r.json().error.message, /referenceSet/);
      // nothing was assigned: the preview is read-only
      const a1 = await app.inject({ method: 'GET', url: '/v1/agents/a1', headers: bearer(read) });
      assert.equal(a1.json().referenceSet, bad);
    });

    test('reference set: provenance and path search', async () => {
      const r = await app.inject({
        method: 'GET',
        url: `/v1/dashboard/reference-sets/${bad}?q=other`,
        headers: bearer(read),
      });
      assert.equal(r.statusCode, 200, r.body);
      const d = r.json();
      assert.equal(d.name, 'bad');
      assert.equal(d.paths, 2);
      assert.equal(d.agents, 2);
      assert.equal(d.provenances[0].provenance.kind, 'keylime');
      assert.equal(d.provenances[0].paths, 2);
      assert.deepEqual(
        d.matches.map((m: { path: string }) => m.path),
        ['/usr/bin/other'],
      );
      const m = await app.inject({
        method: 'GET',
        url: `/v1/dashboard/reference-sets/${'e'.repeat(64)}`,
        headers: bearer(read),
      });
      assert.equal(m.statusCode, 404);
    });

    test('whoami names the role; a read token changes nothing', async () => {
      const r = await app.inject({ method: 'GET', url: '/v1/whoami', headers: bearer(read) });
      assert.deepEqual(r.json(), { role: 'read' });
      const o = await app.inject({ method: 'GET', url: '/v1/whoami', headers: bearer(operate) });
      assert.deepEqual(o.json(), { role: 'operate' });
      const p = await app.inject({ method: 'POST', url: '/v1/agents/a1/pause', headers: bearer(read) });
      assert.equal(p.statusCode, 403);
      assert.equal(p.json().error.code, 'V_FORBIDDEN');
      assert.equal((await app.inject({ method: 'GET', url: '/v1/whoami' })).statusCode, 401);
    });

    test('the event stream: text/event-stream, a state change arrives as it is stored', async () => {
      await app.listen({ port: 0, host: '127.0.0.1' });
      const port = (app.server.address() as { port: number }).port;
      const refused = await fetch(`http://127.0.0.1:${port}/v1/dashboard/stream`);
      assert.equal(refused.status, 401);
      const ctrl = new AbortController();
      const res = await fetch(`http://127.0.0.1:${port}/v1/dashboard/stream`, {
        headers: bearer(read),
        signal: ctrl.signal,
      });
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
      const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
      const first = await reader.read();
      assert.match(first.value ?? '', /retry: 3000/);
      const p = await app.inject({ method: 'POST', url: '/v1/agents/a2/pause', headers: bearer(operate) });
      assert.equal(p.statusCode, 200);
      let text = '';
      const deadline = Date.now() + 5000;
      while (!/event: state/.test(text) && Date.now() < deadline) {
        const c = await Promise.race([
          reader.read(),
          new Promise<{ value: string }>((r) => setTimeout(() => r({ value: '' }), 500)),
        ]);
        text += c.value ?? '';
      }
      const m = /id: (\d+)\nevent: state\ndata: (.*)\n\n/.exec(text);
      assert.ok(m, text);
      const e = JSON.parse(m[2]!);
      assert.deepEqual([e.agentId, e.from, e.to], ['a2', 'failing', 'paused']);
      // a reconnect with Last-Event-ID gets what it missed
      const again = await fetch(`http://127.0.0.1:${port}/v1/dashboard/stream`, {
        headers: { ...bearer(read), 'last-event-id': String(Number(m[1]) - 1) },
        signal: ctrl.signal,
      });
      const r2 = again.body!.pipeThrough(new TextDecoderStream()).getReader();
      let t2 = '';
      while (!/event: state/.test(t2)) t2 += (await r2.read()).value ?? '';
      assert.match(t2, new RegExp(`id: ${m[1]}\\n`));
      ctrl.abort();
      await app.inject({ method: 'POST', url: '/v1/agents/a2/resume', headers: bearer(operate) });
    });

    test('boot events: the event log as sent, parsed; one that does not parse says why', async () => {
      await attest('a1', false, OVMF_LOG);
      const show = async () => {
        const r = await app.inject({ method: 'GET', url: '/v1/dashboard/agents/a1', headers: bearer(read) });
        assert.equal(r.statusCode, 200, r.body);
        return r.json().boot as {
          events: { index: number; pcr: number; type: string; digests: Record<string, string> }[];
          error: string | null;
        };
      };
      const boot = await show();
      const log = parseEventLog(OVMF_LOG);
      assert.equal(boot.error, null);
      assert.equal(boot.events.length, log.events.length);
      const e = log.events[3]!;
      assert.deepEqual(
        [boot.events[3]!.index, boot.events[3]!.pcr, boot.events[3]!.type, boot.events[3]!.digests.sha256],
        [e.index, e.pcr, eventTypeName(e.type), toHex(e.digests.get('sha256')!)],
      );
      await attest('a1', false, new Uint8Array(9));
      const bad = await show();
      assert.deepEqual(bad.events, []);
      assert.match(bad.error ?? '', /./);
    });

    test('a list stored in many chunks reads whole and is merged into one when read', async () => {
      const one = await database.db
        .selectFrom('ima_chunks')
        .select('bytes')
        .where('agent_id', '=', 'a3')
        .executeTakeFirstOrThrow();
      const size = one.bytes.length;
      await database.db
        .insertInto('agents')
        .values({ id: 'a7', name: 'host a7', state: 'paused', require_pcrs: 'sha256:10', interval_s: 60 })
        .execute();
      const rows = Array.from({ length: 300 }, (_, i) => ({
        agent_id: 'a7',
        start_offset: i * size,
        start_entry: i,
        entries: 1,
        bytes: new Uint8Array(one.bytes),
      }));
      for (let i = 0; i < rows.length; i += 100)
        await database.db
          .insertInto('ima_chunks')
          .values(rows.slice(i, i + 100))
          .execute();
      const get = async () => {
        const r = await app.inject({
          method: 'GET',
          url: '/v1/dashboard/agents/a7/ima?offset=299',
          headers: bearer(read),
        });
        assert.equal(r.statusCode, 200, r.body);
        return r.json();
      };
      let l = await get();
      assert.equal(l.listEntries, 300);
      assert.deepEqual(
        [l.entries[0].index, l.entries[0].offset, l.entries[0].path],
        [299, 299 * size, '/usr/bin/sim'],
      );
      const chunks = await database.db
        .selectFrom('ima_chunks')
        .select('start_offset')
        .where('agent_id', '=', 'a7')
        .execute();
      assert.equal(chunks.length, 1, 'merged into one chunk');
      l = await get();
      assert.equal(l.listEntries, 300);
      await database.db.deleteFrom('agents').where('id', '=', 'a7').execute();
    });

    test('OpenAPI lists the dashboard routes', async () => {
      const r = await app.inject({ method: 'GET', url: '/openapi.json' });
      const paths = Object.keys(r.json().paths);
      for (const p of [
        '/v1/whoami',
        '/v1/dashboard/overview',
        '/v1/dashboard/failures',
        '/v1/dashboard/agents',
        '/v1/dashboard/agents/{id}',
        '/v1/dashboard/agents/{id}/ima',
        '/v1/dashboard/reference-sets/{id}',
        '/v1/dashboard/impact',
        '/v1/dashboard/stream',
      ])
        assert.ok(paths.includes(p), p);
    });
  });
}

suite('PGlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'imakit-dash-'));
  return {
    target: { kind: 'pglite', dataDir: join(dir, 'data') },
    done: async () => rmSync(dir, { recursive: true, force: true }),
  };
});
suite('PostgreSQL', async () => {
  const pg = await startPg();
  return { target: { kind: 'postgres', url: pg.url }, done: () => pg.stop() };
});

describe('dashboard static files', () => {
  let dir = '';
  let app: App;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'imakit-dash-static-'));
    mkdirSync(join(dir, 'assets'));
    writeFileSync(join(dir, 'index.html'), '<!doctype html><title>x</title>');
    writeFileSync(join(dir, 'assets', 'app-1.js'), 'console.log(1)');
    writeFileSync(join(dir, 'notes.md'), 'not served: unknown type');
    const database = await openDatabase({ kind: 'pglite' });
    app = await buildApp({ database, dashboardDir: dir });
  });
  after(async () => {
    await app?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('index and assets are served with their types and a strict CSP; nothing else', async () => {
    const i = await app.inject({ method: 'GET', url: '/' });
    assert.equal(i.statusCode, 200);
    assert.match(i.headers['content-type'] as string, /^text\/html/);
    assert.match(i.headers['content-security-policy'] as string, /default-src 'self'/);
    assert.equal(i.headers['cache-control'], 'no-cache');
    const a = await app.inject({ method: 'GET', url: '/assets/app-1.js' });
    assert.equal(a.statusCode, 200);
    assert.match(a.headers['content-type'] as string, /^text\/javascript/);
    assert.match(a.headers['cache-control'] as string, /immutable/);
    assert.equal(a.body, 'console.log(1)');
    for (const u of [
      '/assets/nope.js',
      '/assets/../index.html',
      '/assets/%2e%2e/%2e%2e/etc/passwd',
      '/notes.md',
    ]) {
      const r = await app.inject({ method: 'GET', url: u });
      assert.ok(
        r.statusCode === 404 || (u === '/assets/../index.html' && r.statusCode === 200),
        `${u}: ${r.statusCode}`,
      );
      if (r.statusCode === 404) assert.equal(r.json().error.code, 'V_NOT_FOUND');
    }
  });

  test('a directory without index.html is refused when the app is built', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'imakit-dash-empty-'));
    const database = await openDatabase({ kind: 'pglite' });
    await assert.rejects(buildApp({ database, dashboardDir: empty }), /no index\.html/);
    await database.close();
    rmSync(empty, { recursive: true, force: true });
  });
});
