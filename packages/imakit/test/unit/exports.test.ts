import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers.ts';

// The package's public entry points resolve by name (self-reference through package.json "exports")
// and carry the functions the README documents.
test('imakit/core, imakit/kernel, imakit/host and imakit/errors export the documented API', async () => {
  const core = await import('imakit/core');
  for (const name of [
    'parseImaXattr',
    'encodeImaXattr',
    'imaDigestXattr',
    'parseEvmXattr',
    'signImaDigest',
    'verifySignatureValue',
    'Keyring',
    'loadPrivateKey',
    'loadPublicKey',
    'parseCertificate',
    'keyIdOfCertificate',
    'hash',
    'hashAlgoByName',
    'evmInput',
    'evmHmac',
    'fsverityDigest',
    'createEvmKeyBlob',
    'decryptEvmKeyBlob',
    'buildCertificate',
    'generateKeyPair',
    'sm2SignDigest',
  ])
    assert.equal(typeof (core as Record<string, unknown>)[name], 'function', `imakit/core ${name}`);
  const host = await import('imakit/host');
  for (const name of [
    'hashFileSync',
    'getXattr',
    'setXattr',
    'labelTree',
    'verifyImaFile',
    'verifyEvmFile',
    'runVm',
    'runDemo',
    'nativeHashes',
    'verifyListFile',
  ])
    assert.equal(typeof (host as Record<string, unknown>)[name], 'function', `imakit/host ${name}`);
  const kernel = await import('imakit/kernel');
  for (const name of ['Emulator', 'getProfile', 'runScenario'])
    assert.equal(typeof (kernel as Record<string, unknown>)[name], 'function', `imakit/kernel ${name}`);
  const errors = await import('imakit/errors');
  assert.equal(typeof errors.ImakitError, 'function');
  assert.equal(errors.CATALOGUE.E_CODEC_TRUNCATED.exit, 2);
});

test('CLI version equals package.json version', async () => {
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
  const { VERSION } = await import('../../src/cli/version.ts');
  assert.equal(VERSION, pkg.version);
});
