/**
 * Keylime agent answers (test/fixtures/keylime-agent, rust-keylime's shapes; ORIGIN.md) read
 * strictly by keylime/agent-answer.ts: the recorded answers pass through the quote and IMA steps;
 * every field missing, of the wrong type, unknown, or inconsistent with the request is "evidence
 * malformed" naming that field; a PCR blob relabelling PCR 16 as PCR 10 is refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeTpmsAttest, encodeBinaryList, parseBinaryList, toHex } from 'imakit/core';
import { readKeylimeAnswer, keylimeRequest, keylimeRequestPath } from '../src/keylime/agent-answer.ts';
import { decodePcrBlob, parseKeylimeQuote } from '../src/keylime/quote-format.ts';
import { quoteStep } from '../src/pipeline/quote.ts';
import { imaStep } from '../src/pipeline/ima.ts';
import { EMPTY_STATE } from '../src/pipeline/state-store.ts';
import { keylimeDataPcrValue } from '../../imakit/src/core/tpm/keylime-quote.ts';

interface Recorded {
  request: string;
  nonce?: string;
  akPublic?: string;
  status: number;
  answer: { code: number; status: string; results: Record<string, unknown> };
}
const load = (name: string): Recorded =>
  JSON.parse(
    readFileSync(join(import.meta.dirname, 'fixtures/keylime-agent', `${name}.json`), 'utf8'),
  ) as Recorded;
const FULL = load('integrity-full');
const NEXT = load('integrity-next');
const KERNEL = join(import.meta.dirname, '../../imakit/test/fixtures/kernel/appraise-enforce');
const FIVE = parseBinaryList(new Uint8Array(readFileSync(join(KERNEL, 'binary_runtime_measurements')))).slice(
  0,
  5,
);
const ASCII5 = readFileSync(join(KERNEL, 'ascii_runtime_measurements'), 'utf8').split('\n').slice(0, 5);
const req = (r: Recorded, from = { entries: 0, bytes: 0 }) => keylimeRequest('sha256:10', r.nonce!, from);
const facts = (r: Recorded) => ({
  id: 'k',
  akPublic: new Uint8Array(Buffer.from(r.akPublic!, 'base64')),
  requirePcrs: 'sha256:10',
});
const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

test('the request: mask from the required PCRs, alphanumeric nonce, ima_ml_entry from the stored entry', () => {
  const r = keylimeRequest('sha256:0-7,10', 'abc123', { entries: 42, bytes: 9000 });
  assert.equal(r.mask, '0x4ff');
  assert.equal(r.bank, 'sha256');
  assert.equal(
    keylimeRequestPath(r),
    '/v2.1/quotes/integrity?nonce=abc123&mask=0x4ff&partial=1&ima_ml_entry=42',
  );
  assert.throws(() => keylimeRequest('sha256:0-7', 'n', { entries: 0, bytes: 0 }), RangeError);
});

test('integrity answer (partial=0, entry 0): quote verifies, PCR 16 binds the pubkey, the list replays', () => {
  const a = FULL.answer;
  assert.deepEqual(Object.keys(a.results), [
    'quote',
    'hash_alg',
    'enc_alg',
    'sign_alg',
    'pubkey',
    'ima_measurement_list',
    'ima_measurement_list_entry',
    'boottime',
  ]);
  assert.deepEqual(
    [a.code, a.status, a.results.hash_alg, a.results.enc_alg, a.results.sign_alg],
    [200, 'Success', 'sha256', 'rsa2048', 'rsassa'],
  );
  // the ascii list is the kernel's own ascii rendering of those entries
  assert.deepEqual((a.results.ima_measurement_list as string).split('\n').slice(0, 5), ASCII5);
  const r = readKeylimeAnswer(a, req(FULL));
  assert.ok(r.ok, JSON.stringify(!r.ok && r.failure));
  if (!r.ok) return;
  assert.equal(r.entry, 0);
  const q = quoteStep(facts(FULL), EMPTY_STATE, r.evidence);
  assert.equal(q.verdict.status, 'pass', q.verdict.detail);
  assert.equal(q.verdict.quoted, 'sha256:10,16');
  const pcr16 = q.verifiedPcrs.get('sha256')!.get(16)!;
  assert.equal(toHex(pcr16), toHex(keylimeDataPcrValue(a.results.pubkey as string, 0x000b)));
  const ima = imaStep(EMPTY_STATE, r.evidence.ima, q.verifiedPcrs, false);
  assert.equal(ima.verdict.status, 'pass', ima.verdict.detail);
  assert.deepEqual(ima.next, { entries: 5, bytes: encodeBinaryList(FIVE).length });
  // the blob is tpm2-tools' layout: 4 + 16×8 + 4 + one 532-byte TPML_DIGEST
  assert.equal(parseKeylimeQuote(a.results.quote as string).pcrBlob.length, 668);
});

test('integrity answer (partial=1, entry 5): no pubkey, no new entries, API 2.1 names rsa', () => {
  const a = NEXT.answer;
  assert.equal(a.results.pubkey, undefined);
  assert.equal(a.results.enc_alg, 'rsa');
  assert.equal(a.results.ima_measurement_list, '');
  const bytes = encodeBinaryList(FIVE).length;
  const r = readKeylimeAnswer(a, req(NEXT, { entries: 5, bytes }));
  assert.ok(r.ok);
  if (r.ok) {
    assert.equal(r.evidence.ima, undefined);
    assert.equal(r.entry, 5);
  }
});

test('identity answer: PCR 16 only, with the pubkey; errors and /version in the wrapper shape', () => {
  const id = load('identity').answer;
  assert.equal(typeof id.results.pubkey, 'string');
  const attest = decodeTpmsAttest(parseKeylimeQuote(id.results.quote as string).attest);
  assert.ok(attest.attested.kind === 'quote');
  if (attest.attested.kind === 'quote')
    assert.deepEqual(
      attest.attested.pcrSelect.map((s) => s.pcrs),
      [[16]],
    );
  for (const name of ['bad-nonce', 'bad-partial']) {
    const e = load(name);
    assert.equal(e.status, 400);
    assert.deepEqual(Object.keys(e.answer), ['code', 'status', 'results']);
    assert.equal(e.answer.code, 400);
    assert.deepEqual(e.answer.results, {});
  }
  const v = load('version').answer;
  assert.equal(v.results.supported_version, '2.6');
});

test('strict: each bad field is evidence-malformed naming it', () => {
  const base = FULL.answer;
  const cases: [string, (a: Record<string, unknown> & { results: Record<string, unknown> }) => unknown][] = [
    ['body', () => null],
    ['surprise', (a) => ({ ...a, surprise: 1 })],
    ['code', (a) => ({ ...a, code: 500 })],
    ['status', (a) => ({ ...a, status: 7 })],
    ['results', (a) => ({ ...a, results: [] })],
    ['results.quote', (a) => ({ ...a, results: { ...a.results, quote: undefined } })],
    ['results.hash_alg', (a) => ({ ...a, results: { ...a.results, hash_alg: 'sha1' } })],
    ['results.enc_alg', (a) => ({ ...a, results: { ...a.results, enc_alg: 5 } })],
    ['results.sign_alg', (a) => ({ ...a, results: { ...a.results, sign_alg: undefined } })],
    ['results.pubkey', (a) => ({ ...a, results: { ...a.results, pubkey: 1 } })],
    ['results.extra', (a) => ({ ...a, results: { ...a.results, extra: true } })],
    ['results.boottime', (a) => ({ ...a, results: { ...a.results, boottime: -1 } })],
    [
      'results.ima_measurement_list_entry',
      (a) => ({ ...a, results: { ...a.results, ima_measurement_list_entry: 3 } }),
    ],
    [
      'results.ima_measurement_list',
      (a) => ({ ...a, results: { ...a.results, ima_measurement_list: '10 00 ima-ng\n' } }),
    ],
    ['results.mb_measurement_list', (a) => ({ ...a, results: { ...a.results, mb_measurement_list: '***' } })],
    [
      'results.quote',
      (a) => ({ ...a, results: { ...a.results, quote: 'c' + (a.results.quote as string).slice(1) } }),
    ],
    [
      'results.quote[pcrs]',
      (a) => ({
        ...a,
        results: { ...a.results, quote: (a.results.quote as string).replace(/:[^:]*$/, ':AAAA') },
      }),
    ],
  ];
  for (const [field, mutate] of cases) {
    const body = JSON.parse(JSON.stringify(mutate(clone(base) as never)) ?? 'null') as unknown;
    const r = readKeylimeAnswer(body, req(FULL));
    assert.ok(!r.ok, field);
    if (!r.ok) {
      assert.equal(r.failure.code, 'evidence-malformed', field);
      assert.equal(r.failure.field, field, `${field}: ${r.failure.message}`);
    }
  }
});

test('a PCR blob relabelling PCR 16 as PCR 10 is refused; Keylime would number by the blob', () => {
  const id = load('identity');
  // the identity quote signed PCR 16 only; claim in the blob that its value is PCR 10
  const [att, sig, blobB64] = (id.answer.results.quote as string).slice(1).split(':') as [
    string,
    string,
    string,
  ];
  const blob = Buffer.from(blobB64, 'base64');
  blob[9] = 0; // PCR 16 off
  blob[8] = 0x04; // PCR 10 on
  assert.deepEqual(
    decodePcrBlob(new Uint8Array(blob)).selection[0]!.pcrs,
    [10],
    'the blob now claims PCR 10',
  );
  const body = clone(FULL.answer);
  body.results.quote = `r${att}:${sig}:${blob.toString('base64')}`;
  const r = readKeylimeAnswer(body, keylimeRequest('sha256:10', id.nonce!, { entries: 0, bytes: 0 }));
  assert.ok(!r.ok);
  if (!r.ok) {
    assert.equal(r.failure.field, 'results.quote[pcrs]');
    assert.match(r.failure.message, /claims sha256:10 but the quote signed sha256:16/);
  }
});
