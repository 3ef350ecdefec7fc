/**
 * Quote verification against real quotes: swtpm + tpm2-tools make them, imakit verifies; openssl
 * verifies the same signatures with the AK PEM; `tpm2_print -t TPMS_ATTEST` and `tpm2_readpublic`
 * are the parsing oracles. The negative corpus: every flipped bit in attest, signature and PCR
 * values, a wrong nonce, another AK, a tpm2_certify attestation, a missing required PCR, clock and
 * counters going backwards, an unrestricted signing key: each with its own reason code.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fromHex, toHex } from '../../../../src/core/bytes/bytes.ts';
import { decodeTpmsAttest, encodeTpmsAttest } from '../../../../src/core/tpm/attest.ts';
import { TPM_ALG, TPMA_OBJECT } from '../../../../src/core/tpm/constants.ts';
import { parsePcrSelectionText } from '../../../../src/core/tpm/pcr-selection.ts';
import {
  decodeTpm2bPublic,
  decodeTpmtPublic,
  encodeTpm2bPublic,
  encodeTpmtPublic,
  tpmPublicName,
  tpmPublicToPem,
} from '../../../../src/core/tpm/public.ts';
import {
  loadQuoteAk,
  prepareQuoteAk,
  verifyQuote,
  type QuoteAk,
  type QuoteVerifyInput,
} from '../../../../src/core/tpm/quote-verify.ts';
import { decodeTpmtSignature, encodeTpmtSignature } from '../../../../src/core/tpm/signature.ts';
import { parseQuotePcrs } from '../../../../src/core/tcg/quote-pcrs.ts';
import { run } from '../../../helpers.ts';
import {
  type AkFiles,
  type QuoteFiles,
  type QuoteWorld,
  makeQuote,
  makeQuoteWorld,
  read,
} from './quote-fixtures.ts';

let w: QuoteWorld;
before(async () => {
  w = await makeQuoteWorld();
});
after(() => w?.tpm.stop());

const akOf = (a: AkFiles): QuoteAk => prepareQuoteAk(decodeTpm2bPublic(read(a.pub)));
function input(q: QuoteFiles, over: Partial<QuoteVerifyInput> = {}): QuoteVerifyInput {
  return {
    attest: read(q.msg),
    signature: read(q.sig),
    nonce: fromHex(q.nonce),
    pcrs: parseQuotePcrs(read(q.pcrsTxt)),
    ...over,
  };
}

/** DER ECDSA-Sig-Value from r, s (for openssl dgst -verify). */
function derSig(r: Uint8Array, s: Uint8Array): Uint8Array {
  const int = (x: Uint8Array): number[] => {
    let i = 0;
    while (i < x.length - 1 && x[i] === 0) i++;
    const v = [...x.subarray(i)];
    if (v[0]! & 0x80) v.unshift(0);
    return [0x02, v.length, ...v];
  };
  const body = [...int(r), ...int(s)];
  return new Uint8Array([0x30, body.length, ...body]);
}

describe('quotes from tpm2_quote verify', () => {
  for (const [label, ak, q] of [
    ['RSASSA', 'rsa', 'qRsa'],
    ['RSAPSS', 'pss', 'qPss'],
    ['ECDSA P-256', 'ecc', 'qEcc'],
  ] as const) {
    test(`${label}: pass with TPM2B_PUBLIC, TPMT_PUBLIC and PEM AKs, every PCR file form`, () => {
      const a = w[ak];
      const qf = w[q];
      const require = parsePcrSelectionText('sha256:0-7,10+sha1:10');
      for (const akBytes of [read(a.pub), read(a.tpmt), read(a.pem)]) {
        for (const pcrFile of [qf.pcrsTxt, qf.pcrsBin, qf.yaml]) {
          const v = verifyQuote(
            loadQuoteAk(akBytes),
            input(qf, { pcrs: parseQuotePcrs(read(pcrFile)), require }),
          );
          assert.equal(v.status, 'pass', JSON.stringify(v.failures));
          assert.equal(v.code, null);
          assert.equal(v.established.signature && v.established.pcrDigest && v.established.required, true);
          assert.equal([...v.verifiedPcrs.get('sha256')!.keys()].join(','), '0,1,2,3,4,5,6,7,10');
          assert.equal([...v.verifiedPcrs.get('sha1')!.keys()].join(','), '10');
        }
      }
      const pem = verifyQuote(loadQuoteAk(read(a.pem)), input(qf));
      assert.ok(pem.notEstablished.some((n) => n.includes('restricted signing key')));
    });
  }

  test('RSAPSS: the salt length libtpms used (hash length, tpm.md gotcha 4) is reported', () => {
    const v = verifyQuote(akOf(w.pss), input(w.qPss));
    assert.equal(v.signature?.sigAlg, 'RSAPSS');
    assert.equal(v.signature?.pssSaltLength, 32);
  });

  test('openssl verifies the same signatures with the AK PEM', () => {
    for (const [ak, q, opts] of [
      ['rsa', 'qRsa', []],
      ['pss', 'qPss', ['-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:auto']],
      ['ecc', 'qEcc', []],
    ] as const) {
      const sig = decodeTpmtSignature(read(w[q].sig));
      const raw = 'sig' in sig ? sig.sig : 'r' in sig ? derSig(sig.r, sig.s) : new Uint8Array();
      const sigFile = join(w.tpm.dir, `${q}.raw`);
      writeFileSync(sigFile, raw);
      // and our PEM of the TPMT_PUBLIC is the key tpm2_readpublic -f pem wrote
      const ourPem = join(w.tpm.dir, `${ak}.our.pem`);
      writeFileSync(ourPem, tpmPublicToPem(decodeTpm2bPublic(read(w[ak].pub))));
      for (const pem of [w[ak].pem, ourPem]) {
        const r = run('openssl', [
          'dgst',
          '-sha256',
          ...opts,
          '-verify',
          pem,
          '-signature',
          sigFile,
          w[q].msg,
        ]);
        assert.equal(r.status, 0, `${q}: ${r.stdout}${r.stderr}`);
      }
    }
  });

  test('parsed TPMS_ATTEST equals tpm2_print -t TPMS_ATTEST; re-encodes byte for byte', () => {
    for (const q of [w.qRsa, w.qPss, w.qEcc]) {
      const bytes = read(q.msg);
      const a = decodeTpmsAttest(bytes);
      assert.deepEqual(encodeTpmsAttest(a), bytes);
      const y = run('tpm2_print', ['-t', 'TPMS_ATTEST', q.msg]).stdout;
      const field = (k: string): string => new RegExp(`^\\s*${k}: (\\S+)`, 'm').exec(y)![1]!;
      assert.equal(field('magic'), a.magic.toString(16));
      assert.equal(field('type'), a.type.toString(16));
      assert.equal(field('qualifiedSigner'), toHex(a.qualifiedSigner));
      assert.equal(field('extraData'), toHex(a.extraData));
      assert.equal(field('clock'), a.clockInfo.clock.toString());
      assert.equal(field('resetCount'), String(a.clockInfo.resetCount));
      assert.equal(field('restartCount'), String(a.clockInfo.restartCount));
      assert.equal(field('safe'), a.clockInfo.safe ? '1' : '0');
      // tpm2_print shows firmwareVersion byte-swapped (tpm.md gotcha 11)
      const fw = Buffer.alloc(8);
      fw.writeBigUInt64BE(a.firmwareVersion);
      assert.equal(field('firmwareVersion'), fw.readBigUInt64LE().toString(16));
      assert.equal(a.attested.kind, 'quote');
      if (a.attested.kind !== 'quote') return;
      assert.equal(field('pcrDigest'), toHex(a.attested.pcrDigest));
      assert.equal(field('count'), String(a.attested.pcrSelect.length));
      const hashes = [...y.matchAll(/hash: (\d+)/g)].map((m) => Number(m[1]));
      const sels = [...y.matchAll(/pcrSelect: ([0-9a-f]+)$/gm)].map((m) => m[1]);
      assert.deepEqual(
        hashes,
        a.attested.pcrSelect.map((b) => b.hashAlg),
      );
      assert.deepEqual(
        sels,
        a.attested.pcrSelect.map((b) => {
          const bits = new Uint8Array(b.sizeofSelect);
          for (const p of b.pcrs) bits[p >> 3]! |= 1 << (p & 7);
          return toHex(bits);
        }),
      );
    }
  });

  test("TPMT_PUBLIC and TPM2B_PUBLIC parse, re-encode exactly, and the name equals tpm2_readpublic's", () => {
    for (const a of [w.rsa, w.pss, w.ecc]) {
      const tpmt = read(a.tpmt);
      const p = decodeTpmtPublic(tpmt);
      assert.deepEqual(encodeTpmtPublic(p), tpmt);
      const p2 = decodeTpm2bPublic(read(a.pub));
      assert.deepEqual(encodeTpm2bPublic(p2), read(a.pub));
      assert.equal(toHex(tpmPublicName(p)), a.name);
      assert.equal(p.objectAttributes, 0x00050072);
      assert.equal((p.objectAttributes & TPMA_OBJECT.restricted) !== 0, true);
      // the PEM export is the same key tpm2-tools exported
      const ours = createPublicKey(tpmPublicToPem(p)).export({ type: 'spki', format: 'der' });
      const theirs = createPublicKey(Buffer.from(read(a.pem)).toString()).export({
        type: 'spki',
        format: 'der',
      });
      assert.deepEqual(ours, theirs);
    }
    const ecc = decodeTpmtPublic(read(w.ecc.tpmt));
    assert.equal(ecc.type === 'ecc' && ecc.scheme.scheme, TPM_ALG.ECDSA);
  });
});

describe('negative corpus: each failure has its own reason', () => {
  const flips = (b: Uint8Array, fn: (x: Uint8Array, bit: number) => void): void => {
    for (let i = 0; i < b.length * 8; i++) {
      const x = b.slice();
      x[i >> 3]! ^= 1 << (i & 7);
      fn(x, i);
    }
  };

  test('every flipped bit of the attest fails (signature-invalid, or attest-malformed first)', () => {
    for (const [ak, q] of [
      ['rsa', 'qRsa'],
      ['ecc', 'qEcc'],
    ] as const) {
      const k = akOf(w[ak]);
      flips(read(w[q].msg), (x, bit) => {
        const v = verifyQuote(k, input(w[q], { attest: x }));
        assert.equal(v.status, 'fail', `bit ${bit}`);
        assert.ok(
          v.failures.some((f) => f.code === 'signature-invalid'),
          `bit ${bit}: ${JSON.stringify(v.failures)}`,
        );
        assert.equal(v.verifiedPcrs.size, 0);
      });
    }
  });

  test('every flipped bit of the signature fails', () => {
    for (const [ak, q] of [
      ['rsa', 'qRsa'],
      ['pss', 'qPss'],
      ['ecc', 'qEcc'],
    ] as const) {
      const k = akOf(w[ak]);
      flips(read(w[q].sig), (x, bit) => {
        const v = verifyQuote(k, input(w[q], { signature: x }));
        assert.equal(v.status, 'fail', `${q} bit ${bit}`);
        const codes = v.failures.map((f) => f.code);
        assert.ok(
          codes.every((c) =>
            [
              'signature-invalid',
              'signature-malformed',
              'signature-scheme-mismatch',
              'signature-unsupported',
            ].includes(c),
          ),
          `${q} bit ${bit}: ${codes.join()}`,
        );
      });
    }
  });

  test('every flipped bit of every PCR value fails with pcr-digest-mismatch', () => {
    const k = akOf(w.rsa);
    const base = parseQuotePcrs(read(w.qRsa.pcrsTxt));
    let n = 0;
    for (const [bank, vals] of base)
      for (const [idx, val] of vals)
        flips(val, (x, bit) => {
          const pcrs = new Map([...base].map(([b, m]) => [b, new Map(m)]));
          pcrs.get(bank)!.set(idx, x);
          const v = verifyQuote(k, input(w.qRsa, { pcrs }));
          assert.deepEqual(
            v.failures.map((f) => f.code),
            ['pcr-digest-mismatch'],
            `${bank}:${idx} bit ${bit}`,
          );
          assert.equal(v.verifiedPcrs.size, 0);
          n++;
        });
    assert.equal(n, 9 * 256 + 160);
  });

  test('wrong nonce: nonce-mismatch (no decoded or alternative form)', () => {
    const k = akOf(w.rsa);
    for (const nonce of ['11223344556678', '1122334455667700', '', '112233445566']) {
      const v = verifyQuote(k, input(w.qRsa, { nonce: fromHex(nonce) }));
      assert.deepEqual(
        v.failures.map((f) => f.code),
        ['nonce-mismatch'],
      );
    }
    // the nonce as text (what a base64-decoding verifier might accept) is not the nonce
    const v = verifyQuote(k, input(w.qRsa, { nonce: new TextEncoder().encode('11223344556677') }));
    assert.equal(v.code, 'nonce-mismatch');
  });

  test('a quote from another AK: signature-invalid (same scheme) or signature-scheme-mismatch', () => {
    const v = verifyQuote(akOf(w.rsa2), input(w.qRsa));
    assert.deepEqual(
      v.failures.map((f) => f.code),
      ['signature-invalid'],
    );
    assert.equal(verifyQuote(akOf(w.ecc), input(w.qRsa)).code, 'signature-scheme-mismatch');
    assert.equal(verifyQuote(akOf(w.pss), input(w.qRsa)).code, 'signature-scheme-mismatch');
    // a PEM AK carries no scheme: the RSA key of another AK just fails to verify
    assert.equal(verifyQuote(loadQuoteAk(read(w.rsa2.pem)), input(w.qRsa)).code, 'signature-invalid');
  });

  test('a signed tpm2_certify attestation is refused as not-a-quote (tpm2_checkquote 5.4 accepts it)', () => {
    const d = w.tpm.dir;
    w.tpm.tool('tpm2_certify', [
      '-c',
      w.rsa2.handle,
      '-C',
      w.rsa.handle,
      '-g',
      'sha256',
      '-o',
      join(d, 'cert.attest'),
      '-s',
      join(d, 'cert.sig'),
    ]);
    w.tpm.tool('tpm2_flushcontext', ['-t']);
    const attest = read(join(d, 'cert.attest'));
    const a = decodeTpmsAttest(attest);
    assert.equal(a.attested.kind, 'certify');
    assert.deepEqual(encodeTpmsAttest(a), attest);
    const v = verifyQuote(akOf(w.rsa), {
      attest,
      signature: read(join(d, 'cert.sig')),
      nonce: fromHex('00ff55aa'), // tpm2_certify 5.4 hard-codes this qualifyingData (gotcha 5)
      pcrs: new Map(),
    });
    assert.deepEqual(
      v.failures.map((f) => f.code),
      ['not-a-quote'],
    );
    assert.equal(v.established.signature, true);
    const cq = run('tpm2_checkquote', [
      '-u',
      w.rsa.pub,
      '-m',
      join(d, 'cert.attest'),
      '-s',
      join(d, 'cert.sig'),
      '-q',
      '00ff55aa',
    ]);
    assert.equal(
      cq.status,
      0,
      'tpm2_checkquote 5.4 accepts the certify structure (the bug we guard against)',
    );
  });

  test('a selection that omits a required PCR: required-pcr-not-quoted; extra supplied values are not covered', () => {
    const k = akOf(w.rsa);
    const v = verifyQuote(k, input(w.qRsa, { require: parsePcrSelectionText('sha256:0-7,10,16') }));
    assert.deepEqual(
      v.failures.map((f) => f.code),
      ['required-pcr-not-quoted'],
    );
    assert.match(v.failures[0]!.detail, /sha256:16/);
    // a quote without PCR 10 fails a verifier that requires it (Keylime skips its IMA check instead)
    const q9 = makeQuote(w.tpm, 'q-no10', w.rsa, 'abcd', { selection: 'sha256:0,1,2,3,4,5,6,7,8,9' });
    const v9 = verifyQuote(k, input(q9, { require: parsePcrSelectionText('sha256:10') }));
    assert.equal(v9.code, 'required-pcr-not-quoted');
    // a value for PCR 16 supplied beside a valid quote is reported as not covered, never verified
    const pcrs = new Map([...parseQuotePcrs(read(w.qRsa.pcrsTxt))].map(([b, m]) => [b, new Map(m)]));
    pcrs.get('sha256')!.set(16, new Uint8Array(32).fill(7));
    const extra = verifyQuote(k, input(w.qRsa, { pcrs }));
    assert.equal(extra.status, 'pass');
    assert.deepEqual(extra.notCovered, ['sha256:16']);
    assert.equal(extra.verifiedPcrs.get('sha256')!.has(16), false);
    // a quoted PCR with no supplied value
    const missing = new Map([...pcrs].map(([b, m]) => [b, new Map(m)]));
    missing.get('sha256')!.delete(3);
    assert.equal(verifyQuote(k, input(w.qRsa, { pcrs: missing })).code, 'pcr-value-missing');
  });

  test('clock and counters against the previous quote of the same AK', () => {
    const k = akOf(w.rsa);
    const q1 = makeQuote(w.tpm, 'c1', w.rsa, '01');
    const q2 = makeQuote(w.tpm, 'c2', w.rsa, '02');
    const ok = verifyQuote(k, input(q2, { previous: read(q1.msg) }));
    assert.equal(ok.status, 'pass', JSON.stringify(ok.failures));
    assert.equal(ok.established.clock, true);
    assert.equal(typeof ok.clockInfo?.safe, 'boolean');
    assert.equal(ok.firmwareVersion, decodeTpmsAttest(read(q2.msg)).firmwareVersion);
    // clock going backwards: the earlier quote presented as the later one
    const back = verifyQuote(k, input(q1, { previous: read(q2.msg) }));
    assert.deepEqual(
      back.failures.map((f) => f.code),
      ['clock-went-backwards'],
    );
    assert.equal(verifyQuote(k, input(q1, { previous: read(q1.msg) })).code, 'clock-repeated');
    // another AK's quote as previous
    assert.equal(verifyQuote(k, input(q2, { previous: read(w.qRsa2.msg) })).code, 'previous-other-signer');
    // a TPM Restart (Shutdown(STATE) + init + Startup(CLEAR)): restartCount goes up
    w.tpm.tool('tpm2_shutdown', []);
    w.tpm.powerCycle();
    const q3 = makeQuote(w.tpm, 'c3', w.rsa, '03');
    const a3 = decodeTpmsAttest(read(q3.msg));
    const a2 = decodeTpmsAttest(read(q2.msg));
    assert.equal(a3.clockInfo.resetCount, a2.clockInfo.resetCount);
    assert.equal(a3.clockInfo.restartCount, a2.clockInfo.restartCount + 1);
    assert.equal(verifyQuote(k, input(q3, { previous: read(q2.msg) })).status, 'pass');
    assert.deepEqual(
      verifyQuote(k, input(q2, { previous: read(q3.msg) })).failures.map((f) => f.code),
      ['restart-count-decreased'],
    );
    // a TPM Reset (Shutdown(CLEAR) + init + Startup(CLEAR)): resetCount goes up
    w.tpm.tool('tpm2_shutdown', ['-c']);
    w.tpm.powerCycle();
    const q4 = makeQuote(w.tpm, 'c4', w.rsa, '04');
    assert.equal(decodeTpmsAttest(read(q4.msg)).clockInfo.resetCount, a3.clockInfo.resetCount + 1);
    assert.equal(verifyQuote(k, input(q4, { previous: read(q3.msg) })).status, 'pass');
    assert.deepEqual(
      verifyQuote(k, input(q3, { previous: read(q4.msg) })).failures.map((f) => f.code),
      ['reset-count-decreased'],
    );
    // obfuscated counters: only the clock is compared
    assert.equal(
      verifyQuote(k, input(q3, { previous: read(q4.msg), countersObfuscated: true })).status,
      'pass',
    );
  });

  test('an AK that is not a restricted signing key is refused with the reason', () => {
    const d = w.tpm.dir;
    w.tpm.tool('tpm2_createprimary', [
      '-C',
      'o',
      '-G',
      'rsa2048:rsassa-sha256:null',
      '-a',
      'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign',
      '-c',
      join(d, 'unr.ctx'),
    ]);
    w.tpm.tool('tpm2_flushcontext', ['-t']);
    w.tpm.tool('tpm2_evictcontrol', ['-c', join(d, 'unr.ctx'), '0x81000020']);
    w.tpm.tool('tpm2_flushcontext', ['-t']);
    w.tpm.tool('tpm2_readpublic', ['-c', '0x81000020', '-o', join(d, 'unr.pub')]);
    const unr: AkFiles = { ...w.rsa, handle: '0x81000020', pub: join(d, 'unr.pub') };
    const q = makeQuote(w.tpm, 'q-unr', unr, '55');
    const v = verifyQuote(akOf(unr), input(q));
    assert.deepEqual(
      v.failures.map((f) => f.code),
      ['ak-not-restricted-signing'],
    );
    assert.equal(v.established.signature, true);
  });

  test('a signature re-encoded from its parts is the same bytes (round trip of real signatures)', () => {
    for (const q of [w.qRsa, w.qPss, w.qEcc])
      assert.deepEqual(encodeTpmtSignature(decodeTpmtSignature(read(q.sig))), read(q.sig));
  });
});
