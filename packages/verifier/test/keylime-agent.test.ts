/**
 * Keylime's pull API end to end with real parts: imakit's `--keylime-api` agent
 * (host/agent/keylime-api.ts) on a swtpm, with an AK made by `createAkDir` (what `imakit tpm ak
 * create` writes) and a measurement list file holding a real kernel's entries (fixture
 * appraise-enforce) replayed into the TPM's PCR 10; the verifier (PGlite) added it with its AK and
 * a Keylime runtime policy, and its poller asks over Keylime's API with `ima_ml_entry` from the
 * stored offset. Checked: a first pass over the whole list, then incremental (the next ask starts
 * at the stored entry); an appended entry the policy refuses → failure naming the entry and path;
 * answers tampered between agent and verifier → refused (a PCR 16 quote relabelled as PCR 10 in the
 * unsigned blob; a mask without PCR 10); unreadable answers → stored verdict "evidence-malformed"
 * with the field, the poller never crashing.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeBinaryList } from 'imakit/core';
import { buildApp, createToken, openDatabase, type App, type OpenDatabase } from '../src/index.ts';
import { startPoller, type Poller, type PollOutcome } from '../src/poller/poller.ts';
import { ReferenceSetCache } from '../src/refs-store.ts';
import type { FetchKeylime } from '../src/keylime/agent-poll.ts';
import { httpFetchKeylime } from '../src/keylime/agent-poll.ts';
import { createAkDir } from '../../imakit/src/host/tpm/ak-files.ts';
import { serveKeylimeApi } from '../../imakit/src/host/agent/keylime-api.ts';
import type { PullServer } from '../../imakit/src/host/agent/pull.ts';
import { SwtpmMachine } from './swtpm-machine.ts';
import { LIST, fixtureDigests, imaNgEntry } from './kernel-fixture.ts';
import { keylimePolicy } from './keylime-policy.ts';

const policy = (): string => keylimePolicy(fixtureDigests());

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');

/** Swap the PCR blob's selection bits of PCR 16 for PCR 10 (values untouched; the blob is unsigned). */
function relabel16as10(quote: string): string {
  const [attest, sig, blobB64] = quote.slice(1).split(':') as [string, string, string];
  const blob = Buffer.from(blobB64, 'base64');
  // TPMS_PCR_SELECTION #0: u16 hash at 4, sizeofSelect at 6, pcrSelect at 7..9
  blob[7 + 2] = blob[7 + 2]! & ~0x01; // PCR 16 off
  blob[7 + 1] = blob[7 + 1]! | 0x04; // PCR 10 on
  return `r${attest}:${sig}:${blob.toString('base64')}`;
}

describe('a Keylime-API agent polled by the verifier (swtpm, PGlite)', () => {
  let m: SwtpmMachine;
  let dir: string;
  let listFile: string;
  let agent: PullServer;
  let database: OpenDatabase;
  let app: App;
  let operate: string;
  let poller: Poller | undefined;
  const outcomes: PollOutcome[] = [];
  const errors: unknown[] = [];
  const asked: { agent: string; path: string }[] = [];
  let refsId = '';

  // the tampering agents are other names for the real one; their answers are changed in transit
  const real = (): string => agent.url;
  const tamper: Record<string, (path: string) => Promise<unknown>> = {
    'relabel.test:9': async (path) => {
      // ask for PCR 16 alone, then claim in the unsigned blob that the value is PCR 10's
      const body = (await httpFetchKeylime(
        real(),
        path.replace(/mask=[^&]+/, 'mask=0x0'),
        AbortSignal.timeout(20_000),
      )) as {
        results: { quote: string };
      };
      body.results.quote = relabel16as10(body.results.quote);
      return body;
    },
    'no-pcr10.test:9': (path) =>
      httpFetchKeylime(real(), path.replace(/mask=[^&]+/, 'mask=0x0'), AbortSignal.timeout(20_000)),
    'bad-quote.test:9': async (path) => {
      const body = (await httpFetchKeylime(real(), path, AbortSignal.timeout(20_000))) as {
        results: { quote: string };
      };
      body.results.quote = `r${body.results.quote.slice(1).split(':')[0]}:!!!:AAAA`;
      return body;
    },
    'extra-field.test:9': async (path) => {
      const body = (await httpFetchKeylime(real(), path, AbortSignal.timeout(20_000))) as {
        results: Record<string, unknown>;
      };
      body.results.surprise = 1;
      return body;
    },
    'bad-list.test:9': async (path) => {
      const body = (await httpFetchKeylime(real(), path, AbortSignal.timeout(20_000))) as {
        results: Record<string, unknown>;
      };
      body.results.ima_measurement_list = '10 zz ima-ng sha256:00 /x\n';
      return body;
    },
    'not-json.test:9': async () => ({ malformedJson: '<html>' }),
  };
  const fetchKeylime: FetchKeylime = (baseUrl, path, signal) => {
    const name = baseUrl.replace(/^http:\/\//, '');
    asked.push({ agent: name, path });
    const t = tamper[name];
    return t !== undefined ? t(path) : httpFetchKeylime(baseUrl, path, signal);
  };

  const addAgent = async (id: string, address: string, extra: Record<string, unknown> = {}) => {
    const r = await app.inject({
      method: 'POST',
      url: '/v1/agents',
      headers: bearer(operate),
      payload: {
        id,
        keylimeAgent: address,
        akPublic: b64(readFileSync(join(dir, 'ak', 'ak.pub'))),
        referenceSet: refsId,
        intervalSeconds: 1,
        ...extra,
      },
    });
    assert.equal(r.statusCode, 201, r.body);
    return r.json() as { id: string; state: string; transport: string; requirePcrs: string; pullUrl: string };
  };
  const verdictsOf = (id: string) => outcomes.filter((o) => o.agentId === id && o.kind === 'verdict');
  const until = async (what: () => boolean, ms = 30_000): Promise<void> => {
    const end = Date.now() + ms;
    while (!what()) {
      if (Date.now() > end) throw new Error(`timed out; outcomes: ${JSON.stringify(outcomes.slice(-5))}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'imakit-keylime-agent-'));
    m = await SwtpmMachine.start();
    await createAkDir(m.client, join(dir, 'ak'));
    listFile = join(dir, 'binary_runtime_measurements');
    writeFileSync(listFile, encodeBinaryList(LIST));
    await m.extend(LIST);
    agent = await serveKeylimeApi(
      {
        listen: '127.0.0.1:0',
        tpm: 'unused',
        akDir: join(dir, 'ak'),
        imaList: listFile,
        eventLog: undefined,
      },
      { tpm: m.client },
    );
    database = await openDatabase({ kind: 'pglite' });
    app = await buildApp({ database });
    operate = await createToken(database.db, 'operate');
    const r = await app.inject({
      method: 'POST',
      url: '/v1/reference-sets?name=policy',
      headers: { ...bearer(operate), 'content-type': 'application/json' },
      payload: policy(),
    });
    assert.equal(r.statusCode, 201, r.body);
    refsId = (r.json() as { id: string }).id;
  });
  after(async () => {
    await poller?.stop();
    await app?.close();
    await agent?.close();
    await m?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('adding: transport keylime, pull URL http://HOST:PORT, PCRs sha256:10, AK taken as given', async () => {
    const a = await addAgent('k-good', agent.url.replace(/^http:\/\//, ''));
    assert.equal(a.transport, 'keylime');
    assert.equal(a.requirePcrs, 'sha256:10');
    assert.equal(a.pullUrl, agent.url);
    assert.equal(a.state, 'unenrolled');
    for (const [body, field] of [
      [{ keylimeAgent: '127.0.0.1:1' }, 'body/akPublic'],
      [{ keylimeAgent: '127.0.0.1:1', akPublic: 'AAAA' }, 'body/akPublic'],
      [
        {
          keylimeAgent: '127.0.0.1:1',
          akPublic: b64(readFileSync(join(dir, 'ak', 'ak.pub'))),
          requirePcrs: 'sha256:0-7',
        },
        'body/requirePcrs',
      ],
      [
        {
          keylimeAgent: '127.0.0.1:1',
          akPublic: b64(readFileSync(join(dir, 'ak', 'ak.pub'))),
          requirePcrs: 'sha1:10+sha256:10',
        },
        'body/requirePcrs',
      ],
      [
        { keylimeAgent: '127.0.0.1:0', akPublic: b64(readFileSync(join(dir, 'ak', 'ak.pub'))) },
        'body/keylimeAgent',
      ],
    ] as const) {
      const r = await app.inject({
        method: 'POST',
        url: '/v1/agents',
        headers: bearer(operate),
        payload: body,
      });
      assert.equal(r.statusCode, 400, r.body);
      assert.equal((r.json() as { error: { code: string; field?: string } }).error.code, 'V_VALIDATION');
      assert.match(r.body, new RegExp(field.replace('/', '\\/')));
    }
  });

  test('polled over Keylime’s API: passes on the whole list, then asks from the stored entry', async () => {
    poller = startPoller({
      db: database.db,
      owner: 'keylime-test',
      refs: new ReferenceSetCache(2),
      retention: 50,
      pollMs: 100,
      leaseMs: 20_000,
      retryMs: 500,
      concurrency: 2,
      fetchKeylime,
      onOutcome: (o) => outcomes.push(o),
      onError: (e) => errors.push(e),
    });
    await until(() => verdictsOf('k-good').length >= 2);
    const [first, second] = verdictsOf('k-good') as Extract<PollOutcome, { kind: 'verdict' }>[];
    assert.equal(first!.verdict.status, 'pass', JSON.stringify(first!.verdict.failure));
    assert.deepEqual(first!.verdict.next.imaOffset.entries, LIST.length);
    assert.equal(first!.verdict.next.imaOffset.bytes, encodeBinaryList(LIST).length);
    assert.equal(second!.verdict.status, 'pass', JSON.stringify(second!.verdict.failure));
    const paths = asked.filter((a) => a.agent === agent.url.replace('http://', '')).map((a) => a.path);
    assert.match(
      paths[0]!,
      /^\/v2\.1\/quotes\/integrity\?nonce=[0-9a-f]{40}&mask=0x400&partial=1&ima_ml_entry=0$/,
    );
    assert.match(paths[1]!, new RegExp(`ima_ml_entry=${LIST.length}$`));
    const shown = await app.inject({ method: 'GET', url: '/v1/agents/k-good', headers: bearer(operate) });
    assert.equal((shown.json() as { state: string }).state, 'passing');
  });

  test('a reboot (TPM reset, the same list measured again): asked again from entry 0 at once, passes', async () => {
    const op = (action: string) =>
      app.inject({
        method: 'POST',
        url: `/v1/agents/k-good/${action}`,
        headers: bearer(operate),
        payload: {},
      });
    assert.equal((await op('pause')).statusCode, 200);
    await new Promise((r) => setTimeout(r, 1500)); // an attestation in flight ends
    m.tpm.powerCycle();
    await m.extend(LIST);
    const before = verdictsOf('k-good').length;
    const askedBefore = asked.length;
    assert.equal((await op('resume')).statusCode, 200);
    await until(() => verdictsOf('k-good').length > before);
    const v = (verdictsOf('k-good')[before] as Extract<PollOutcome, { kind: 'verdict' }>).verdict;
    assert.equal(v.status, 'pass', JSON.stringify(v.failure));
    assert.match(String(v.steps[0]!.reboot), /a new boot/);
    assert.equal(
      v.steps.find((x) => x.step === 'ima')!.restart,
      'new boot: replayed from the start of the list',
    );
    const mine = asked.slice(askedBefore).filter((a) => a.agent === agent.url.replace('http://', ''));
    assert.match(
      mine[0]!.path,
      new RegExp(`ima_ml_entry=${LIST.length}$`),
      'first asked from the stored entry',
    );
    assert.match(mine[1]!.path, /ima_ml_entry=0$/, 'then again from 0 after seeing the TPM reset');
  });

  test('an appended entry the policy refuses: failure naming the entry and the path', async () => {
    const evil = imaNgEntry('/usr/bin/evil', new Uint8Array(32).fill(0xee));
    appendFileSync(listFile, encodeBinaryList([evil]));
    await m.extend([evil]);
    const before = verdictsOf('k-good').length;
    await until(() =>
      verdictsOf('k-good')
        .slice(before)
        .some((o) => o.kind === 'verdict' && o.verdict.status === 'fail'),
    );
    const failed = verdictsOf('k-good')
      .slice(before)
      .find((o) => o.kind === 'verdict' && o.verdict.status === 'fail') as Extract<
      PollOutcome,
      { kind: 'verdict' }
    >;
    const f = failed.verdict.failure!;
    assert.equal(f.step, 'refs');
    assert.equal(f.entry, LIST.length);
    assert.equal(f.path, '/usr/bin/evil');
    // the refused entry is asked for again: the stored offset did not move past it
    assert.equal(failed.verdict.next.imaOffset.entries, LIST.length);
    const shown = await app.inject({ method: 'GET', url: '/v1/agents/k-good', headers: bearer(operate) });
    assert.equal((shown.json() as { state: string }).state, 'failing');
  });

  test('tampered answers are refused: PCR 16 relabelled as PCR 10, a quote without PCR 10', async () => {
    await addAgent('k-relabel', 'relabel.test:9');
    await addAgent('k-no10', 'no-pcr10.test:9');
    await until(() => verdictsOf('k-relabel').length >= 1 && verdictsOf('k-no10').length >= 1);
    const rel = (verdictsOf('k-relabel')[0] as Extract<PollOutcome, { kind: 'verdict' }>).verdict;
    assert.equal(rel.status, 'fail');
    assert.equal(rel.failure!.code, 'evidence-malformed');
    assert.equal(rel.failure!.field, 'results.quote[pcrs]');
    assert.match(rel.failure!.message, /claims sha256:10 but the quote signed sha256:16/);
    const no10 = (verdictsOf('k-no10')[0] as Extract<PollOutcome, { kind: 'verdict' }>).verdict;
    assert.equal(no10.status, 'fail');
    assert.equal(no10.failure!.step, 'quote');
    assert.equal(no10.failure!.code, 'required-pcr-not-quoted');
  });

  test('unreadable answers: a stored verdict "evidence-malformed" naming the field, never a crash', async () => {
    const cases: [string, string, string][] = [
      ['k-badquote', 'bad-quote.test:9', 'results.quote[signature]'],
      ['k-extra', 'extra-field.test:9', 'results.surprise'],
      ['k-badlist', 'bad-list.test:9', 'results.ima_measurement_list'],
      ['k-notjson', 'not-json.test:9', 'malformedJson'],
    ];
    for (const [id, address] of cases) await addAgent(id, address);
    await until(() => cases.every(([id]) => verdictsOf(id).length >= 1));
    for (const [id, , field] of cases) {
      const v = (verdictsOf(id)[0] as Extract<PollOutcome, { kind: 'verdict' }>).verdict;
      assert.equal(v.status, 'fail', id);
      assert.equal(v.failure!.code, 'evidence-malformed', id);
      assert.equal(v.failure!.field, field, id);
      const rows = await database.db
        .selectFrom('verdicts')
        .select('status')
        .where('agent_id', '=', id)
        .execute();
      assert.ok(rows.length >= 1 && rows.every((r) => r.status === 'fail'), id);
    }
    assert.deepEqual(errors, []);
  });
});
