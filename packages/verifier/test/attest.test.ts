/**
 * The registrar, push attestation and reference sets through inject(), on PGlite and on a real
 * PostgreSQL, with real TPM evidence: a software TPM (swtpm) per suite, driven by imakit's
 * TpmClient (tests only; the service imports imakit/core alone). The agent's EK and AK are made in
 * the TPM, enrolment is activated by the TPM (TPM2_ActivateCredential), PCR 10 is extended with
 * the entries of a measurement list a real kernel wrote (test fixture appraise-enforce), and every
 * quote is the TPM's answer to the challenge's nonce.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { encodeBinaryList, type UntrustedEntry } from 'imakit/core';
import { buildApp, createToken, openDatabase, type App, type DatabaseTarget } from '../src/index.ts';
import { startPg } from './pg-server.ts';
import { SwtpmMachine } from './swtpm-machine.ts';
import { enrolInTpm } from './tpm-enrol.ts';
import { LIST, fixtureDigests, imaNgEntry } from './kernel-fixture.ts';
import { keylimePolicy } from './keylime-policy.ts';

const REQUIRE = 'sha1:10+sha256:0-7,10';

/** A Keylime runtime policy allowing the fixture's paths (and `extra`). */
const policy = (extra: Record<string, string[]> = {}): string =>
  keylimePolicy({ ...fixtureDigests(), ...extra });
const EVIL = imaNgEntry('/usr/bin/evil', new Uint8Array(32).fill(0xee));

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');
const listBytes = (entries: readonly UntrustedEntry[]): Uint8Array => encodeBinaryList(entries);
const sizeOf = (entries: readonly UntrustedEntry[]): number => listBytes(entries).length;

/** The machine side: a TPM with an EK and AKs, PCR 10 extended like the kernel does. */
class Machine extends SwtpmMachine {
  /** After a TPM reset: the EK again (same template, same key) and the AK reloaded from its blob. */
  async reload(ak: { publicBytes: Uint8Array; outPrivate: Uint8Array }) {
    this.ek = await this.client.createEk('rsa');
    const k = await this.client.loadUnderEk(this.ek, ak.outPrivate, ak.publicBytes);
    return { ...ak, handle: k.handle };
  }
}

function suite(name: string, target: () => Promise<{ target: DatabaseTarget; done: () => Promise<void> }>) {
  describe(`attestation on ${name}`, () => {
    let app: App;
    let operate: string;
    let read: string;
    let done: () => Promise<void> = async () => undefined;
    let m: Machine;
    let akA: { handle: number; publicBytes: Uint8Array; outPrivate: Uint8Array };
    let akB: { handle: number; publicBytes: Uint8Array; outPrivate: Uint8Array };
    let tokenA = '';
    let tokenB = '';
    let refsId = '';
    const op = () => ({ authorization: `Bearer ${operate}` });
    const agentAuth = (t: string) => ({ authorization: `Agent ${t}` });

    before(async () => {
      const t = await target();
      done = t.done;
      const database = await openDatabase(t.target);
      app = await buildApp({ database, bodyLimit: 4 * 1024 * 1024, verdictRetention: 5 });
      operate = await createToken(database.db, 'operate');
      read = await createToken(database.db, 'read');
      m = await Machine.start();
      akA = await m.newAk();
      akB = await m.newAk();
    });
    after(async () => {
      await m?.stop();
      await app?.close();
      await done();
    });

    const challenge = async (token: string) => {
      const r = await app.inject({ method: 'POST', url: '/v1/attest/challenge', headers: agentAuth(token) });
      assert.equal(r.statusCode, 200, r.body);
      return r.json() as { nonce: string; pcrs: string; imaOffset: { entries: number; bytes: number } };
    };
    const evidence = (token: string, body: Record<string, unknown>) =>
      app.inject({ method: 'POST', url: '/v1/attest/evidence', headers: agentAuth(token), payload: body });
    /** One round: challenge, quote, send the list from the challenge's offset (`list` = the whole list). */
    const attest = async (token: string, handle: number, list: readonly UntrustedEntry[], extra = {}) => {
      const c = await challenge(token);
      const q = await m.quote(handle, c.nonce, c.pcrs);
      const all = listBytes(list);
      const r = await evidence(token, {
        nonce: c.nonce,
        ...q,
        ima: { offsetBytes: c.imaOffset.bytes, entries: b64(all.subarray(c.imaOffset.bytes)) },
        ...extra,
      });
      assert.equal(r.statusCode, 200, r.body);
      return { challenge: c, verdict: r.json().verdict };
    };

    test('reference sets: upload (Keylime policy), same bytes same id, list, show, diff, bad input', async () => {
      let r = await app.inject({
        method: 'POST',
        url: '/v1/reference-sets?name=fixture',
        headers: { ...op(), 'content-type': 'application/json' },
        payload: policy(),
      });
      assert.equal(r.statusCode, 201, r.body);
      const s = r.json();
      refsId = s.id;
      assert.match(s.id, /^[0-9a-f]{64}$/);
      assert.equal(s.kind, 'keylime');
      assert.equal(s.name, 'fixture');
      assert.ok(s.paths >= 20, String(s.paths));
      assert.ok(s.notEstablished.length > 0);
      r = await app.inject({
        method: 'POST',
        url: '/v1/reference-sets',
        headers: { ...op(), 'content-type': 'application/octet-stream' },
        payload: Buffer.from(policy()),
      });
      assert.equal(r.statusCode, 200);
      assert.equal(r.json().id, refsId);
      r = await app.inject({
        method: 'POST',
        url: '/v1/reference-sets?name=with-evil',
        headers: { ...op(), 'content-type': 'application/json' },
        payload: policy({ '/usr/bin/evil': ['ee'.repeat(32)] }),
      });
      assert.equal(r.statusCode, 201);
      const evilId = r.json().id as string;
      r = await app.inject({
        method: 'GET',
        url: '/v1/reference-sets',
        headers: { authorization: `Bearer ${read}` },
      });
      assert.equal(r.statusCode, 200);
      assert.deepEqual(
        r
          .json()
          .referenceSets.map((x: { id: string }) => x.id)
          .sort(),
        [refsId, evilId].sort(),
      );
      r = await app.inject({ method: 'GET', url: `/v1/reference-sets/${refsId}`, headers: op() });
      assert.equal(r.statusCode, 200);
      assert.equal(r.json().paths, s.paths);
      r = await app.inject({
        method: 'GET',
        url: `/v1/reference-sets/${refsId}/diff/${evilId}`,
        headers: op(),
      });
      assert.equal(r.statusCode, 200, r.body);
      assert.equal(r.json().added, 1);
      assert.equal(r.json().removed, 0);
      r = await app.inject({ method: 'GET', url: `/v1/reference-sets/${'0'.repeat(64)}`, headers: op() });
      assert.equal(r.statusCode, 404);
      assert.equal(r.json().error.code, 'V_NOT_FOUND');
      r = await app.inject({
        method: 'POST',
        url: '/v1/reference-sets',
        headers: { ...op(), 'content-type': 'application/json' },
        payload: '{"meta": {"version": 99}, "digests": 5}',
      });
      assert.equal(r.statusCode, 400, r.body);
      assert.match(r.json().error.code, /^E_/);
      r = await app.inject({
        method: 'POST',
        url: '/v1/reference-sets',
        headers: { authorization: `Bearer ${read}`, 'content-type': 'application/json' },
        payload: policy(),
      });
      assert.equal(r.statusCode, 403);
    });

    test('registrar: unknown id 404, unsuitable AK 400, malformed EK 400, wrong secret 403 and single use', async () => {
      const ekPublic = b64(m.ek.publicBytes);
      let r = await app.inject({
        method: 'POST',
        url: '/v1/registrar/enrol',
        payload: { id: 'nobody', ekPublic, akPublic: b64(akA.publicBytes) },
      });
      assert.equal(r.statusCode, 404);
      assert.equal(r.json().error.code, 'V_NOT_FOUND');
      for (const id of ['host-a', 'host-b']) {
        r = await app.inject({
          method: 'POST',
          url: '/v1/agents',
          headers: op(),
          payload: { id, requirePcrs: REQUIRE, referenceSet: refsId },
        });
        assert.equal(r.statusCode, 201, r.body);
      }
      // the EK is a restricted decryption key, not a signing key
      r = await app.inject({
        method: 'POST',
        url: '/v1/registrar/enrol',
        payload: { id: 'host-a', ekPublic, akPublic: ekPublic },
      });
      assert.equal(r.statusCode, 400);
      assert.equal(r.json().error.code, 'V_AK_UNSUITABLE');
      r = await app.inject({
        method: 'POST',
        url: '/v1/registrar/enrol',
        payload: {
          id: 'host-a',
          ekPublic: b64(m.ek.publicBytes.subarray(0, 40)),
          akPublic: b64(akA.publicBytes),
        },
      });
      assert.equal(r.statusCode, 400);
      assert.match(r.json().error.code, /^E_CODEC/);
      r = await app.inject({
        method: 'POST',
        url: '/v1/registrar/enrol',
        payload: { id: 'host-a', ekPublic, akPublic: b64(akA.publicBytes) },
      });
      assert.equal(r.statusCode, 201, r.body);
      r = await app.inject({
        method: 'POST',
        url: '/v1/registrar/activate',
        payload: { id: 'host-a', secret: b64(new Uint8Array(32)) },
      });
      assert.equal(r.statusCode, 403);
      assert.equal(r.json().error.code, 'V_ACTIVATION_FAILED');
      r = await app.inject({
        method: 'POST',
        url: '/v1/registrar/activate',
        payload: { id: 'host-a', secret: b64(new Uint8Array(32)) },
      });
      assert.equal(r.statusCode, 404, 'the challenge was single use');
    });

    test('registrar: enrol and activate in the TPM (TPM2_ActivateCredential) → agent token', async () => {
      for (const [id, ak] of [
        ['host-a', akA],
        ['host-b', akB],
      ] as const) {
        const { secret, activated } = await enrolInTpm(app, m, id, ak);
        assert.equal(secret.length, 32);
        let r = activated;
        assert.equal(r.statusCode, 200, r.body);
        assert.equal(r.json().id, id);
        if (id === 'host-a') tokenA = r.json().agentToken;
        else tokenB = r.json().agentToken;
        r = await app.inject({ method: 'GET', url: `/v1/agents/${id}`, headers: op() });
        assert.equal(r.json().enrolled, true);
        assert.equal(r.json().state, 'unenrolled');
      }
      // another EK may not take over an enrolled id
      const otherTpm = await Machine.start();
      const other = otherTpm.ek;
      await otherTpm.stop();
      const r = await app.inject({
        method: 'POST',
        url: '/v1/registrar/enrol',
        payload: { id: 'host-a', ekPublic: b64(other.publicBytes), akPublic: b64(akA.publicBytes) },
      });
      assert.equal(r.statusCode, 409);
      assert.equal(r.json().error.code, 'V_AGENT_ENROLLED');
    });

    test('attest: the first 10 kernel entries → pass; history; tokens checked', async () => {
      const first = LIST.slice(0, 10);
      await m.extend(first);
      const { challenge: c, verdict } = await attest(tokenA, akA.handle, first);
      assert.equal(c.pcrs, REQUIRE);
      assert.match(c.nonce, /^[0-9a-f]{64}$/);
      assert.deepEqual(c.imaOffset, { entries: 0, bytes: 0 });
      assert.equal(verdict.status, 'pass', JSON.stringify(verdict));
      assert.deepEqual(
        verdict.steps.map((s: { step: string; status: string }) => `${s.step}:${s.status}`),
        ['quote:pass', 'boot:skipped', 'ima:pass', 'refs:pass'],
      );
      assert.deepEqual(verdict.next.imaOffset, { entries: 10, bytes: sizeOf(first) });
      assert.ok(verdict.notEstablished.some((n: string) => /no event log/.test(n)));
      assert.ok(verdict.notEstablished.some((n: string) => /no earlier quote/.test(n)));
      let r = await app.inject({ method: 'GET', url: '/v1/agents/host-a', headers: op() });
      assert.equal(r.json().state, 'passing');
      r = await app.inject({ method: 'GET', url: '/v1/agents/host-a/verdicts', headers: op() });
      assert.equal(r.statusCode, 200);
      assert.equal(r.json().verdicts.length, 1);
      assert.equal(r.json().verdicts[0].verdict.status, 'pass');
      r = await app.inject({ method: 'POST', url: '/v1/attest/challenge' });
      assert.equal(r.statusCode, 401);
      r = await app.inject({ method: 'POST', url: '/v1/attest/challenge', headers: op() });
      assert.equal(r.statusCode, 401);
      r = await app.inject({ method: 'GET', url: '/v1/agents/nobody/verdicts', headers: op() });
      assert.equal(r.statusCode, 404);
    });

    test('attest: a list that runs ahead of the quote → pass with the covered prefix, then the rest', async () => {
      await m.extend(LIST.slice(10, 15));
      // the list already holds 20 entries; the TPM saw 15 when it quoted
      const { verdict } = await attest(tokenA, akA.handle, LIST.slice(0, 20));
      assert.equal(verdict.status, 'pass', JSON.stringify(verdict));
      assert.deepEqual(verdict.next.imaOffset, { entries: 15, bytes: sizeOf(LIST.slice(0, 15)) });
      const ima = verdict.steps.find((s: { step: string }) => s.step === 'ima');
      assert.equal(ima.ahead, 5);
      assert.ok(verdict.notEstablished.some((n: string) => /entries 15\.\.19/.test(n)));
      await m.extend(LIST.slice(15));
      const again = await attest(tokenA, akA.handle, LIST);
      assert.equal(again.challenge.imaOffset.entries, 15);
      assert.equal(again.verdict.status, 'pass', JSON.stringify(again.verdict));
      assert.deepEqual(again.verdict.next.imaOffset, { entries: LIST.length, bytes: sizeOf(LIST) });
    });

    test('attest: an entry the reference set refuses → fail naming it; references updated in place → pass', async () => {
      await m.extend([EVIL]);
      const list = [...LIST, EVIL];
      const { verdict } = await attest(tokenA, akA.handle, list);
      assert.equal(verdict.status, 'fail');
      const f = verdict.failure;
      assert.equal(f.step, 'refs');
      assert.equal(f.code, 'unknown-path');
      assert.equal(f.entry, LIST.length);
      assert.equal(f.offset, sizeOf(LIST));
      assert.equal(f.path, '/usr/bin/evil');
      assert.equal(f.actual, `sha256:${'ee'.repeat(32)}`);
      assert.equal(f.expected, null);
      assert.match(f.fix, /add \/usr\/bin\/evil/);
      // not advanced: the entry is evaluated again next time
      assert.deepEqual(verdict.next.imaOffset, { entries: LIST.length, bytes: sizeOf(LIST) });
      let r = await app.inject({ method: 'GET', url: '/v1/agents/host-a', headers: op() });
      assert.equal(r.json().state, 'failing');
      assert.equal(r.json().stateReason.failure.path, '/usr/bin/evil');
      r = await app.inject({
        method: 'GET',
        url: '/v1/events?agent=host-a&limit=1',
        headers: op(),
      });
      assert.equal(r.json().events[0].to, 'failing');
      // the operator approves the file: a new set, assigned in place
      r = await app.inject({
        method: 'POST',
        url: '/v1/reference-sets',
        headers: { ...op(), 'content-type': 'application/json' },
        payload: policy({ '/usr/bin/evil': ['ee'.repeat(32)] }),
      });
      r = await app.inject({
        method: 'PATCH',
        url: '/v1/agents/host-a',
        headers: op(),
        payload: { referenceSet: r.json().id },
      });
      assert.equal(r.statusCode, 200);
      const again = await attest(tokenA, akA.handle, list);
      assert.equal(again.verdict.status, 'pass', JSON.stringify(again.verdict));
      assert.deepEqual(again.verdict.next.imaOffset, { entries: list.length, bytes: sizeOf(list) });
    });

    test('attest: replayed nonce, another agent’s nonce, nonce rate limit', async () => {
      const c = await challenge(tokenA);
      const q = await m.quote(akA.handle, c.nonce, c.pcrs);
      let r = await evidence(tokenA, { nonce: c.nonce, ...q });
      assert.equal(r.statusCode, 200, r.body);
      r = await evidence(tokenA, { nonce: c.nonce, ...q });
      assert.equal(r.statusCode, 409);
      assert.equal(r.json().error.code, 'V_NONCE_UNKNOWN');
      // host-b answers host-a's challenge with host-b's token (and a quote by host-b's AK)
      const c2 = await challenge(tokenA);
      const q2 = await m.quote(akB.handle, c2.nonce, c2.pcrs);
      r = await evidence(tokenB, { nonce: c2.nonce, ...q2 });
      assert.equal(r.statusCode, 403);
      assert.equal(r.json().error.code, 'V_NONCE_OTHER_AGENT');
      // the nonce was burnt: host-a cannot use it either
      r = await evidence(tokenA, { nonce: c2.nonce, ...(await m.quote(akA.handle, c2.nonce, c2.pcrs)) });
      assert.equal(r.json().error.code, 'V_NONCE_UNKNOWN');
      for (let i = 0; i < 8; i++) await challenge(tokenB);
      r = await app.inject({ method: 'POST', url: '/v1/attest/challenge', headers: agentAuth(tokenB) });
      assert.equal(r.statusCode, 429);
      assert.equal(r.json().error.code, 'V_RATE_LIMITED');
      // a paused agent is not attested
      r = await app.inject({ method: 'POST', url: '/v1/agents/host-b/pause', headers: op() });
      assert.equal(r.statusCode, 200);
      r = await app.inject({ method: 'POST', url: '/v1/attest/challenge', headers: agentAuth(tokenB) });
      assert.equal(r.statusCode, 409);
      assert.equal(r.json().error.code, 'V_AGENT_PAUSED');
    });

    test('attest: a quote by another agent’s AK, and one that omits PCR 10 → refused with the reason', async () => {
      let c = await challenge(tokenA);
      let r = await evidence(tokenA, { nonce: c.nonce, ...(await m.quote(akB.handle, c.nonce, c.pcrs)) });
      assert.equal(r.json().verdict.status, 'fail');
      assert.equal(r.json().verdict.failure.code, 'signature-invalid');
      c = await challenge(tokenA);
      r = await evidence(tokenA, { nonce: c.nonce, ...(await m.quote(akA.handle, c.nonce, 'sha256:0-7')) });
      const v = r.json().verdict;
      assert.equal(v.status, 'fail');
      assert.equal(v.failure.step, 'quote');
      assert.equal(v.failure.code, 'required-pcr-not-quoted');
      assert.equal(v.failure.expected, REQUIRE);
      assert.deepEqual(
        v.steps.map((s: { status: string }) => s.status),
        ['fail', 'skipped', 'skipped', 'skipped'],
      );
    });

    test('attest: malformed evidence → the malformed verdict, the process alive', async () => {
      let c = await challenge(tokenA);
      let q = await m.quote(akA.handle, c.nonce, c.pcrs);
      // a list whose first entry claims a 4 GiB template name
      const junk = new Uint8Array(64);
      junk.set([10, 0, 0, 0], 0);
      junk.fill(0xff, 24, 28);
      let r = await evidence(tokenA, {
        nonce: c.nonce,
        ...q,
        ima: { offsetBytes: c.imaOffset.bytes, entries: b64(junk) },
      });
      assert.equal(r.statusCode, 200, r.body);
      let v = r.json().verdict;
      assert.equal(v.status, 'fail');
      assert.equal(v.failure.step, 'ima');
      assert.equal(v.failure.code, 'evidence-malformed');
      // the entry's template-name length (after PCR and digest) is the field at fault
      assert.equal(v.failure.offset, c.imaOffset.bytes + 24);
      assert.match(v.failure.field, /^ima\.entries/);
      assert.match(v.failure.cause, /^E_/);
      c = await challenge(tokenA);
      q = await m.quote(akA.handle, c.nonce, c.pcrs);
      r = await evidence(tokenA, {
        nonce: c.nonce,
        ...q,
        quote: { attest: b64(new Uint8Array(7)), signature: q.quote.signature },
      });
      v = r.json().verdict;
      assert.equal(v.failure.code, 'evidence-malformed');
      assert.equal(v.failure.field, 'quote.attest');
      c = await challenge(tokenA);
      r = await evidence(tokenA, { nonce: c.nonce, ...q, eventLog: b64(new Uint8Array(9)) });
      assert.equal(r.json().verdict.status, 'fail');
      // bad JSON shapes are 400s before any state is touched
      r = await evidence(tokenA, { nonce: 'zz', quote: { attest: '!', signature: '' }, pcrs: {} });
      assert.equal(r.statusCode, 400);
      assert.equal(r.json().error.code, 'V_VALIDATION');
      r = await app.inject({ method: 'GET', url: '/health' });
      assert.equal(r.statusCode, 200);
      // history is bounded (verdictRetention: 5)
      r = await app.inject({ method: 'GET', url: '/v1/agents/host-a/verdicts?limit=100', headers: op() });
      assert.equal(r.json().verdicts.length, 5);
      const ids = r.json().verdicts.map((x: { id: number }) => x.id);
      r = await app.inject({
        method: 'GET',
        url: `/v1/agents/host-a/verdicts?limit=2&before=${ids[1]}`,
        headers: op(),
      });
      assert.deepEqual(
        r.json().verdicts.map((x: { id: number }) => x.id),
        ids.slice(2, 4),
      );
    });

    test('attest: TPM reset (reboot) → new boot detected, the new list from its start → pass', async () => {
      await m.client.powerCycle();
      akA = await m.reload(akA);
      const boot2 = LIST.slice(0, 8);
      await m.extend(boot2);
      // the agent knows it rebooted: it sends its new list from the start
      const c = await challenge(tokenA);
      const q = await m.quote(akA.handle, c.nonce, c.pcrs);
      const r = await evidence(tokenA, {
        nonce: c.nonce,
        ...q,
        ima: { offsetBytes: 0, entries: b64(listBytes(boot2)) },
        bootCount: 2,
      });
      const v = r.json().verdict;
      assert.equal(v.status, 'pass', JSON.stringify(v));
      const quote = v.steps.find((s: { step: string }) => s.step === 'quote');
      assert.match(quote.reboot, /resetCount \d+ → \d+/);
      assert.deepEqual(v.next.imaOffset, { entries: 8, bytes: sizeOf(boot2) });
      assert.ok(v.notEstablished.some((n: string) => /bootCount/.test(n)));
      // an agent that missed the reboot and sends from its old offset is told to start over
      await m.client.powerCycle();
      akA = await m.reload(akA);
      await m.extend(boot2);
      const c2 = await challenge(tokenA);
      const q2 = await m.quote(akA.handle, c2.nonce, c2.pcrs);
      const r2 = await evidence(tokenA, {
        nonce: c2.nonce,
        ...q2,
        ima: { offsetBytes: c2.imaOffset.bytes, entries: '' },
      });
      const v2 = r2.json().verdict;
      assert.equal(v2.failure.code, 'ima-reboot-resend');
      assert.deepEqual(v2.next.imaOffset, { entries: 0, bytes: 0 });
      const again = await attest(tokenA, akA.handle, boot2);
      assert.equal(again.challenge.imaOffset.bytes, 0);
      assert.equal(again.verdict.status, 'pass', JSON.stringify(again.verdict));
    });
  });
}

suite('PGlite', async () => ({ target: { kind: 'pglite' }, done: async () => undefined }));
suite('PostgreSQL', async () => {
  const pg = await startPg();
  return { target: { kind: 'postgres', url: pg.url }, done: () => pg.stop() };
});
