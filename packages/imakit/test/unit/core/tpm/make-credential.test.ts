/**
 * makeCredential against swtpm: imakit's credentials activate through TpmClient.activateCredential
 * and through tpm2_activatecredential for the RSA EK (L-1), the ECC P-256 EK (L-2) and the ECC P-384
 * EK (high range, sha384 + AES-256); a credential bound to another AK's name and one with a flipped
 * HMAC bit fail with TPM_RC_INTEGRITY; imakit's file has the shape of tpm2_makecredential's.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createECDH } from 'node:crypto';
import { TpmClient } from '../../../../src/host/tpm/client.ts';
import { kdfa, kdfe, makeCredential } from '../../../../src/core/tpm/make-credential.ts';
import {
  decodeToolsCredential,
  encodeToolsCredential,
} from '../../../../src/core/tpm/commands/credential.ts';
import { ekTemplate, type EkKind } from '../../../../src/core/tpm/commands/templates.ts';
import { TpmError } from '../../../../src/core/tpm/commands/frame.ts';
import type { TpmtPublic } from '../../../../src/core/tpm/public.ts';
import { hashAlgoByName } from '../../../../src/core/hash/hash-algo.ts';
import { fromHex, toHex } from '../../../../src/core/bytes/bytes.ts';
import { manufactureTpm, startTestTpm, type TestTpm, type TestTpmState } from '../../tpm-helpers.ts';

let shared: { dir: string; state: TestTpmState };
before(() => {
  const dir = mkdtempSync(join(tmpdir(), 'imakit-tpm-state-'));
  shared = { dir, state: manufactureTpm(dir) };
});
after(() => rmSync(shared.dir, { recursive: true, force: true }));

async function withTpm(fn: (t: TestTpm, c: TpmClient) => Promise<void>): Promise<void> {
  const t = await startTestTpm({ fromState: shared.state });
  const c = await TpmClient.open(t.selector);
  try {
    await fn(t, c);
  } finally {
    await c.close();
    t.stop();
  }
}

const isIntegrity = (e: unknown): boolean => {
  assert.ok(e instanceof TpmError, String(e));
  assert.equal(e.command, 'ActivateCredential');
  assert.equal(e.rc & 0xbf, 0x9f); // TPM_RC_INTEGRITY (0x09f), parameter n
  return true;
};

const EK_PERSISTENT: Record<EkKind, string> = { rsa: '0x81010001', ecc: '', ecc384: '0x81010016' };

for (const kind of ['rsa', 'ecc', 'ecc384'] as const) {
  test(`${kind} EK: imakit's credential activates in swtpm (TpmClient); another AK's name and a flipped HMAC bit fail with TPM_RC_INTEGRITY`, async () => {
    await withTpm(async (_t, c) => {
      const ek = await c.createEk(kind);
      const ak = await c.createAk(ek, 'rsassa');
      const other = await c.createAk(ek, 'ecdsa');
      for (const size of [1, 16, 32, 48, 64]) {
        const secret = new Uint8Array(size).map((_, i) => (i * 37 + size) & 0xff);
        const cred = makeCredential(ek.public, ak.key.name, secret);
        assert.deepEqual(await c.activateCredential(ak.key.handle, ek, cred), secret, `size ${size}`);
      }
      const secret = new TextEncoder().encode('imakit credential');
      const wrong = makeCredential(ek.public, other.key.name, secret);
      await assert.rejects(c.activateCredential(ak.key.handle, ek, wrong), isIntegrity);
      const good = makeCredential(ek.public, ak.key.name, secret);
      const flipped = good.credentialBlob.slice();
      flipped[5]! ^= 1; // inside the outer HMAC
      await assert.rejects(
        c.activateCredential(ak.key.handle, ek, { credentialBlob: flipped, secret: good.secret }),
        isIntegrity,
      );
      // the right credential still activates after the failures (nothing left half-done)
      assert.deepEqual(await c.activateCredential(ak.key.handle, ek, good), secret);
    });
  });
}

for (const kind of ['rsa', 'ecc384'] as const) {
  test(`${kind} EK: tpm2_activatecredential reads imakit's tpm2-tools credential file and releases the secret`, async () => {
    await withTpm(async (t, c) => {
      const d = t.dir;
      const ekHandle = EK_PERSISTENT[kind];
      t.tool('tpm2_readpublic', ['-c', ekHandle, '-o', join(d, 'ek.pub')]);
      t.tool('tpm2_createak', [
        '-C',
        ekHandle,
        '-c',
        join(d, 'ak.ctx'),
        '-G',
        'rsa',
        '-g',
        'sha256',
        '-s',
        'rsassa',
        '-n',
        join(d, 'ak.name'),
      ]);
      // the AK's Name as tpm2-tools wrote it, the EK's public area as the TPM returned it
      const name = new Uint8Array(readFileSync(join(d, 'ak.name')));
      const ek = await c.persistentKey(Number(ekHandle));
      const secret = fromHex('00112233445566778899aabbccddeeff');
      writeFileSync(join(d, 'cred.out'), encodeToolsCredential(makeCredential(ek.public, name, secret)));
      const args = [
        '-c',
        join(d, 'ak.ctx'),
        '-C',
        ekHandle,
        '-i',
        join(d, 'cred.out'),
        '-o',
        join(d, 'secret.out'),
      ];
      if (kind === 'rsa') {
        t.tool('tpm2_startauthsession', ['--policy-session', '-S', join(d, 's.ctx')]);
        t.tool('tpm2_policysecret', ['-S', join(d, 's.ctx'), '-c', 'e']);
        args.push('-P', `session:${join(d, 's.ctx')}`);
      }
      t.tool('tpm2_activatecredential', args);
      assert.equal(toHex(readFileSync(join(d, 'secret.out'))), toHex(secret));
      if (kind === 'rsa') t.tool('tpm2_flushcontext', [join(d, 's.ctx')]);
      t.tool('tpm2_flushcontext', ['-t']);
    });
  });
}

test("imakit's credential file has tpm2_makecredential's layout (header, ID_OBJECT and ENCRYPTED_SECRET sizes)", async () => {
  await withTpm(async (t, c) => {
    const d = t.dir;
    for (const kind of ['rsa', 'ecc', 'ecc384'] as const) {
      const ek = await c.createEk(kind);
      const ak = await c.createAk(ek, 'rsassa');
      writeFileSync(join(d, 'ek.pub'), ek.publicBytes);
      const secret = new Uint8Array(20).fill(0x5a);
      writeFileSync(join(d, 'secret.bin'), secret);
      t.tool('tpm2_makecredential', [
        '-T',
        'none',
        '-u',
        join(d, 'ek.pub'),
        '-s',
        join(d, 'secret.bin'),
        '-n',
        toHex(ak.key.name),
        '-o',
        join(d, 'tools.out'),
      ]);
      const tools = new Uint8Array(readFileSync(join(d, 'tools.out')));
      const mine = encodeToolsCredential(makeCredential(ek.public, ak.key.name, secret));
      assert.equal(toHex(mine.subarray(0, 8)), toHex(tools.subarray(0, 8)), `${kind} header`);
      assert.equal(mine.length, tools.length, `${kind} file size`);
      const a = decodeToolsCredential(mine);
      const b = decodeToolsCredential(tools);
      assert.equal(a.credentialBlob.length, b.credentialBlob.length, kind);
      assert.equal(a.secret.length, b.secret.length, kind);
      // both activate: tpm2-tools' as the reference, imakit's as the claim
      assert.deepEqual(await c.activateCredential(ak.key.handle, ek, b), secret);
      assert.deepEqual(await c.activateCredential(ak.key.handle, ek, a), secret);
      await c.flush(ak.key.handle);
      await c.flush(ek.handle);
    }
  });
});

test('deterministic with given randomness; misuse throws', () => {
  const sha256 = hashAlgoByName('sha256');
  // KDFa/KDFe lengths and counter blocks: 48 bytes from sha256 is two blocks, the second cut
  const k = kdfa(sha256, new Uint8Array(32), 'STORAGE', new Uint8Array(2), new Uint8Array(0), 384);
  assert.equal(k.length, 48);
  assert.deepEqual(
    k.subarray(0, 32),
    kdfa(sha256, new Uint8Array(32), 'STORAGE', new Uint8Array(2), new Uint8Array(0), 384).subarray(0, 32),
  );
  assert.notDeepEqual(
    kdfa(sha256, new Uint8Array(32), 'STORAGE', new Uint8Array(2), new Uint8Array(0), 256),
    k.subarray(0, 32), // bits is part of the input
  );
  assert.equal(
    kdfe(sha256, new Uint8Array(32), 'IDENTITY', new Uint8Array(0), new Uint8Array(0), 256).length,
    32,
  );
  assert.throws(
    () => kdfa(sha256, new Uint8Array(1), 'X', new Uint8Array(0), new Uint8Array(0), 7),
    RangeError,
  );
  // an ECC EK with a given ephemeral scalar: the same bytes twice, another scalar other bytes
  const e = createECDH('prime256v1');
  e.generateKeys();
  const pt = new Uint8Array(e.getPublicKey());
  const base = ekTemplate('ecc');
  assert.equal(base.type, 'ecc');
  if (base.type !== 'ecc') return;
  const ek: TpmtPublic = { ...base, x: pt.subarray(1, 33), y: pt.subarray(33) };
  const name = fromHex('000b' + '11'.repeat(32));
  const d1 = new Uint8Array(32).fill(3);
  const c1 = makeCredential(ek, name, new Uint8Array(16), { ephemeralPrivateKey: d1 });
  assert.deepEqual(c1, makeCredential(ek, name, new Uint8Array(16), { ephemeralPrivateKey: d1 }));
  assert.notDeepEqual(
    c1.credentialBlob,
    makeCredential(ek, name, new Uint8Array(16), { ephemeralPrivateKey: new Uint8Array(32).fill(4) })
      .credentialBlob,
  );
  assert.equal(c1.secret.length, 2 + 32 + 2 + 32); // TPMS_ECC_POINT
  assert.equal(c1.credentialBlob.length, 2 + 32 + 2 + 16); // TPM2B(HMAC) ‖ AES-CFB(TPM2B(secret))
  assert.throws(() => makeCredential(ek, name, new Uint8Array(0)), RangeError);
  assert.throws(() => makeCredential(ek, name, new Uint8Array(65)), RangeError);
  assert.throws(() => makeCredential(ek, new Uint8Array(0), new Uint8Array(1)), TypeError);
  assert.throws(
    () =>
      makeCredential({ ...base, x: new Uint8Array(32).fill(1), y: pt.subarray(33) }, name, new Uint8Array(1)),
    (err: unknown) => (err as { code?: string }).code === 'E_KEY_PARSE',
  );
});
