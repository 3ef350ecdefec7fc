/**
 * Measured boot against a per-agent boot reference, end to end through inject(), on PGlite and on
 * a real PostgreSQL: a software TPM (swtpm) whose PCRs 0-9 are extended with every event of a real
 * firmware log (test fixture ovmf-uefi: OVMF, 24 events, sha1 + sha256), agents enrolled by
 * TPM2_ActivateCredential, quotes over PCRs 0-10 answering the verifier's nonces, and the log sent
 * as evidence. The golden log itself passes; a golden log with one event changed fails at step
 * `boot` naming the PCR, the event index, type and digest; PCR values and a Keylime refstate
 * made from the log pass, and are replaced in place.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseEventLog, replayEventLog, toHex } from 'imakit/core';
import { buildApp, createToken, openDatabase, type App, type DatabaseTarget } from '../src/index.ts';
import { startPg } from './pg-server.ts';
import { SwtpmMachine } from './swtpm-machine.ts';
import { enrolInTpm } from './tpm-enrol.ts';
import { keylimeRefstate } from '../../imakit/test/unit/core/tcg/grub-boot-log.ts';

const LOG = new Uint8Array(
  readFileSync(
    join(import.meta.dirname, '../../imakit/test/fixtures/kernel/ovmf-uefi/binary_bios_measurements'),
  ),
);
const PARSED = parseEventLog(LOG);
const REPLAYED = replayEventLog(PARSED).pcrs;
const TPM_ALG: Record<string, number> = { sha1: 0x0004, sha256: 0x000b };
const REQUIRE = 'sha256:0-10';
const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');

/** The golden log with event `index`'s sha256 digest changed (another firmware or loader). */
function changedLog(index: number): { bytes: Uint8Array; digest: string } {
  const e = PARSED.events.find((x) => x.index === index)!;
  const out = LOG.slice();
  const at = Buffer.from(out).indexOf(Buffer.from(e.digests.get('sha256')!), e.offset);
  out[at] = out[at]! ^ 0x01;
  return {
    bytes: out,
    digest: toHex(
      parseEventLog(out)
        .events.find((x) => x.index === index)!
        .digests.get('sha256')!,
    ),
  };
}

class Machine extends SwtpmMachine {
  /** Extend PCRs 0-9 with every measured event of the log, both banks, as the firmware did. */
  async boot(): Promise<void> {
    for (const e of PARSED.events) {
      if (e.type === 0x3 /* EV_NO_ACTION */) continue;
      await this.client.pcrExtend(
        e.pcr,
        [...e.digests].map(([bank, digest]) => ({ hashAlg: TPM_ALG[bank]!, digest })),
      );
    }
  }
}

function suite(name: string, target: () => Promise<{ target: DatabaseTarget; done: () => Promise<void> }>) {
  describe(`boot references on ${name}`, () => {
    let app: App;
    let operate = '';
    let done: () => Promise<void> = async () => undefined;
    let m: Machine;
    const tokens: Record<string, string> = {};
    const aks: Record<string, number> = {};
    const op = () => ({ authorization: `Bearer ${operate}` });
    const changed = changedLog(10);

    before(async () => {
      const t = await target();
      done = t.done;
      const database = await openDatabase(t.target);
      app = await buildApp({ database });
      operate = await createToken(database.db, 'operate');
      m = await Machine.start();
      await m.boot();
      for (const [id, ref] of [
        ['golden', LOG],
        ['changed', changed.bytes],
      ] as const) {
        let r = await app.inject({
          method: 'POST',
          url: '/v1/agents',
          headers: op(),
          payload: { id, requirePcrs: REQUIRE, bootReference: { data: b64(ref) } },
        });
        assert.equal(r.statusCode, 201, r.body);
        assert.equal(r.json().bootReference.form, 'eventlog');
        assert.equal(r.json().bootReference.bytes, LOG.length);
        const ak = await m.newAk();
        aks[id] = ak.handle;
        r = (await enrolInTpm(app, m, id, ak)).activated;
        assert.equal(r.statusCode, 200, r.body);
        tokens[id] = r.json().agentToken;
      }
    });
    after(async () => {
      await m?.stop();
      await app?.close();
      await done();
    });

    /** One push attestation with the event log. */
    const attest = async (id: string, eventLog: Uint8Array | null = LOG) => {
      const auth = { authorization: `Agent ${tokens[id]}` };
      const c = (await app.inject({ method: 'POST', url: '/v1/attest/challenge', headers: auth })).json();
      assert.equal(c.pcrs, REQUIRE);
      const q = await m.quote(aks[id]!, c.nonce, c.pcrs);
      const r = await app.inject({
        method: 'POST',
        url: '/v1/attest/evidence',
        headers: auth,
        payload: { nonce: c.nonce, ...q, ...(eventLog !== null && { eventLog: b64(eventLog) }) },
      });
      assert.equal(r.statusCode, 200, r.body);
      return r.json().verdict;
    };
    const setRef = async (id: string, ref: unknown) => {
      const r = await app.inject({
        method: 'PATCH',
        url: `/v1/agents/${id}`,
        headers: op(),
        payload: { bootReference: ref },
      });
      assert.equal(r.statusCode, 200, r.body);
      return r.json();
    };

    test('the golden log of this boot: pass, the boot step compared with the reference', async () => {
      const v = await attest('golden');
      assert.equal(v.status, 'pass', JSON.stringify(v.failure));
      const boot = v.steps.find((s: { step: string }) => s.step === 'boot');
      assert.equal(boot.status, 'pass');
      assert.equal(boot.reference, 'eventlog');
      assert.match(boot.detail, /PCR 4: 3 events/);
      assert.ok(!v.notEstablished.some((n: string) => /no measured-boot reference/.test(n)));
    });

    test('a golden log with a different event: fail at step boot naming PCR, event index, type and digest', async () => {
      const v = await attest('changed');
      assert.equal(v.status, 'fail');
      const f = v.failure;
      assert.equal(f.step, 'boot');
      assert.equal(f.code, 'boot-event-differs');
      assert.equal(f.field, 'pcr 4');
      assert.equal(f.entry, 10);
      assert.deepEqual(f.actual, {
        index: 10,
        type: 'EV_EFI_BOOT_SERVICES_APPLICATION',
        digest: '12ceb966d9668e1eb23093d43cabc53034d307d3f1a82485902c69794caf40f0',
      });
      assert.deepEqual(f.expected, {
        goldenIndex: 10,
        type: 'EV_EFI_BOOT_SERVICES_APPLICATION',
        digest: changed.digest,
      });
      assert.match(f.fix, /golden log/);
      const agent = (await app.inject({ method: 'GET', url: '/v1/agents/changed', headers: op() })).json();
      assert.equal(agent.state, 'failing');
      assert.equal(agent.stateReason.failure.entry, 10);
    });

    test('no event log sent to an agent with a golden log: fail saying to send it', async () => {
      const v = await attest('golden', null);
      assert.equal(v.status, 'fail');
      assert.equal(v.failure.step, 'boot');
      assert.match(v.failure.fix, /send the TCG event log/);
    });

    test('PCR values (bank:index=hex) replace the reference in place: pass, then a wrong value fails naming the PCR', async () => {
      const lines = [0, 4, 7, 9]
        .map((i) => `sha256:${i}=${toHex(REPLAYED.get('sha256')!.get(i)!)}`)
        .join('\n');
      const a = await setRef('changed', { data: b64(new TextEncoder().encode(lines)) });
      assert.equal(a.bootReference.form, 'pcrs');
      let v = await attest('changed');
      assert.equal(v.status, 'pass', JSON.stringify(v.failure));
      // without a log the quoted values are compared all the same
      v = await attest('changed', null);
      assert.equal(v.status, 'pass', JSON.stringify(v.failure));
      assert.ok(v.notEstablished.some((n: string) => /which boot events/.test(n)));
      await setRef('changed', {
        form: 'pcrs',
        data: b64(new TextEncoder().encode(`sha256:7=${'00'.repeat(32)}`)),
      });
      v = await attest('changed');
      assert.equal(v.failure.code, 'boot-pcr-differs');
      assert.equal(v.failure.field, 'pcr 7');
      assert.equal(v.failure.entry, 9, "PCR 7's last event: the separator, #9");
    });

    test("a Keylime mb_refstate of this firmware: Keylime's example policy refuses OVMF's direct boot at event #21, and so do we", async () => {
      const rs = keylimeRefstate(PARSED.events);
      await setRef('changed', { data: b64(new TextEncoder().encode(JSON.stringify(rs))) });
      let v = await attest('changed');
      assert.equal(v.status, 'fail');
      assert.equal(v.failure.code, 'boot-refstate-mismatch');
      // Keylime 7.14 names the same event (imakit test/vectors/keylime/mb-refstate-verdicts.json)
      assert.equal(v.failure.entry, 21);
      assert.equal(v.failure.actual.type, 'EV_EVENT_TAG');
      assert.equal(v.failure.field, 'pcr 9');
      const boot = v.steps.find((s: { step: string }) => s.step === 'boot');
      assert.ok(
        boot.mismatches.some((m: { message: string }) => /no kernels/.test(m.message)),
        'an empty kernels list accepts no boot chain, as in Keylime',
      );
      // cleared: the boot step says no reference is configured
      const cleared = await setRef('changed', null);
      assert.equal(cleared.bootReference, null);
      v = await attest('changed');
      assert.equal(v.status, 'pass');
      assert.ok(v.notEstablished.some((n: string) => /no measured-boot reference/.test(n)));
    });

    test('a malformed boot reference is a 400 naming the field, before anything is stored', async () => {
      for (const [ref, cause] of [
        [{ data: b64(LOG.subarray(0, 60)) }, /^E_CODEC_/],
        [{ form: 'pcrs', data: b64(new TextEncoder().encode('sha256:0=abc')) }, /^E_BOOTREF_FORMAT$/],
        [{ data: b64(new TextEncoder().encode('{"kernels": 1}')) }, /^E_BOOTREF_FORMAT$/],
      ] as const) {
        const r = await app.inject({
          method: 'POST',
          url: '/v1/agents',
          headers: op(),
          payload: { id: 'bad-ref', bootReference: ref },
        });
        assert.equal(r.statusCode, 400, r.body);
        assert.equal(r.json().error.code, 'V_VALIDATION');
        assert.equal(r.json().error.field, 'body/bootReference');
        assert.match(r.json().error.cause, cause);
      }
      const r = await app.inject({ method: 'GET', url: '/v1/agents/bad-ref', headers: op() });
      assert.equal(r.statusCode, 404);
    });
  });
}

suite('PGlite', async () => ({ target: { kind: 'pglite' }, done: async () => undefined }));
suite('PostgreSQL', async () => {
  const pg = await startPg();
  return { target: { kind: 'postgres', url: pg.url }, done: () => pg.stop() };
});
