/**
 * Keylime's stateless `POST /v2.x/verify/evidence` with real TPM evidence: a software TPM (swtpm)
 * driven by imakit's TpmClient (tests only), PCR 10 extended with the entries of a list a real
 * kernel wrote (fixture appraise-enforce), quotes in Keylime's `r<attest>:<sig>:<pcr blob>` format
 * (the blob laid out as tpm2-tools writes it, which Keylime's tpm_util parses), the AK as base64
 * TPM2B_PUBLIC, the list as ascii text, the policy a Keylime runtime policy.
 * What Keylime 7.14 answers on the same kind of evidence is in fixtures/keylime-evidence/ (with
 * its origin); the cases where imakit's answer differs on purpose are named there.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parsePcrSelectionText, parseAsciiList, asciiToEntries, parseEventLog } from 'imakit/core';
import { buildApp, openDatabase, verifyKeylimeEvidence, type App } from '../src/index.ts';
import { SwtpmMachine } from './swtpm-machine.ts';
import { encodeKeylimePcrBlob, keylimeQuoteString } from '../../imakit/src/core/tpm/keylime-quote.ts';
import { grubBoot } from '../../imakit/test/unit/core/tcg/grub-boot-log.ts';
import { decodePcrBlob, parseKeylimeQuote } from '../src/keylime/quote-format.ts';
import { ASCII } from './kernel-fixture.ts';
import { keylimePolicy } from './keylime-policy.ts';

const ENTRIES = asciiToEntries(parseAsciiList(ASCII.join('\n')));
const TPM_SHA256 = 0x000b;
const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');

/** A Keylime runtime policy allowing the fixture's paths. */
function runtimePolicy(drop?: string): string {
  const digests: Record<string, string[]> = {};
  for (const line of ASCII) {
    const [, , , d, path] = line.split(' ');
    if (path === drop) continue;
    (digests[path!] ??= []).push(d!.slice(d!.indexOf(':') + 1));
  }
  return keylimePolicy(digests);
}

/** Keylime quotes from the swtpm machine. */
class Machine extends SwtpmMachine {
  /** Keylime's quote string over `sel` (sha256 bank); `relabel` rewrites the blob's selection only. */
  async keylimeQuote(ak: number, nonce: string, pcrs: number[], relabel?: number[]): Promise<string> {
    const selection = parsePcrSelectionText(`sha256:${pcrs.join(',')}`);
    const q = await this.client.quote(ak, Buffer.from(nonce, 'utf8'), selection);
    const read = await this.client.pcrRead(selection);
    const values = read.values.map((v) => v.value);
    const blob = encodeKeylimePcrBlob(TPM_SHA256, relabel ?? pcrs, values);
    return keylimeQuoteString(q.attest, q.signature, blob);
  }
}

describe('Keylime POST /v2.x/verify/evidence', () => {
  let app: App;
  let m: Machine;
  let ak: { handle: number; publicBytes: Uint8Array };
  let ekB64 = '';
  const NONCE = 'kNq0bX2yQ7rLz1aP9eWc';

  before(async () => {
    app = await buildApp({ database: await openDatabase({ kind: 'pglite' }) });
    m = await Machine.start();
    ak = await m.newAk();
    ekB64 = b64(m.ek.publicBytes);
    await m.extend(ENTRIES);
  });
  after(async () => {
    await m?.stop();
    await app?.close();
  });

  const body = (data: Record<string, unknown>) => ({
    type: 'tpm',
    data: {
      nonce: NONCE,
      hash_alg: 'sha256',
      tpm_ek: ekB64,
      tpm_ak: b64(ak.publicBytes),
      runtime_policy: runtimePolicy(),
      ima_measurement_list: ASCII.join('\n') + '\n',
      ...data,
    },
  });
  const post = (payload: unknown, version = 'v2.6') =>
    app.inject({ method: 'POST', url: `/${version}/verify/evidence`, payload: payload as object });

  test('a real quote over PCRs 0-7,10 with the kernel list and a policy allowing it: valid', async () => {
    const quote = await m.keylimeQuote(ak.handle, NONCE, [0, 1, 2, 3, 4, 5, 6, 7, 10]);
    const parsed = parseKeylimeQuote(quote);
    assert.equal(decodePcrBlob(parsed.pcrBlob).values.length, 9);
    for (const v of ['v2.0', 'v2.6']) {
      const r = await post(body({ quote }), v);
      assert.equal(r.statusCode, 200, r.body);
      const j = r.json();
      assert.equal(j.code, 200);
      assert.equal(j.status, 'Success');
      assert.equal(j.results.valid, true, JSON.stringify(j.results.failures));
      assert.deepEqual(j.results.failures, []);
      assert.equal(j.results.claims.ima.entries, ASCII.length);
      assert.match(j.results.claims.pcrs['10'], /^[0-9a-f]{64}$/);
    }
    // a tpm_policy on a quoted PCR: its value must be listed
    const pcr0 = (await post(body({ quote }))).json().results.claims.pcrs['0'] as string;
    let r = await post(body({ quote, tpm_policy: JSON.stringify({ 0: [pcr0], mask: '0x401' }) }));
    assert.equal(r.json().results.valid, true, r.body);
    r = await post(body({ quote, tpm_policy: JSON.stringify({ 0: ['00'.repeat(31) + '01'] }) }));
    assert.equal(r.json().results.valid, false);
    assert.equal(r.json().results.failures[0].type, 'pcr_validation.invalid_pcr_0');
    assert.equal(r.json().results.failures[0].context.got, pcr0);
  });

  test('PCR 10 not in the quote, with a runtime policy: invalid (Keylime 7.14 says valid)', async () => {
    const quote = await m.keylimeQuote(ak.handle, NONCE, [0, 1, 2, 3, 4, 5, 6, 7]);
    const r = await post(body({ quote }));
    assert.equal(r.statusCode, 200, r.body);
    const j = r.json().results;
    assert.equal(j.valid, false);
    assert.equal(j.failures[0].type, 'ima.pcr_not_quoted');
    assert.equal(j.failures[0].context.reason, 'ima-pcr-not-quoted');
    // a tpm_policy naming a PCR the quote does not cover is a failure too
    const r2 = await post(
      body({ quote, runtime_policy: '', ima_measurement_list: '', tpm_policy: '{"16":["00"]}' }),
    );
    assert.equal(r2.json().results.valid, false);
    assert.equal(r2.json().results.failures[0].type, 'pcr_validation.missing_pcrs');
    assert.deepEqual(r2.json().results.failures[0].context.data, [16]);
  });

  test('a PCR blob relabelled (quote over PCR 16, blob says PCR 10): invalid', async () => {
    const quote = await m.keylimeQuote(ak.handle, NONCE, [16], [10]);
    const r = await post(body({ quote }));
    const j = r.json().results;
    assert.equal(j.valid, false);
    assert.equal(j.failures[0].type, 'quote_validation.quote_validation');
    assert.match(j.failures[0].context.message, /claims sha256:10 but the quote signed sha256:16/);
  });

  test('a tampered list or a file the policy does not allow: invalid, naming the entry', async () => {
    const quote = await m.keylimeQuote(ak.handle, NONCE, [10]);
    // one file digest changed (the template hash no longer matches its data)
    const lines = [...ASCII];
    const k = 5;
    const f = lines[k]!.split(' ');
    f[3] = 'sha256:' + 'ab'.repeat(32);
    lines[k] = f.join(' ');
    let r = await post(body({ quote, ima_measurement_list: lines.join('\n') }));
    let j = r.json().results;
    assert.equal(j.valid, false, r.body);
    assert.equal(j.failures[0].context.entry, k);
    assert.equal(j.failures[0].context.reason, 'ima-template-digest');
    // the list is intact but the policy lacks one path
    const path = ASCII[k]!.split(' ')[4]!;
    r = await post(body({ quote, runtime_policy: runtimePolicy(path) }));
    j = r.json().results;
    assert.equal(j.valid, false, r.body);
    assert.equal(j.failures[0].type, 'ima.ima-ng.not_in_allowlist');
    assert.equal(j.failures[0].context.path, path);
    assert.equal(j.failures[0].context.entry, k);
    // an entry missing from the list: the list no longer replays to the quoted PCR 10
    r = await post(body({ quote, ima_measurement_list: ASCII.filter((_l, i) => i !== k).join('\n') }));
    j = r.json().results;
    assert.equal(j.valid, false);
    assert.equal(j.failures[0].type, 'ima.pcr_mismatch');
  });

  test('the nonce is compared as sent; the AK must be the signer', async () => {
    const quote = await m.keylimeQuote(ak.handle, NONCE, [10]);
    let r = await post(body({ quote, nonce: 'another-nonce' }));
    assert.equal(r.json().results.valid, false);
    assert.equal(r.json().results.failures[0].context.reason, 'nonce-mismatch');
    const other = await m.newAk();
    r = await post(body({ quote, tpm_ak: b64(other.publicBytes) }));
    assert.equal(r.json().results.valid, false);
    assert.equal(r.json().results.failures[0].context.reason, 'signature-invalid');
  });

  test('malformed input: 400 for a missing parameter, an invalid result naming the field, never a 500', async () => {
    const quote = await m.keylimeQuote(ak.handle, NONCE, [10]);
    let r = await post(body({ quote: '' }));
    assert.equal(r.statusCode, 400);
    assert.equal(r.json().code, 400);
    assert.equal(r.json().results.failures[0].type, 'default.missing_param');
    r = await post(body({ quote, runtime_policy: '', ima_measurement_list: '' }));
    assert.equal(r.statusCode, 400);
    assert.equal(r.json().results.failures[0].type, 'default.missing_policy');
    r = await post({ data: {} });
    assert.equal(r.statusCode, 400);
    assert.equal(r.json().status, "missing parameter 'type'");
    const bad: [string, string][] = [
      ['x' + quote.slice(1), 'data.quote'],
      [quote.split(':').slice(0, 2).join(':'), 'data.quote'],
      [quote.replace(':', ':!!'), 'data.quote[signature]'],
      [quote.slice(0, quote.length - 40), 'data.quote[pcrs]'],
      [`r${b64(new Uint8Array(10))}:${quote.split(':')[1]}:${quote.split(':')[2]}`, 'data.quote[attest]'],
    ];
    for (const [q, field] of bad) {
      r = await post(body({ quote: q }));
      assert.equal(r.statusCode, 200, r.body);
      assert.equal(r.json().results.valid, false);
      assert.equal(r.json().results.failures[0].context.field, field, r.body);
    }
    r = await post(body({ quote, tpm_ak: 'AAAA' }));
    assert.equal(r.json().results.failures[0].context.field, 'data.tpm_ak');
    r = await post(body({ quote, ima_measurement_list: '10 zz ima-ng\n' }));
    assert.equal(r.statusCode, 200);
    assert.equal(r.json().results.valid, false);
    assert.equal(r.json().results.failures[0].context.field, 'data.ima_measurement_list');
    r = await post(body({ quote, runtime_policy: '{"digests":' }));
    assert.equal(r.json().results.failures[0].context.field, 'data.runtime_policy');
    r = await post(body({ quote, hash_alg: 'md5' }));
    assert.equal(r.json().results.failures[0].type, 'quote_validation.invalid_hash_alg');
    r = await post(body({ quote, hash_alg: 'sha1' }));
    assert.equal(r.json().results.failures[0].context.reason, 'hash-alg-mismatch');
    // an mb_policy that is not an mb_refstate (no scrtm_and_bios), and one without mb_log: invalid
    r = await post(body({ quote, mb_policy: '{"has_secureboot": true}' }));
    assert.equal(r.json().results.valid, false);
    assert.equal(r.json().results.failures.at(-1).type, 'measured_boot.boot-reference-unreadable');
    assert.equal(r.json().results.failures.at(-1).context.field, 'data.mb_policy');
    r = await post(body({ quote }), 'v3.0');
    assert.notEqual(r.statusCode, 200);
    assert.ok(r.statusCode < 500);
  });
});

describe('recorded bodies, with Keylime 7.14’s own answers (fixtures/keylime-evidence)', () => {
  const dir = join(import.meta.dirname, 'fixtures/keylime-evidence');
  const keylime = JSON.parse(readFileSync(join(dir, 'keylime-7.14-verdicts.json'), 'utf8')) as {
    keylime: Record<string, { valid: boolean }>;
  };
  let app: App;
  before(async () => {
    app = await buildApp({ database: await openDatabase({ kind: 'pglite' }) });
  });
  after(async () => app?.close());
  const ours = async (name: string) => {
    const r = await app.inject({
      method: 'POST',
      url: '/v2.6/verify/evidence',
      headers: { 'content-type': 'application/json' },
      payload: readFileSync(join(dir, `${name}.json`), 'utf8'),
    });
    assert.equal(r.statusCode, 200, r.body);
    return r.json().results as { valid: boolean; failures: { type: string }[] };
  };
  test('valid evidence: both valid', async () => {
    assert.equal(keylime.keylime.valid!.valid, true);
    assert.equal((await ours('valid')).valid, true);
  });
  test('PCR 10 not quoted: Keylime valid, imakit invalid', async () => {
    assert.equal(keylime.keylime['no-pcr10']!.valid, true);
    const r = await ours('no-pcr10');
    assert.equal(r.valid, false);
    assert.equal(r.failures[0]!.type, 'ima.pcr_not_quoted');
  });
  test('PCR 16 relabelled as PCR 10 in the unsigned blob: Keylime valid, imakit invalid', async () => {
    assert.equal(keylime.keylime.relabelled!.valid, true);
    const r = await ours('relabelled');
    assert.equal(r.valid, false);
    assert.equal(r.failures[0]!.type, 'quote_validation.quote_validation');
  });
});

describe('mb_policy: a Keylime mb_refstate evaluated against mb_log (a shim/grub boot replayed into swtpm)', () => {
  // the synthetic shim → grub → kernel log Keylime 7.14 accepts with this refstate (its verdicts
  // are recorded in imakit's test/vectors/keylime/mb-refstate-verdicts.json)
  const { log: LOG, refstate: REFSTATE } = grubBoot();
  const EVENTS = parseEventLog(LOG).events;
  const refstate = (scrtm?: string) => {
    const rs = JSON.parse(REFSTATE) as { scrtm_and_bios: { scrtm: { sha256: string } }[] };
    if (scrtm !== undefined) rs.scrtm_and_bios[0]!.scrtm.sha256 = scrtm;
    return JSON.stringify(rs);
  };
  let m: Machine;
  let ak: { handle: number; publicBytes: Uint8Array };
  const NONCE = 'mbPolicyNonce0123456';

  before(async () => {
    m = await Machine.start();
    ak = await m.newAk();
    for (const e of EVENTS)
      if (e.type !== 0x3)
        await m.client.pcrExtend(e.pcr, [
          { hashAlg: 0x0004, digest: e.digests.get('sha1')! },
          { hashAlg: TPM_SHA256, digest: e.digests.get('sha256')! },
        ]);
  });
  after(async () => {
    await m?.stop();
  });

  const check = async (data: { mb_policy?: string; mb_log?: string }) =>
    verifyKeylimeEvidence({
      nonce: NONCE,
      hash_alg: 'sha256',
      tpm_ek: b64(m.ek.publicBytes),
      tpm_ak: b64(ak.publicBytes),
      quote: await m.keylimeQuote(ak.handle, NONCE, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
      ...data,
    });

  test('the refstate of this boot: valid; another S-CRTM: invalid naming event #1', async () => {
    let r = await check({ mb_policy: refstate(), mb_log: b64(LOG) });
    assert.equal(r.valid, true, JSON.stringify(r.failures));
    r = await check({ mb_policy: refstate(`0x${'ab'.repeat(32)}`), mb_log: b64(LOG) });
    assert.equal(r.valid, false);
    const f = r.failures[0]!;
    assert.equal(f.type, 'measured_boot.boot-refstate-mismatch');
    assert.equal(f.context.entry, 1);
    assert.equal((f.context.actual as { type: string }).type, 'EV_S_CRTM_VERSION');
  });

  test('an mb_policy without mb_log is invalid, saying to send the log', async () => {
    const r = await check({ mb_policy: refstate() });
    assert.equal(r.valid, false);
    assert.match(String(r.failures[0]!.context.fix), /send the TCG event log/);
  });
});
