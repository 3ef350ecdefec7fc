/**
 * `imakit quote verify` in process (main(argv, memoryIo())) on quotes from swtpm + tpm2_quote:
 * exit 0 valid, 1 not valid (its reason code in --json), 2 bad input.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../../src/cli/main.ts';
import { memoryIo } from '../../../src/cli/io.ts';
import { makeQuoteWorld, type QuoteWorld } from '../core/tpm/quote-fixtures.ts';

let w: QuoteWorld;
before(async () => {
  w = await makeQuoteWorld();
});
after(() => w?.tpm.stop());

async function imakit(args: string[]) {
  const io = memoryIo();
  const status = await main(args, io);
  return { status, out: io.out(), err: io.err() };
}
const base = (q: QuoteWorld['qRsa'], ak: string, pcrs: string): string[] => [
  'quote',
  'verify',
  '--attest',
  q.msg,
  '--signature',
  q.sig,
  '--ak',
  ak,
  '--pcrs',
  pcrs,
];

test('valid quotes exit 0 (TPM2B_PUBLIC, PEM; text, YAML and serialized PCR files)', async () => {
  for (const [q, ak] of [
    [w.qRsa, w.rsa],
    [w.qPss, w.pss],
    [w.qEcc, w.ecc],
  ] as const)
    for (const akFile of [ak.pub, ak.pem])
      for (const pcrs of [q.pcrsTxt, q.yaml, q.pcrsBin]) {
        const r = await imakit([...base(q, akFile, pcrs), '--nonce', q.nonce, '--require', 'sha256:0-7,10']);
        assert.equal(r.status, 0, r.out + r.err);
        assert.match(r.out, /^PASS quote/);
      }
  const nf = join(w.tpm.dir, 'nonce.bin');
  writeFileSync(nf, Buffer.from(w.qRsa.nonce, 'hex'));
  const j = await imakit([...base(w.qRsa, w.rsa.pub, w.qRsa.pcrsTxt), '--nonce-file', nf, '--json']);
  assert.equal(j.status, 0, j.err);
  const v = JSON.parse(j.out) as { status: string; verifiedPcrs: Record<string, Record<string, string>> };
  assert.equal(v.status, 'pass');
  assert.deepEqual(Object.keys(v.verifiedPcrs.sha256!), ['0', '1', '2', '3', '4', '5', '6', '7', '10']);
});

test('invalid quotes exit 1 with the reason code', async () => {
  const wrong = await imakit([...base(w.qRsa, w.rsa.pub, w.qRsa.pcrsTxt), '--nonce', '00', '--json']);
  assert.equal(wrong.status, 1);
  assert.equal((JSON.parse(wrong.out) as { code: string }).code, 'nonce-mismatch');
  const other = await imakit([...base(w.qRsa, w.rsa2.pub, w.qRsa.pcrsTxt), '--nonce', w.qRsa.nonce]);
  assert.equal(other.status, 1);
  assert.match(other.out, /FAIL signature-invalid/);
  const req = await imakit([
    ...base(w.qRsa, w.rsa.pub, w.qRsa.pcrsTxt),
    '--nonce',
    w.qRsa.nonce,
    '--require',
    'sha256:16',
  ]);
  assert.equal(req.status, 1);
  assert.match(req.out, /FAIL required-pcr-not-quoted/);
  const back = await imakit([
    ...base(w.qRsa, w.rsa.pub, w.qRsa.pcrsTxt),
    '--nonce',
    w.qRsa.nonce,
    '--previous',
    w.qRsa.msg,
    '--json',
  ]);
  assert.equal(back.status, 1);
  assert.equal((JSON.parse(back.out) as { code: string }).code, 'clock-repeated');
});

test('bad input exits 2', async () => {
  const bad = join(w.tpm.dir, 'bad.pcrs');
  writeFileSync(bad, 'sha256:10 zz\n');
  assert.equal((await imakit([...base(w.qRsa, w.rsa.pub, bad), '--nonce', w.qRsa.nonce])).status, 2);
  assert.equal(
    (await imakit([...base(w.qRsa, w.qRsa.msg, w.qRsa.pcrsTxt), '--nonce', w.qRsa.nonce])).status,
    2,
  );
  assert.equal((await imakit([...base(w.qRsa, w.rsa.pub, w.qRsa.pcrsTxt), '--nonce', 'xyz'])).status, 2);
  assert.equal((await imakit([...base(w.qRsa, w.rsa.pub, w.qRsa.pcrsTxt)])).status, 2);
  const r = await imakit([
    ...base(w.qRsa, w.rsa.pub, w.qRsa.pcrsTxt),
    '--nonce',
    w.qRsa.nonce,
    '--require',
    'sha256:99',
  ]);
  assert.equal(r.status, 2);
});
