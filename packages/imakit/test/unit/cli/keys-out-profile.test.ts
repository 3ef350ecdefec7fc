/**
 * `keys ca/gen --out DIR` creates DIR (0700, with its missing parents) as the README's own example
 * needs (issue 10 item 5), and ca/gen warn when the --profile kernel (default debian-6.1, as keys
 * info) will not accept the key they just made, naming the kernels that would; the kernel facts
 * behind the reasons are consistent with each profile's version (item 9). Key material is checked
 * with openssl, modes with stat.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../../src/cli/main.ts';
import { memoryIo } from '../../../src/cli/io.ts';
import { describeKey } from '../../../src/core/keys/key-info.ts';
import { run, tempDir, vector } from '../../helpers.ts';

async function imakit(...argv: string[]) {
  const io = memoryIo();
  const status = await main(argv, io);
  return { status, out: io.out(), err: io.err() };
}
const mode = (p: string) => statSync(p).mode & 0o777;

test('keys ca --out DIR/ and keys gen --out A/B/C create the directories 0700 (README example)', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const ca = join(dir, 'ca') + '/';
    let r = await imakit('keys', 'ca', '--out', ca);
    assert.equal(r.status, 0, r.err);
    assert.equal(mode(ca), 0o700);
    assert.equal(mode(join(ca, 'ca.key.pem')), 0o600);
    assert.equal(mode(join(ca, 'ca.pem')), 0o644);
    assert.equal(r.err, '', 'an RSA CA is accepted by debian-6.1: no warning');
    const leaf = join(dir, 'a', 'b', 'ima');
    r = await imakit('keys', 'gen', '--ca', ca, '--out', leaf);
    assert.equal(r.status, 0, r.err);
    for (const d of [join(dir, 'a'), join(dir, 'a', 'b'), leaf]) assert.equal(mode(d), 0o700, d);
    const v = run('openssl', ['verify', '-CAfile', join(ca, 'ca.pem'), join(leaf, 'cert.pem')]);
    assert.equal(v.status, 0, v.stderr);
    // kmk new --out into a missing directory too
    r = await imakit('keys', 'kmk', 'new', '--out', join(dir, 'keys', 'kmk'));
    assert.equal(r.status, 0, r.err);
    assert.equal(mode(join(dir, 'keys')), 0o700);
    assert.equal(mode(join(dir, 'keys', 'kmk')), 0o600);
  } finally {
    cleanup();
  }
});

test('an existing --out directory keeps its mode; a file in the way is a clear E_IO_WRITE', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const r0 = await imakit('keys', 'ca', '--out', dir);
    assert.equal(r0.status, 0, r0.err);
    assert.equal(mode(dir), 0o700); // mkdtemp's own 0700, untouched
    writeFileSync(join(dir, 'file'), 'x');
    const r = await imakit('keys', 'ca', '--out', join(dir, 'file', 'ca'));
    assert.equal(r.status, 3);
    assert.match(r.err, /file\/ca.*(ENOTDIR|EEXIST).*E_IO_WRITE/);
  } finally {
    cleanup();
  }
});

for (const [alg, profile, refused] of [
  ['ec', 'debian-6.1', /CONFIG_CRYPTO_ECDSA/],
  ['sm2', 'debian-6.1', /built without CONFIG_CRYPTO_SM2/],
  ['sm2', 'mainline', /removed from the kernel in 6\.11/],
  ['ec', 'linux-5.10', /arrived in 5\.13/],
] as const)
  test(`keys gen --alg ${alg} --profile ${profile} warns at creation, names the kernels that would take it`, async () => {
    const { dir, cleanup } = tempDir();
    try {
      const ca = join(dir, 'ca');
      assert.equal((await imakit('keys', 'ca', '--out', ca)).status, 0);
      const leaf = join(dir, 'leaf');
      const r = await imakit('keys', 'gen', '--alg', alg, '--ca', ca, '--out', leaf, '--profile', profile);
      assert.equal(r.status, 0, r.err); // still written: the key may be meant for another kernel
      assert.match(r.err, new RegExp(`^warning: ${profile} will not accept this signing key for IMA or EVM`));
      assert.match(r.err, refused);
      assert.match(r.err, /kernels that would: .*linux-6\.\d/);
      // the same verdict keys info gives for the file written
      const info = describeKey(new Uint8Array(readFileSync(join(leaf, 'cert.der'))), { profile });
      assert.equal(info.ima.accepted, false);
      // and a profile that takes it: no warning
      const ok = alg === 'ec' ? 'mainline' : 'linux-6.6';
      const r2 = await imakit(
        'keys',
        'gen',
        '--alg',
        alg,
        '--ca',
        ca,
        '--out',
        join(dir, 'l2'),
        '--profile',
        ok,
        '--json',
      );
      assert.equal(r2.status, 0, r2.err);
      assert.deepEqual(JSON.parse(r2.out).warnings, []);
    } finally {
      cleanup();
    }
  });

test('keys gen --profile with an unknown kernel is a usage error before anything is written', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const r = await imakit('keys', 'ca', '--out', join(dir, 'ca'), '--profile', 'windows-11');
    assert.equal(r.status, 2);
    assert.match(r.err, /unknown kernel profile 'windows-11'.*E_PROFILE_UNKNOWN/);
    assert.throws(() => statSync(join(dir, 'ca')), /ENOENT/);
  } finally {
    cleanup();
  }
});

test('SM2 reasons never contradict the profile: no "only in 5.10-6.10" for a 6.1 kernel without a why', () => {
  const sm2 = vector('sm2.cer');
  const deb = describeKey(sm2, { profile: 'debian-6.1' }).ima.reasons.join('\n');
  assert.match(deb, /Debian's 6\.1 kernel is built without CONFIG_CRYPTO_SM2/);
  assert.equal(
    describeKey(sm2, { profile: 'linux-6.6' }).ima.reasons.filter((r) => /SM2 is not/.test(r)).length,
    0,
  );
  assert.match(
    describeKey(sm2, { profile: 'linux-6.11' }).ima.reasons.join('\n'),
    /removed from the kernel in 6\.11/,
  );
  assert.match(describeKey(sm2, { profile: 'linux-5.4' }).ima.reasons.join('\n'), /arrived in 5\.10/);
});
