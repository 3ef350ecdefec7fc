/**
 * `imakit refs sign|verify`, `--format keylime --dsse-key`, and `log verify --refs-sig/--refs-key`
 * (issue 12): round trips per key type, evmctl checks imakit's detached signature (`ima_verify
 * --sigfile`), a flipped byte in the set fails with exit 1, an unsigned set is refused when a key is
 * given, a Keylime-made DSSE policy verifies and evaluates.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../../src/cli/main.ts';
import { memoryIo } from '../../../src/cli/io.ts';
import { tempDir, vectorPath } from '../../helpers.ts';
import { encode, imaNgData, nodeHash, oraclePcrs } from '../core/ima-list/build-list.ts';
import { renderPcrJson } from '../../../src/core/tcg/pcr-values.ts';
import { ReferenceSetBuilder } from '../../../src/core/refs/reference-set.ts';
import { encodeRefsBinary } from '../../../src/core/refs/refs-binary.ts';
import { writeKeylimePolicy } from '../../../src/core/refs/keylime-policy.ts';
import { pemDecode } from '../../../src/core/keys/x509.ts';

async function cli(...argv: string[]) {
  const io = memoryIo();
  const status = await main(argv, io);
  return { status, out: io.out(), err: io.err() };
}

const digest = new Uint8Array(32).fill(7);

function fixture(dir: string) {
  const b = new ReferenceSetBuilder({ hashAlgo: 'sha256' });
  b.addDigest('/usr/bin/ok', { algo: 'sha256', digest, provenance: { kind: 'rootfs' } });
  b.addBootAggregate({ algo: 'sha256', digest: new Uint8Array(32).fill(1), provenance: { kind: 'rootfs' } });
  const set = b.build();
  writeFileSync(join(dir, 'set.imr'), encodeRefsBinary(set));
  writeFileSync(join(dir, 'policy.json'), writeKeylimePolicy(set).text);
  const data = (p: string, d: Uint8Array) => imaNgData('sha256', d, p);
  const entries = [
    ['boot_aggregate', new Uint8Array(32).fill(1)],
    ['/usr/bin/ok', digest],
  ].map(([p, d], index) => {
    const templateData = data(p as string, d as Uint8Array);
    return {
      index,
      offset: 0,
      pcr: 10,
      digest: nodeHash('sha1', templateData),
      templateName: 'ima-ng',
      templateData,
    };
  });
  writeFileSync(join(dir, 'list.bin'), encode(entries));
  writeFileSync(join(dir, 'pcrs.json'), JSON.stringify(renderPcrJson(oraclePcrs(entries, ['sha256']))));
}

test('refs sign/verify: RSA, ECDSA, SM2 round trips; a flipped byte fails (exit 1); wrong key, unsigned set refused', async () => {
  const { dir, cleanup } = tempDir();
  try {
    fixture(dir);
    for (const [k, cert] of [
      ['rsa2048.key', 'rsa2048.cer'],
      ['p256.key', 'p256.cer'],
      ['sm2.key', 'sm2.cer'],
    ] as const) {
      const sig = join(dir, `set.${k}.sig`);
      const s = await cli(
        'refs',
        'sign',
        join(dir, 'set.imr'),
        '--key',
        vectorPath(k),
        '--cert',
        vectorPath(cert),
        '--out',
        sig,
        '--json',
      );
      assert.equal(s.status, 0, s.err);
      assert.equal(JSON.parse(s.out).algo, k.startsWith('sm2') ? 'sm3' : 'sha256');
      const v = await cli('refs', 'verify', join(dir, 'set.imr'), '--sig', sig, '--key', vectorPath(cert));
      assert.equal(v.status, 0, v.err);
      assert.match(v.out, /^PASS/);
      const other = k.startsWith('rsa') ? 'p256.cer' : 'rsa2048.cer';
      assert.equal(
        (await cli('refs', 'verify', join(dir, 'set.imr'), '--sig', sig, '--key', vectorPath(other))).status,
        1,
      );
    }
    // evmctl (ima-evm-utils) reads the detached RSA signature as its own --sigfile
    copyFileSync(join(dir, 'set.rsa2048.key.sig'), join(dir, 'set.imr.sig'));
    const e = spawnSync(
      'evmctl',
      ['ima_verify', '--sigfile', '-k', vectorPath('rsa2048.cer'), join(dir, 'set.imr')],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(e.status, 0, `evmctl: ${e.stdout}${e.stderr}`);
    // flip one byte of the set: every signature fails, exit 1 with E_REFS_SIGNATURE
    const bytes = readFileSync(join(dir, 'set.imr'));
    bytes[bytes.length - 1]! ^= 1;
    writeFileSync(join(dir, 'flipped.imr'), bytes);
    const f = await cli(
      'refs',
      'verify',
      join(dir, 'flipped.imr'),
      '--sig',
      join(dir, 'set.p256.key.sig'),
      '--key',
      vectorPath('p256.cer'),
    );
    assert.equal(f.status, 1);
    assert.match(f.err, /E_REFS_SIGNATURE/);
    // an unsigned set when a key is given
    const u = await cli('refs', 'verify', join(dir, 'set.imr'), '--key', vectorPath('p256.cer'));
    assert.equal(u.status, 1);
    assert.match(u.err, /E_REFS_UNSIGNED/);
  } finally {
    cleanup();
  }
});

test('--format keylime --dsse-key writes an envelope refs verify and log verify --refs-key accept; a tampered one is refused', async () => {
  const { dir, cleanup } = tempDir();
  try {
    fixture(dir);
    const w = await cli(
      'refs',
      'convert',
      join(dir, 'policy.json'),
      '--format',
      'keylime',
      '--dsse-key',
      vectorPath('p256.key'),
      '--out',
      join(dir, 'p.dsse'),
      '--json',
    );
    assert.equal(w.status, 0, w.err);
    assert.equal(JSON.parse(w.out).dsse, true);
    const env = JSON.parse(readFileSync(join(dir, 'p.dsse'), 'utf8'));
    assert.equal(env.payloadType, 'application/vnd.keylime+json');
    assert.equal(
      (await cli('refs', 'verify', join(dir, 'p.dsse'), '--key', vectorPath('p256.pub'))).status,
      0,
    );
    const base = ['log', 'verify', join(dir, 'list.bin'), '--pcrs-json', join(dir, 'pcrs.json')];
    const ok = await cli(...base, '--refs', join(dir, 'p.dsse'), '--refs-key', vectorPath('p256.cer'));
    assert.equal(ok.status, 0, ok.out + ok.err);
    assert.match(ok.out, /reference set signature: DSSE/);
    // payload changed (a digest swapped) under the old signature
    const payload = Buffer.from(env.payload, 'base64').toString().replace('0707', '0708');
    writeFileSync(
      join(dir, 'bad.dsse'),
      JSON.stringify({ ...env, payload: Buffer.from(payload).toString('base64') }),
    );
    const bad = await cli(...base, '--refs', join(dir, 'bad.dsse'), '--refs-key', vectorPath('p256.cer'));
    assert.equal(bad.status, 1);
    assert.match(bad.err, /E_REFS_SIGNATURE/);
    // without --refs-key the envelope is read, and the output says its signature was not checked
    const unchecked = await cli(...base, '--refs', join(dir, 'bad.dsse'));
    assert.match(unchecked.out, /signature: not checked/);
    // log verify: unsigned set with a key → refused; detached signature → accepted; --refs-sig alone → usage
    const uns = await cli(...base, '--refs', join(dir, 'set.imr'), '--refs-key', vectorPath('p256.cer'));
    assert.equal(uns.status, 1);
    assert.match(uns.err, /E_REFS_UNSIGNED/);
    await cli(
      'refs',
      'sign',
      join(dir, 'set.imr'),
      '--key',
      vectorPath('p256.key'),
      '--out',
      join(dir, 'set.sig'),
    );
    const det = await cli(
      ...base,
      '--refs',
      join(dir, 'set.imr'),
      '--refs-sig',
      join(dir, 'set.sig'),
      '--refs-key',
      vectorPath('p256.pub'),
    );
    assert.equal(det.status, 0, det.out + det.err);
    assert.equal(
      (await cli(...base, '--refs', join(dir, 'set.imr'), '--refs-sig', join(dir, 'set.sig'))).status,
      2,
    );
  } finally {
    cleanup();
  }
});

test("a Keylime-made DSSE policy (Keylime's own signer) verifies under its key and certificate", async () => {
  for (const f of ['policy.ecdsa.dsse', 'policy.x509.dsse'])
    for (const k of ['signer.pub', 'signer.x509.crt']) {
      const r = await cli(
        'refs',
        'verify',
        vectorPath(`keylime/dsse/${f}`),
        '--key',
        vectorPath(`keylime/dsse/${k}`),
        '--json',
      );
      assert.equal(r.status, 0, `${f} ${k}: ${r.err}`);
      assert.equal(JSON.parse(r.out).kind, 'keylime-dsse');
    }
  const wrong = await cli(
    'refs',
    'verify',
    vectorPath('keylime/dsse/policy.ecdsa.dsse'),
    '--key',
    vectorPath('p256.cer'),
  );
  assert.equal(wrong.status, 1);
  assert.ok(pemDecode(readFileSync(vectorPath('keylime/dsse/signer.x509.crt'))).length === 1);
});
