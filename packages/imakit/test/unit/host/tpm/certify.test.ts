/**
 * TpmClient.certify against swtpm: the TPMS_ATTEST it returns is parsed by the core codec (an
 * ATTEST_CERTIFY naming the certified key, over our nonce, round-tripping byte for byte), its
 * signature verifies with openssl over the attest bytes, and the quote verifier refuses it as a
 * quote (`not-a-quote`), the check tpm2_checkquote 5.4 lacks (tpm.md gotcha 5).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TpmClient } from '../../../../src/host/tpm/client.ts';
import { decodeTpmsAttest, encodeTpmsAttest } from '../../../../src/core/tpm/attest.ts';
import { decodeTpmtSignature } from '../../../../src/core/tpm/signature.ts';
import { tpmPublicToPem } from '../../../../src/core/tpm/public.ts';
import { TPM_ALG, TPM_GENERATED_VALUE, TPM_ST } from '../../../../src/core/tpm/constants.ts';
import { prepareQuoteAk, verifyQuote } from '../../../../src/core/tpm/quote-verify.ts';
import { fromHex, toHex } from '../../../../src/core/bytes/bytes.ts';
import { startTestTpm } from '../../tpm-helpers.ts';

test('certify: parsed by the core codec, signature verified by openssl, refused as a quote', async () => {
  const t = await startTestTpm();
  const c = await TpmClient.open(t.selector);
  try {
    const ek = await c.createEk('rsa');
    const ak = await c.createAk(ek, 'rsassa');
    const other = await c.createAk(ek, 'ecdsa');
    const nonce = fromHex('5eed0123456789abcdef');
    const r = await c.certify(other.key.handle, ak.key.handle, nonce);

    const a = decodeTpmsAttest(r.attest);
    assert.equal(a.magic, TPM_GENERATED_VALUE);
    assert.equal(a.type, TPM_ST.ATTEST_CERTIFY);
    assert.equal(toHex(a.extraData), toHex(nonce));
    assert.equal(a.attested.kind, 'certify');
    if (a.attested.kind === 'certify') assert.equal(toHex(a.attested.name), toHex(other.key.name));
    assert.equal(toHex(encodeTpmsAttest(a)), toHex(r.attest));

    // the signature is the AK's over SHA-256(attest): openssl is the oracle
    const sig = decodeTpmtSignature(r.signature);
    assert.equal(sig.sigAlg, TPM_ALG.RSASSA);
    if (sig.sigAlg !== TPM_ALG.RSASSA) return;
    writeFileSync(join(t.dir, 'ak.pem'), tpmPublicToPem(ak.key.public));
    writeFileSync(join(t.dir, 'attest'), r.attest);
    writeFileSync(join(t.dir, 'sig'), sig.sig);
    const ov = spawnSync('openssl', ['dgst', '-sha256', '-verify', 'ak.pem', '-signature', 'sig', 'attest'], {
      cwd: t.dir,
      encoding: 'utf8',
    });
    assert.equal(ov.status, 0, ov.stderr);
    assert.match(ov.stdout, /Verified OK/);

    // a correctly signed certify is not a quote
    const v = verifyQuote(prepareQuoteAk(ak.key.public), {
      attest: r.attest,
      signature: r.signature,
      nonce,
      pcrs: new Map(),
    });
    assert.equal(v.status, 'fail');
    assert.equal(v.code, 'not-a-quote');
    assert.equal(v.established.signature, true); // signed by the AK, yet refused
    assert.equal(v.verifiedPcrs.size, 0);
  } finally {
    await c.close();
    t.stop();
  }
});
