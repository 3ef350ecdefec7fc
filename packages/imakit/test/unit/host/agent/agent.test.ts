/**
 * The agent end to end against swtpm, through the CLI (`imakit agent enrol|run --once|status`):
 * a registrar on 127.0.0.1 that does what the contract says the verifier's will (MakeCredential
 * with imakit's core, a secret compared on activation, an agent token), and an attestation
 * endpoint that verifies every quote with imakit's core verifyQuote and replays the list bytes it
 * receives into its own running PCR 10 value, continuing from its byte offset.
 *
 * The list is a real kernel's (test/fixtures/kernel/measure-ima-ng-4banks, sha1 bank) given with
 * --ima-list; its entries are extended into swtpm's PCR 10 as the kernel would (violations as ff…),
 * so a pass means quote, nonce, PCR values and list all agree. Appending entries sends only the
 * new bytes, from the previous end (asserted on what the endpoint received).
 *
 * This endpoint stands in for the verifier so the agent's own behaviour (offsets, backoff, boot
 * count, pull mode) is tested without it; test/unit/cli/attest-e2e.test.ts runs the agent against
 * the real `imakit verifier serve` (reference sets, `fleet show` passing and failing, TPM reset).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES_DIR, tempDir } from '../../../helpers.ts';
import { startTestTpm, type TestTpm } from '../../tpm-helpers.ts';
import { cli } from '../../cli/in-process-cli.ts';
import { agentFlags } from '../../cli/agent-flags.ts';
import { TpmClient } from '../../../../src/host/tpm/client.ts';
import { TPM_ALG } from '../../../../src/core/tpm/constants.ts';
import { decodeTpm2bPublic, tpmPublicName } from '../../../../src/core/tpm/public.ts';
import { makeCredential } from '../../../../src/core/tpm/make-credential.ts';
import { prepareQuoteAk, verifyQuote, type QuoteAk } from '../../../../src/core/tpm/quote-verify.ts';
import { parsePcrSelectionText } from '../../../../src/core/tpm/pcr-selection.ts';
import { fromHex, toHex } from '../../../../src/core/bytes/bytes.ts';
import { mergeAgentOptions } from '../../../../src/host/agent/config.ts';
import { runPush, type AttestOutcome } from '../../../../src/host/agent/attest.ts';
import { serveEvidence } from '../../../../src/host/agent/pull.ts';

const LIST = readFileSync(join(FIXTURES_DIR, 'kernel/measure-ima-ng-4banks/binary_runtime_measurements'));

/** Byte ranges of the ima-ng entries of a little-endian sha1 list and their template digests. */
function entries(b: Uint8Array): { start: number; end: number; digest: Uint8Array }[] {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out = [];
  for (let p = 0; p < b.length;) {
    const nameLen = v.getUint32(p + 24, true);
    const dataLen = v.getUint32(p + 28 + nameLen, true);
    const end = p + 32 + nameLen + dataLen;
    out.push({ start: p, end, digest: b.subarray(p + 4, p + 24) });
    p = end;
  }
  return out;
}
const ENTRIES = entries(LIST);
/** The kernel extends ff… for a violation (all-zero template digest), pitfall in formats.md. */
const extendValue = (d: Uint8Array): Uint8Array =>
  d.every((x) => x === 0) ? new Uint8Array(20).fill(0xff) : d;
const sha1 = (...p: Uint8Array[]): Uint8Array => {
  const h = createHash('sha1');
  for (const x of p) h.update(x);
  return new Uint8Array(h.digest());
};

interface Received {
  offsetBytes: number;
  bytes: number;
  verdict: string;
  bootCount: unknown;
}

/** The stand-in verifier (see the header). */
class FakeVerifier {
  server!: Server;
  url = '';
  agents = new Map<string, { ekPublic: Uint8Array; ak: QuoteAk; secret: Uint8Array; token?: string }>();
  nonces = new Set<string>();
  offset = 0;
  pcr10: Uint8Array = new Uint8Array(20);
  received: Received[] = [];
  failChallenges = 0;

  async start(): Promise<void> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    const a = this.server.address();
    this.url = `http://127.0.0.1:${typeof a === 'object' && a !== null ? a.port : 0}`;
  }
  close(): Promise<void> {
    return new Promise((r) => {
      this.server.close(() => r());
      this.server.closeAllConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body =
      chunks.length > 0 ? (JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>) : {};
    const send = (status: number, v: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(v));
    };
    const b = (s: unknown): Uint8Array => new Uint8Array(Buffer.from(String(s), 'base64'));
    if (req.url === '/v1/registrar/enrol') {
      const ekPublic = b(body.ekPublic);
      const akPub = decodeTpm2bPublic(b(body.akPublic));
      const secret = new Uint8Array(randomBytes(32));
      const cred = makeCredential(decodeTpm2bPublic(ekPublic), tpmPublicName(akPub), secret);
      this.agents.set(String(body.id), { ekPublic, ak: prepareQuoteAk(akPub), secret });
      return send(200, {
        id: body.id,
        credential: {
          idObject: Buffer.from(cred.credentialBlob).toString('base64'),
          encryptedSecret: Buffer.from(cred.secret).toString('base64'),
        },
      });
    }
    if (req.url === '/v1/registrar/activate') {
      const a = this.agents.get(String(body.id));
      if (a === undefined || toHex(b(body.secret)) !== toHex(a.secret))
        return send(403, { error: { code: 'V_ACTIVATION', message: 'wrong secret' } });
      a.token = `tok-${randomBytes(8).toString('hex')}`;
      return send(200, { id: body.id, agentToken: a.token });
    }
    const agent = [...this.agents.values()].find((a) => req.headers.authorization === `Agent ${a.token}`);
    if (agent === undefined)
      return send(401, { error: { code: 'V_UNAUTHENTICATED', message: 'no agent token' } });
    if (req.url === '/v1/attest/challenge') {
      if (this.failChallenges > 0) {
        this.failChallenges--;
        return send(503, { error: { code: 'V_DATABASE_UNAVAILABLE', message: 'down' } });
      }
      const nonce = randomBytes(20).toString('hex');
      this.nonces.add(nonce);
      return send(200, {
        nonce,
        pcrs: 'sha1:10',
        imaOffset: { entries: 0, bytes: this.offset },
        expiresAt: '',
      });
    }
    if (req.url === '/v1/attest/evidence') {
      const nonce = String(body.nonce);
      const pcrs = body.pcrs as Record<string, Record<string, string>>;
      const values = new Map(
        Object.entries(pcrs).map(([bank, m]) => [
          bank,
          new Map(Object.entries(m).map(([i, h]) => [Number(i), fromHex(h)])),
        ]),
      );
      const q = body.quote as { attest: string; signature: string };
      const v = verifyQuote(agent.ak, {
        attest: b(q.attest),
        signature: b(q.signature),
        nonce: fromHex(nonce),
        pcrs: values,
        require: parsePcrSelectionText('sha1:10'),
      });
      const ima = body.ima as { offsetBytes: number; entries: string };
      const bytes = b(ima.entries);
      let status =
        v.status === 'pass' && this.nonces.delete(nonce) && ima.offsetBytes === this.offset ? 'pass' : 'fail';
      let pcr = this.pcr10;
      if (status === 'pass') {
        for (const e of entries(bytes)) pcr = sha1(pcr, extendValue(e.digest));
        const quoted = v.verifiedPcrs.get('sha1')?.get(10);
        if (quoted === undefined || toHex(quoted) !== toHex(pcr)) status = 'fail';
      }
      if (status === 'pass') {
        this.pcr10 = pcr;
        this.offset += bytes.length;
      }
      this.received.push({
        offsetBytes: ima.offsetBytes,
        bytes: bytes.length,
        verdict: status,
        bootCount: body.bootCount,
      });
      return send(200, { verdict: { status, steps: [], notEstablished: v.notEstablished, next: null } });
    }
    return send(404, { error: { code: 'V_NOT_FOUND', message: req.url } });
  }
}

let tpm: TestTpm;
let client: TpmClient;
let verifier: FakeVerifier;
let ws: { dir: string; cleanup: () => void };
let listFile: string;
let common: string[];

async function extend(from: number, to: number): Promise<void> {
  for (const e of ENTRIES.slice(from, to))
    await client.pcrExtend(10, [{ hashAlg: TPM_ALG.SHA1, digest: extendValue(e.digest) }]);
}

before(async () => {
  ws = tempDir('imakit-agent-');
  tpm = await startTestTpm();
  client = await TpmClient.open(tpm.selector);
  verifier = new FakeVerifier();
  await verifier.start();
  ({ flags: common, listFile } = agentFlags({
    verifier: verifier.url,
    tpm: tpm.selector,
    dir: ws.dir,
    bootId: 'b7c4f2a0-0000-4000-8000-000000000001',
    eventlog: join(FIXTURES_DIR, 'kernel/measure-ima-ng-4banks/binary_bios_measurements'),
  }));
});
after(async () => {
  await client.close();
  await verifier.close();
  tpm.stop();
  ws.cleanup();
});

test('enrol: EK + new AK, credential activated in swtpm, token stored 0600', async () => {
  const r = await cli(['agent', 'enrol', ...common, '--json']);
  assert.equal(r.code, 0, r.err + r.out);
  const out = JSON.parse(r.out) as { akReused: boolean; ekCertificate: boolean; tokenPath: string };
  assert.equal(out.akReused, false);
  assert.equal(out.ekCertificate, true, 'swtpm_setup wrote an RSA EK certificate');
  assert.equal(statSync(out.tokenPath).mode & 0o777, 0o600);
  assert.equal(readFileSync(out.tokenPath, 'utf8').trim(), verifier.agents.get('host-1')!.token);
  // again: the AK directory is reused, a new credential is activated for it
  const again = JSON.parse((await cli(['agent', 'enrol', ...common, '--json'])).out) as { akReused: boolean };
  assert.equal(again.akReused, true);
});

test('run --once: the list from the verifier offset only; appended entries send only the new bytes', async () => {
  const half = 12;
  writeFileSync(listFile, LIST.subarray(0, ENTRIES[half - 1]!.end));
  await extend(0, half);
  const first = await cli(['agent', 'run', '--once', ...common, '--json']);
  assert.equal(first.code, 0, first.err + first.out);
  assert.equal((JSON.parse(first.out) as AttestOutcome).verdict.status, 'pass');
  const firstEnd = ENTRIES[half - 1]!.end;
  assert.deepEqual(verifier.received.at(-1), {
    offsetBytes: 0,
    bytes: firstEnd,
    verdict: 'pass',
    bootCount: 1,
  });

  appendFileSync(listFile, LIST.subarray(firstEnd));
  await extend(half, ENTRIES.length);
  const second = await cli(['agent', 'run', '--once', ...common, '--json']);
  assert.equal(second.code, 0, second.err + second.out);
  assert.deepEqual(verifier.received.at(-1), {
    offsetBytes: firstEnd,
    bytes: LIST.length - firstEnd,
    verdict: 'pass',
    bootCount: 1,
  });

  // nothing new: an empty slice from the end, still passing
  assert.equal((await cli(['agent', 'run', '--once', ...common])).code, 0);
  assert.deepEqual(verifier.received.at(-1), {
    offsetBytes: LIST.length,
    bytes: 0,
    verdict: 'pass',
    bootCount: 1,
  });

  // an entry in the list that was never extended: the replay does not reach the quoted PCR, exit 1
  appendFileSync(listFile, LIST.subarray(ENTRIES[2]!.start, ENTRIES[2]!.end));
  const bad = await cli(['agent', 'run', '--once', ...common]);
  assert.equal(bad.code, 1, bad.err + bad.out);
  assert.match(bad.out, /fail: sent \d+ list bytes from offset 2364/);

  const st = JSON.parse((await cli(['agent', 'status', ...common, '--json'])).out) as {
    enrolled: boolean;
    last: AttestOutcome;
  };
  assert.equal(st.enrolled, true);
  assert.equal(st.last.verdict.status, 'fail');
  assert.equal(st.last.ima.offsetBytes, LIST.length);
  assert.ok(st.last.eventLogBytes > 0);

  // a new boot id counts a boot
  writeFileSync(join(ws.dir, 'boot_id'), 'b7c4f2a0-0000-4000-8000-000000000002\n');
  await cli(['agent', 'run', '--once', ...common]);
  assert.equal(verifier.received.at(-1)!.bootCount, 2);
});

test('runPush: backs off on verifier errors, then attests; stops on abort', async () => {
  const c = mergeAgentOptions({
    verifier: verifier.url,
    id: 'host-1',
    tpm: tpm.selector,
    state: join(ws.dir, 'state'),
    'ima-list': listFile,
    eventlog: 'none',
    'boot-id': join(ws.dir, 'boot_id'),
    interval: 60,
    'max-backoff': 1,
  });
  verifier.failChallenges = 2;
  const ac = new AbortController();
  const waits: number[] = [];
  const verdicts: AttestOutcome[] = [];
  const t0 = Date.now();
  await runPush(
    c,
    ac.signal,
    {
      onError: (e, ms) => waits.push(ms),
      onVerdict: (o) => {
        verdicts.push(o);
        ac.abort();
      },
    },
    () => 0,
  );
  assert.deepEqual(waits, [500, 500], 'two 503s, each waited min(max 1 s, 2^n s) / 2 with jitter 0');
  assert.equal(verdicts.length, 1);
  assert.ok(Date.now() - t0 < 30_000, 'the 60 s interval wait ended at abort');
});

test('pull: GET /v1/evidence serves the evidence from the asked offset, on 127.0.0.1 only', async () => {
  const c = mergeAgentOptions({
    verifier: verifier.url,
    id: 'host-1',
    tpm: tpm.selector,
    state: join(ws.dir, 'state'),
    'ima-list': listFile,
    eventlog: 'none',
    'boot-id': join(ws.dir, 'boot_id'),
    listen: '127.0.0.1:0',
  });
  const s = await serveEvidence(c);
  try {
    assert.match(s.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const nonce = randomBytes(16).toString('hex');
    const r = await fetch(`${s.url}/v1/evidence?nonce=${nonce}&pcrs=sha1:10&offset=2000`);
    assert.equal(r.status, 200);
    const ev = (await r.json()) as {
      nonce: string;
      ima: { offsetBytes: number; entries: string };
      pcrs: { sha1: Record<string, string> };
    };
    assert.equal(ev.nonce, nonce);
    assert.equal(ev.ima.offsetBytes, 2000);
    assert.deepEqual(Buffer.from(ev.ima.entries, 'base64'), readFileSync(listFile).subarray(2000));
    assert.ok(ev.pcrs.sha1['10']);
    assert.equal((await fetch(`${s.url}/v1/evidence?offset=0`)).status, 400);
  } finally {
    await s.close();
  }
});
