/**
 * keyctl wrappers: error mapping with a fake runner (always), and against THIS host's kernel when
 * it lets us create keyrings (the sandbox here does: the checks below then use the real kernel's
 * X.509 parser, keyid matching, signature verification and encrypted-key code).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { release } from 'node:os';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import {
  addCertificate,
  addEncryptedKey,
  addUserKey,
  keyctlError,
  keyringsUsable,
  newKeyring,
  pipeKey,
  resolveKeyring,
  searchKey,
  unlinkKey,
  type KeyctlRunner,
} from '../../../../src/host/keys/keyctl.ts';
import { writePublicFile, writeSecretFile } from '../../../../src/host/keys/key-files.ts';
import { generateKeyPair } from '../../../../src/core/keys/key-gen.ts';
import { buildCertificate } from '../../../../src/core/keys/x509-build.ts';
import { keyIdOfCertificate, formatKeyId } from '../../../../src/core/keys/keyid.ts';
import { loadPrivateKey } from '../../../../src/core/keys/keys.ts';
import { signDigest } from '../../../../src/core/keys/sign-digest.ts';
import { hashAlgoByName } from '../../../../src/core/hash/hash-algo.ts';
import { createEvmKeyBlob, decryptEvmKeyBlob } from '../../../../src/core/evm/evm-key-blob.ts';
import { exportPrivateKeyPem } from '../../../../src/core/keys/key-gen.ts';
import { isImakitError } from '../../../../src/errors.ts';
import { keyringSkipReason, tempDir } from '../../../helpers.ts';

const fake =
  (stderr: string, status = 1): KeyctlRunner =>
  () => ({ status, stdout: new Uint8Array(0), stderr });

test('keyctl error texts map to catalogue codes', () => {
  const cases: [string, string][] = [
    ["Can't find 'keyring:.ima'", 'E_KEYRING_NOT_FOUND'],
    ['add_key: Required key not available', 'E_KEYRING_RESTRICTED'],
    ['add_key: Key was rejected by service', 'E_KEYRING_RESTRICTED'],
    ['add_key: Package not installed', 'E_KEYRING_ALGO'],
    ['add_key: No such file or directory', 'E_KEYRING_ALGO'],
    ['add_key: Bad message', 'E_KEY_PARSE'],
    ['add_key: Permission denied', 'E_PERMISSION'],
    ['add_key: Operation not permitted', 'E_PERMISSION'],
    ['something else', 'E_KEYRING'],
  ];
  for (const [msg, code] of cases) assert.equal(keyctlError('padd', msg).code, code, msg);
  assert.throws(
    () => addCertificate(new Uint8Array(1), '1', { run: fake('add_key: Permission denied') }),
    (e) => isImakitError(e, 'E_PERMISSION'),
  );
  assert.throws(
    () => resolveKeyring('_ima', { run: fake('keyctl_search: Required key not available') }),
    (e) => isImakitError(e, 'E_KEYRING_NOT_FOUND'),
  );
  // commands issued
  const seen: string[][] = [];
  const rec: KeyctlRunner = (args) => {
    seen.push([...args]);
    return {
      status: args[0] === 'search' ? 1 : 0,
      stdout: Buffer.from('123\n'),
      stderr: 'keyctl_search: Required key not available',
    };
  };
  assert.equal(resolveKeyring('_evm', { run: rec, create: true }), '123');
  assert.deepEqual(seen, [
    ['search', '@u', 'keyring', '_evm'],
    ['newring', '_evm', '@u'],
  ]);
  assert.equal(resolveKeyring('0x10', { run: rec }), '16');
  assert.equal(resolveKeyring('@u', { run: rec }), '@u');
});

test('key files: secrets 0600 in 0700 directories made on demand, public 0644, atomic, no clobbering', () => {
  const { dir, cleanup } = tempDir();
  const old = process.umask(0);
  try {
    const s = join(dir, 'kmk');
    writeSecretFile(s, new Uint8Array(32).fill(1));
    assert.equal(statSync(s).mode & 0o777, 0o600);
    assert.throws(
      () => writeSecretFile(s, 'x'),
      (e) => isImakitError(e, 'E_IO_WRITE'),
    );
    writeSecretFile(s, 'y', { overwrite: true });
    assert.equal(readFileSync(s, 'utf8'), 'y');
    assert.equal(statSync(s).mode & 0o777, 0o600);
    const p = join(dir, 'cert.pem');
    writePublicFile(p, 'cert');
    assert.equal(statSync(p).mode & 0o777, 0o644);
    // a missing directory is created 0700 (keys go there), not an error
    writeSecretFile(join(dir, 'missing', 'x'), 'x');
    assert.equal(statSync(join(dir, 'missing')).mode & 0o777, 0o700);
    assert.equal(statSync(join(dir, 'missing', 'x')).mode & 0o777, 0o600);
  } finally {
    process.umask(old);
    cleanup();
  }
});

const keyringSkip = keyringSkipReason();

test('keyringsUsable agrees with a probe made with keyctl directly', () => {
  assert.equal(keyringsUsable(), keyringSkip === false);
});
const [maj, min] = release().split('.').map(Number) as [number, number];

test('host kernel keyrings (this machine)', { skip: keyringSkip }, async (t) => {
  const ring = String(newKeyring(`_imakit_test_${process.pid}`));
  const { dir, cleanup } = tempDir();
  try {
    await t.test(
      'imakit certificates load; the kernel finds them by imakit key id; verifies imakit signatures',
      () => {
        const ca = generateKeyPair({ alg: 'rsa' });
        const caCert = buildCertificate({
          publicKey: ca.publicKey,
          issuerKey: ca.privateKey,
          subject: 'O=imakit,CN=test CA',
          ca: true,
        });
        const leaf = generateKeyPair({ alg: 'rsa' });
        const cert = buildCertificate({
          publicKey: leaf.publicKey,
          issuerKey: ca.privateKey,
          issuerCert: caCert.cert,
          subject: 'O=imakit,CN=leaf',
          ca: false,
        });
        addCertificate(caCert.der, ring);
        const serial = addCertificate(cert.der, ring);
        // the kernel's partial id match (request_asymmetric_key 'id:%08x', formats.md §3.5)
        assert.equal(
          searchKey(ring, 'asymmetric', `id:${formatKeyId(keyIdOfCertificate(cert.cert))}`),
          serial,
        );
        // the kernel's public_key_verify_signature (what IMA's asymmetric_verify calls) on an imakit signature
        const key = loadPrivateKey(Buffer.from(exportPrivateKeyPem(leaf.privateKey)));
        const digest = new Uint8Array(createHash('sha256').update('imakit').digest());
        const sig = signDigest(key, hashAlgoByName('sha256'), digest);
        writeFileSync(join(dir, 'd'), digest);
        writeFileSync(join(dir, 's'), sig);
        const v = spawnSync(
          'keyctl',
          ['pkey_verify', String(serial), '0', join(dir, 'd'), join(dir, 's'), 'enc=pkcs1', 'hash=sha256'],
          { encoding: 'utf8' },
        );
        assert.equal(v.status, 0, v.stderr);
        digest[0]! ^= 1;
        writeFileSync(join(dir, 'd'), digest);
        const bad = spawnSync(
          'keyctl',
          ['pkey_verify', String(serial), '0', join(dir, 'd'), join(dir, 's'), 'enc=pkcs1', 'hash=sha256'],
          { encoding: 'utf8' },
        );
        assert.notEqual(bad.status, 0);
      },
    );

    await t.test('SM2 certificates: the kernel has no SM2 from 6.11 on (pitfall 15)', () => {
      const k = generateKeyPair({ alg: 'sm2' });
      const c = buildCertificate({
        publicKey: k.publicKey,
        issuerKey: k.privateKey,
        subject: 'CN=sm2',
        ca: true,
      });
      if (maj > 6 || (maj === 6 && min >= 11))
        assert.throws(
          () => addCertificate(c.der, ring),
          (e) => isImakitError(e, 'E_KEYRING_ALGO'),
        );
      else assert.ok(addCertificate(c.der, ring) > 0);
    });

    await t.test('restricted keyring, missing keyring, garbage, not root', () => {
      const r2 = String(newKeyring(`_imakit_restricted_${process.pid}`, ring));
      spawnSync('keyctl', ['restrict_keyring', r2, 'asymmetric', 'builtin_trusted']);
      const k = generateKeyPair({ alg: 'rsa' });
      const c = buildCertificate({
        publicKey: k.publicKey,
        issuerKey: k.privateKey,
        subject: 'CN=untrusted',
        ca: false,
      });
      assert.throws(
        () => addCertificate(c.der, r2),
        (e) => isImakitError(e, 'E_KEYRING_RESTRICTED'),
      );
      assert.throws(
        () => resolveKeyring(`_imakit_missing_${process.pid}`),
        (e) => isImakitError(e, 'E_KEYRING_NOT_FOUND'),
      );
      assert.throws(
        () => resolveKeyring('.imakit_no_such_system_ring'),
        (e) => isImakitError(e, 'E_KEYRING_NOT_FOUND'),
      );
      assert.throws(
        () => addCertificate(new Uint8Array(randomBytes(64)), ring),
        (e) => isImakitError(e, 'E_KEY_PARSE'),
      );
      const asNobody: KeyctlRunner = (args, input) => {
        const r = spawnSync(
          'setpriv',
          ['--reuid=65534', '--regid=65534', '--clear-groups', 'keyctl', ...args],
          { input: input ?? new Uint8Array(0) },
        );
        return { status: r.status ?? -1, stdout: new Uint8Array(r.stdout), stderr: String(r.stderr) };
      };
      assert.throws(
        () => addCertificate(c.der, ring, { run: asNobody }),
        (e) => isImakitError(e, 'E_PERMISSION'),
      );
    });

    await t.test('encrypted keys: the kernel loads imakit blobs, imakit decrypts kernel blobs', () => {
      const kmk = new Uint8Array(randomBytes(32));
      const kmk2 = new Uint8Array(randomBytes(32));
      addUserKey('kmk', kmk, ring);
      addUserKey('kmk2', kmk2, ring);
      // imakit -> kernel: the kernel checks our HMAC (else EINVAL, "bad hmac") and prints our blob back
      const plain = new Uint8Array(randomBytes(32));
      const ours = createEvmKeyBlob({ masterKey: kmk, plain });
      const id = addEncryptedKey('imakit-evm-key', ours.loadCommand, ring);
      assert.equal(Buffer.from(pipeKey(id)).toString(), ours.payloadHex);
      // re-encrypting under kmk2 makes the kernel write out what IT decrypted: must be our plain key
      const up = spawnSync('keyctl', ['update', String(id), 'update user:kmk2']);
      assert.equal(up.status, 0, String(up.stderr));
      assert.deepEqual(decryptEvmKeyBlob(pipeKey(id), kmk2), plain);
      // a tampered blob is refused by the kernel as well
      const t2 = ours.payloadHex.slice(0, -1) + (ours.payloadHex.endsWith('0') ? '1' : '0');
      assert.throws(
        () => addEncryptedKey('imakit-bad', `load ${t2}`, ring),
        (e) => isImakitError(e),
      );
      // kernel -> imakit: a kernel 'new' key, exported, decrypts; the same key re-wrapped by the kernel agrees
      const kid = addEncryptedKey('kernel-evm-key', 'new default user:kmk 64', ring);
      const k1 = decryptEvmKeyBlob(pipeKey(kid), kmk);
      assert.equal(k1.length, 64);
      spawnSync('keyctl', ['update', String(kid), 'update user:kmk2']);
      assert.deepEqual(decryptEvmKeyBlob(pipeKey(kid), kmk2), k1);
      assert.throws(
        () => decryptEvmKeyBlob(pipeKey(kid), kmk),
        (e) => isImakitError(e, 'E_EVMKEY_MAC'),
      );
    });
  } finally {
    try {
      unlinkKey(ring, '@u');
    } catch {
      // already gone
    }
    cleanup();
  }
});
