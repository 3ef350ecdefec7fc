/**
 * TpmClient against swtpm, checked with tools we did not write: PCR values against tpm2_pcrread in
 * every bank, quotes against tpm2_checkquote and openssl, EK templates against the EKs swtpm_setup
 * persisted, EK certificates against tpm2_nvread and openssl verify, credentials made by
 * tpm2_makecredential, resetCount across a ctrl-port power cycle.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { TpmClient } from '../../../../src/host/tpm/client.ts';
import { parsePcrSelectionText } from '../../../../src/core/tpm/pcr-selection.ts';
import { decodeTpmsAttest } from '../../../../src/core/tpm/attest.ts';
import { decodeTpmtSignature } from '../../../../src/core/tpm/signature.ts';
import { tpmPublicToPem } from '../../../../src/core/tpm/public.ts';
import { TPM_ALG, TPM_PT } from '../../../../src/core/tpm/constants.ts';
import { EK_CERT_NV } from '../../../../src/core/tpm/commands/nv.ts';
import { decodeToolsCredential } from '../../../../src/core/tpm/commands/credential.ts';
import { TpmError } from '../../../../src/core/tpm/commands/frame.ts';
import { toHex } from '../../../../src/core/bytes/bytes.ts';
import { manufactureTpm, startTestTpm, type TestTpm, type TestTpmState } from '../../tpm-helpers.ts';

let shared: { dir: string; state: TestTpmState };
before(() => {
  const dir = mkdtempSync(join(tmpdir(), 'imakit-tpm-state-'));
  shared = { dir, state: manufactureTpm(dir) };
});
after(() => rmSync(shared.dir, { recursive: true, force: true }));

async function withTpm(fn: (t: TestTpm, c: TpmClient) => Promise<void>, nvChunk?: number): Promise<void> {
  const t = await startTestTpm({ fromState: shared.state });
  const c = await TpmClient.open(t.selector, nvChunk !== undefined ? { nvChunk } : {});
  try {
    await fn(t, c);
  } finally {
    await c.close();
    t.stop();
  }
}

/** `tpm2_pcrread` text → Map('sha256:10' → hex). */
function parsePcrread(text: string): Map<string, string> {
  const m = new Map<string, string>();
  let bank = '';
  for (const line of text.split('\n')) {
    const b = /^\s*(sha\d+):\s*$/.exec(line);
    if (b) bank = b[1]!;
    const v = /^\s*(\d+)\s*:\s*0x([0-9A-Fa-f]+)/.exec(line);
    if (v) m.set(`${bank}:${v[1]}`, v[2]!.toLowerCase());
  }
  return m;
}

/** DER ECDSA-Sig-Value from r, s (for openssl dgst -verify). */
function derSig(r: Uint8Array, s: Uint8Array): Buffer {
  const int = (x: Uint8Array): Buffer => {
    let i = 0;
    while (i < x.length - 1 && x[i] === 0) i++;
    let b = Buffer.from(x.subarray(i));
    if (b[0]! & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
    return Buffer.concat([Buffer.from([0x02, b.length]), b]);
  };
  const body = Buffer.concat([int(r), int(s)]);
  return Buffer.concat([Buffer.from([0x30, body.length]), body]);
}

test('Startup on a started TPM is success; GetCapability names the banks and manufacturer', async () => {
  await withTpm(async (_t, c) => {
    assert.equal(await c.startup(), false);
    const banks = (await c.pcrBanks()).filter((b) => b.pcrs.length > 0).map((b) => b.hashAlg);
    assert.deepEqual(banks, [TPM_ALG.SHA1, TPM_ALG.SHA256, TPM_ALG.SHA384]);
    const props = await c.properties(TPM_PT.FAMILY_INDICATOR);
    assert.equal(props.get(TPM_PT.MANUFACTURER), 0x49424d00); // 'IBM\0' (libtpms)
    const algs = (await c.algorithms()).map((a) => a.alg);
    for (const a of [TPM_ALG.RSA, TPM_ALG.ECC, TPM_ALG.SHA256, TPM_ALG.RSAPSS]) assert.ok(algs.includes(a));
    assert.equal((await c.getRandom(100)).length, 100);
  });
});

test('PCR_Read of all 72 PCRs in three banks equals tpm2_pcrread (looping past 8 per call)', async () => {
  await withTpm(async (t, c) => {
    t.tool('tpm2_pcrextend', [
      `10:sha1=${'11'.repeat(20)},sha256=${'22'.repeat(32)},sha384=${'33'.repeat(48)}`,
    ]);
    await c.pcrExtend(16, [{ hashAlg: TPM_ALG.SHA256, digest: new Uint8Array(32).fill(7) }]);
    const sel = parsePcrSelectionText('sha1:0-23+sha256:0-23+sha384:0-23');
    const ours = await c.pcrRead(sel);
    assert.equal(ours.values.length, 72);
    const theirs = parsePcrread(t.tool('tpm2_pcrread', ['sha1:all+sha256:all+sha384:all']));
    assert.equal(theirs.size, 72);
    const name = { [TPM_ALG.SHA1]: 'sha1', [TPM_ALG.SHA256]: 'sha256', [TPM_ALG.SHA384]: 'sha384' } as Record<
      number,
      string
    >;
    for (const v of ours.values) assert.equal(toHex(v.value), theirs.get(`${name[v.hashAlg]}:${v.pcr}`));
    assert.notEqual(theirs.get('sha256:16'), '00'.repeat(32));
  });
});

test('EK templates regenerate the EKs swtpm_setup persisted (RSA L-1 at 0x81010001, P-384 H-3 at 0x81010016)', async () => {
  await withTpm(async (_t, c) => {
    const rsa = await c.createEk('rsa');
    assert.equal(toHex(rsa.name), toHex((await c.readPublic(0x81010001)).name));
    const p384 = await c.createEk('ecc384');
    assert.equal(toHex(p384.name), toHex((await c.readPublic(0x81010016)).name));
  });
});

for (const kind of ['rsassa', 'ecdsa', 'rsapss'] as const) {
  test(`a ${kind} quote verifies with openssl on the AK PEM${kind === 'rsapss' ? '' : ' and with tpm2_checkquote'}`, async () => {
    await withTpm(async (t, c) => {
      const ek = await c.createEk('rsa');
      const ak = await c.createAk(ek, kind);
      t.tool('tpm2_pcrextend', [`10:sha256=${'ab'.repeat(32)}`]);
      const nonce = Buffer.from('5eed00aa5eed00aa', 'hex');
      const q = await c.quote(ak.key.handle, nonce, parsePcrSelectionText('sha256:0-10'));
      const attest = decodeTpmsAttest(q.attest);
      assert.equal(toHex(attest.extraData), nonce.toString('hex'));
      const d = t.dir;
      writeFileSync(join(d, 'ak.pem'), tpmPublicToPem(ak.key.public));
      writeFileSync(join(d, 'quote.attest'), q.attest);
      writeFileSync(join(d, 'quote.sig'), q.signature);
      const sig = decodeTpmtSignature(q.signature);
      const raw = 'sig' in sig ? Buffer.from(sig.sig) : 'r' in sig ? derSig(sig.r, sig.s) : Buffer.alloc(0);
      writeFileSync(join(d, 'sig.raw'), raw);
      const args = ['dgst', '-sha256', '-verify', join(d, 'ak.pem'), '-signature', join(d, 'sig.raw')];
      if (kind === 'rsapss') args.push('-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:auto');
      const ok = spawnSync('openssl', [...args, join(d, 'quote.attest')], { encoding: 'utf8' });
      assert.equal(ok.status, 0, ok.stderr + ok.stdout);
      // a flipped attest byte must not verify
      const bad = Buffer.from(q.attest);
      bad[bad.length - 1]! ^= 1;
      writeFileSync(join(d, 'bad.attest'), bad);
      assert.notEqual(spawnSync('openssl', [...args, join(d, 'bad.attest')]).status, 0);
      if (kind === 'rsapss') return; // tpm2_checkquote 5.4 rejects valid PSS quotes (tpm.md gotcha 4)
      t.tool('tpm2_pcrread', [
        '-F',
        'serialized',
        '-o',
        join(d, 'pcrs.bin'),
        'sha256:0,1,2,3,4,5,6,7,8,9,10',
      ]);
      t.tool('tpm2_checkquote', [
        '-u',
        join(d, 'ak.pem'),
        '-m',
        join(d, 'quote.attest'),
        '-s',
        join(d, 'quote.sig'),
        '-f',
        join(d, 'pcrs.bin'),
        '-g',
        'sha256',
        '-q',
        nonce.toString('hex'),
      ]);
    });
  });
}

test('EK certificates read back byte-identical to tpm2_nvread, in chunks, and chain to the local CA only', async () => {
  await withTpm(async (t, c) => {
    for (const index of [EK_CERT_NV.RSA_2048, EK_CERT_NV.ECC_P384_H3]) {
      const ours = await c.nvReadAll(index);
      const out = join(t.dir, `nv-${index.toString(16)}.der`);
      t.tool('tpm2_nvread', [`0x${index.toString(16)}`, '-C', 'o', '-o', out]);
      assert.deepEqual(Buffer.from(ours), readFileSync(out));
      assert.ok(ours.length > 100, 'several 100-byte NV_Read chunks');
      const pem = join(t.dir, 'ek.pem');
      writeFileSync(pem, ours);
      const conv = spawnSync('openssl', ['x509', '-inform', 'der', '-in', pem, '-out', `${pem}.pem`]);
      assert.equal(conv.status, 0);
      const v = spawnSync(
        'openssl',
        ['verify', '-CAfile', shared.state.rootCert, '-untrusted', shared.state.issuerCert, `${pem}.pem`],
        { encoding: 'utf8' },
      );
      assert.equal(v.status, 0, v.stderr + v.stdout);
    }
    // a certificate from another TPM's CA must not verify against this chain
    const other = mkdtempSync(join(tmpdir(), 'imakit-tpm-other-'));
    try {
      const o = manufactureTpm(other, ['sha256']);
      const v = spawnSync('openssl', [
        'verify',
        '-CAfile',
        o.rootCert,
        '-untrusted',
        o.issuerCert,
        join(t.dir, 'ek.pem.pem'),
      ]);
      assert.notEqual(v.status, 0);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  }, 100);
});

test('a credential made by tpm2_makecredential activates through the EK policy session; a wrong name fails', async () => {
  await withTpm(async (t, c) => {
    const ek = await c.createEk('rsa');
    const ak = await c.createAk(ek, 'ecdsa');
    const other = await c.createAk(ek, 'rsassa');
    const d = t.dir;
    writeFileSync(join(d, 'ek.pub'), ek.publicBytes);
    const secret = Buffer.from('the quick brown fox jumps over!!');
    writeFileSync(join(d, 'secret.bin'), secret);
    const make = (name: Uint8Array, out: string): Uint8Array => {
      t.tool('tpm2_makecredential', [
        '-T',
        'none',
        '-u',
        join(d, 'ek.pub'),
        '-s',
        join(d, 'secret.bin'),
        '-n',
        toHex(name),
        '-o',
        join(d, out),
      ]);
      return readFileSync(join(d, out));
    };
    const cred = decodeToolsCredential(make(ak.key.name, 'cred.out'));
    assert.deepEqual(Buffer.from(await c.activateCredential(ak.key.handle, ek, cred)), secret);
    const wrong = decodeToolsCredential(make(other.key.name, 'wrong.out'));
    await assert.rejects(c.activateCredential(ak.key.handle, ek, wrong), (e: unknown) => {
      assert.ok(e instanceof TpmError);
      assert.equal(e.code, 'E_TPM_RC');
      assert.equal(e.command, 'ActivateCredential');
      assert.equal(e.rc & 0xbf, 0x9f); // TPM_RC_INTEGRITY, parameter n
      return true;
    });
  });
});

test('resetCount increases across a power cycle through the ctrl port; nothing stays loaded', async () => {
  await withTpm(async (t, c) => {
    const quoteReset = async (): Promise<number> => {
      const ek = await c.createEk('ecc');
      const ak = await c.createAk(ek, 'ecdsa');
      const q = await c.quote(ak.key.handle, new Uint8Array(8), parsePcrSelectionText('sha256:0'));
      await c.flush(ak.key.handle);
      await c.flush(ek.handle);
      return decodeTpmsAttest(q.attest).clockInfo.resetCount;
    };
    const before = await quoteReset();
    await c.powerCycle();
    const afterCycle = await quoteReset();
    assert.equal(afterCycle, before + 1);
    assert.match(t.tool('tpm2_readclock', []), new RegExp(`reset_count: ${afterCycle}\\b`));
    assert.equal(t.tool('tpm2_getcap', ['handles-transient']).trim(), '');
  });
});

test('persisting an AK with EvictControl: usable by handle, evicted again', async () => {
  await withTpm(async (t, c) => {
    const ek = await c.createEk('rsa');
    const ak = await c.createAk(ek, 'rsassa');
    await c.persist(ak.key.handle, 0x81000123);
    const p = await c.persistentKey(0x81000123);
    assert.equal(toHex(p.name), toHex(ak.key.name));
    assert.match(t.tool('tpm2_getcap', ['handles-persistent']), /0x81000123/);
    const q = await c.quote(0x81000123, new Uint8Array(4), parsePcrSelectionText('sha256:10'));
    assert.equal(decodeTpmsAttest(q.attest).magic, 0xff544347);
    await c.evict(0x81000123);
    assert.doesNotMatch(t.tool('tpm2_getcap', ['handles-persistent']), /0x81000123/);
  });
});
