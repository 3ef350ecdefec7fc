/**
 * `imakit verifier serve` runs the pull poller: the real CLI as a child process (PGlite in a temp
 * data dir, --http on loopback, --poll-interval 0.2), an agent added with `imakit fleet add
 * --boot-ref` (the OVMF fixture's TCG event log as its golden log), enrolled over HTTP by
 * TPM2_ActivateCredential in a software TPM whose PCRs 0-9 are extended with that log, and an
 * evidence endpoint (GET /v1/evidence, what `imakit agent run --pull` serves) quoting in that TPM.
 * Nobody pushes: the verifier polls the agent, which passes; `fleet update --boot-ref` with a log
 * whose event #10 differs turns the next polled verdict into a boot failure naming that event.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseEventLog, parsePcrSelectionText, toHex } from '../../../src/core/index.ts';
import { TpmClient, type LoadedEk } from '../../../src/host/tpm/client.ts';
import { cli } from './in-process-cli.ts';
import { FIXTURES_DIR, tempDir } from '../../helpers.ts';
import { startTestTpm, type TestTpm } from '../tpm-helpers.ts';
import { serveVerifier, type ServedVerifier } from './verifier-child.ts';

const LOG_PATH = join(FIXTURES_DIR, 'kernel/ovmf-uefi/binary_bios_measurements');
const LOG = new Uint8Array(readFileSync(LOG_PATH));
const PARSED = parseEventLog(LOG);
const ALG: Record<string, number> = { sha1: 0x0004, sha256: 0x000b };
const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');

let data: { dir: string; cleanup: () => void };
let v: ServedVerifier;
let tpm: TestTpm;
let client: TpmClient;
let ek: LoadedEk;
let evidenceServer: Server;
let token = '';

before(async () => {
  data = tempDir('imakit-poller-');
  v = await serveVerifier([
    '--http',
    '--listen',
    '127.0.0.1:0',
    '--data',
    data.dir,
    '--poll-interval',
    '0.2',
  ]);
  token = readFileSync(join(data.dir, 'admin-token'), 'utf8').trim();
  tpm = await startTestTpm({ manufacture: false });
  client = await TpmClient.open(tpm.selector);
  ek = await client.createEk('rsa');
  // the firmware's measurements, as the log records them
  for (const e of PARSED.events)
    if (e.type !== 0x3)
      await client.pcrExtend(
        e.pcr,
        [...e.digests].map(([bank, digest]) => ({ hashAlg: ALG[bank]!, digest })),
      );
});
after(async () => {
  await v?.stop();
  evidenceServer?.close();
  await client?.close();
  tpm?.stop();
  data?.cleanup();
});

interface AgentJson {
  state: string;
  lastAttestedAt: string | null;
  stateReason: {
    failure?: { step: string; code: string; entry: number; field: string; actual: { type: string } };
  };
}

const api = async (method: string, path: string, body?: unknown) => {
  const r = await fetch(v.url + path, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  return { status: r.status, json: (await r.json()) as AgentJson };
};

/** Wait until the agent's state satisfies `ok` (the poller runs on its own). */
async function until(id: string, ok: (a: AgentJson) => boolean): Promise<AgentJson> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const a = (await api('GET', `/v1/agents/${id}`)).json;
    if (ok(a)) return a;
    if (Date.now() > deadline) assert.fail(`agent ${id} did not get there: ${JSON.stringify(a)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('verifier serve polls a pull-mode agent: pass with its golden boot log, fail naming a changed event', async () => {
  assert.equal(v.info.pollIntervalSeconds, 0.2);
  const conn = ['--verifier', v.url, '--data', data.dir];
  const add = await cli([
    'fleet',
    'add',
    'pull-1',
    '--pcrs',
    'sha256:0-10',
    '--interval',
    '1',
    '--boot-ref',
    LOG_PATH,
    ...conn,
    '--json',
  ]);
  assert.equal(add.code, 0, add.err + add.out);
  assert.equal(JSON.parse(add.out).bootReference.form, 'eventlog');

  // enrolment, as `imakit agent enrol` does it
  const ak = await client.createAk(ek, 'rsassa');
  let r = await fetch(`${v.url}/v1/registrar/enrol`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ id: 'pull-1', ekPublic: b64(ek.publicBytes), akPublic: b64(ak.key.publicBytes) }),
  });
  assert.equal(r.status, 201);
  const cred = ((await r.json()) as { credential: { idObject: string; encryptedSecret: string } }).credential;
  const secret = await client.activateCredential(ak.key.handle, ek, {
    credentialBlob: Buffer.from(cred.idObject, 'base64'),
    secret: Buffer.from(cred.encryptedSecret, 'base64'),
  });
  r = await fetch(`${v.url}/v1/registrar/activate`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ id: 'pull-1', secret: b64(secret) }),
  });
  assert.equal(r.status, 200);

  // the agent's pull endpoint: a quote over the verifier's nonce, the PCRs it asks for, the log
  let served = 0;
  evidenceServer = createServer((req, res) => {
    const u = new URL(req.url!, 'http://x');
    void (async () => {
      const nonce = u.searchParams.get('nonce')!;
      const sel = parsePcrSelectionText(u.searchParams.get('pcrs')!);
      const q = await client.quote(ak.key.handle, Buffer.from(nonce, 'hex'), sel);
      const read = await client.pcrRead(sel);
      const pcrs: Record<string, Record<string, string>> = {};
      for (const p of read.values)
        (pcrs[p.hashAlg === ALG.sha1 ? 'sha1' : 'sha256'] ??= {})[String(p.pcr)] = toHex(p.value);
      served++;
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          nonce,
          quote: { attest: b64(q.attest), signature: b64(q.signature) },
          pcrs,
          eventLog: b64(LOG),
        }),
      );
    })().catch((e: unknown) => {
      res.statusCode = 500;
      res.end(String(e));
    });
  });
  await new Promise<void>((resolve) => evidenceServer.listen(0, '127.0.0.1', resolve));
  const port = (evidenceServer.address() as { port: number }).port;
  assert.equal(
    (await api('PATCH', '/v1/agents/pull-1', { pullUrl: `http://127.0.0.1:${port}` })).status,
    200,
  );

  const passing = await until('pull-1', (a) => a.state === 'passing');
  assert.ok(passing.lastAttestedAt !== null);
  assert.ok(served >= 1, 'the verifier asked the agent');
  const show = await cli(['fleet', 'show', 'pull-1', ...conn, '--json']);
  assert.equal(JSON.parse(show.out).state, 'passing');

  // a golden log whose EFI application (#10) differs: the next poll fails at the boot step
  const e10 = PARSED.events.find((e) => e.index === 10)!;
  const changed = LOG.slice();
  const at = Buffer.from(changed).indexOf(Buffer.from(e10.digests.get('sha256')!), e10.offset);
  changed[at] = changed[at]! ^ 0x01;
  const changedPath = join(data.dir, 'changed.bin');
  writeFileSync(changedPath, changed);
  const upd = await cli(['fleet', 'update', 'pull-1', '--boot-ref', changedPath, ...conn]);
  assert.equal(upd.code, 0, upd.err + upd.out);
  assert.match(upd.out, /boot reference: eventlog, 2464 bytes/);
  const failing = await until('pull-1', (a) => a.state === 'failing');
  const f = failing.stateReason.failure!;
  assert.equal(f.step, 'boot');
  assert.equal(f.code, 'boot-event-differs');
  assert.equal(f.entry, 10);
  assert.equal(f.actual.type, 'EV_EFI_BOOT_SERVICES_APPLICATION');
  assert.equal(f.field, 'pcr 4');

  // clearing the reference: passing again, still by polling
  assert.equal((await cli(['fleet', 'update', 'pull-1', '--boot-ref', 'none', ...conn])).code, 0);
  await until('pull-1', (a) => a.state === 'passing');
  assert.equal(await v.stop(), 0);
});

test('verifier serve --poll-interval must be seconds in (0, 3600]: exit 2', async () => {
  for (const bad of ['0', '-1', 'soon', '7200']) {
    const r = await cli([
      'verifier',
      'serve',
      '--http',
      '--listen',
      '127.0.0.1:0',
      '--data',
      join(data.dir, 'never'),
      '--poll-interval',
      bad,
    ]);
    assert.equal(r.code, 2, `${bad}: ${r.err}`);
    assert.match(r.err, /poll-interval/);
  }
});
