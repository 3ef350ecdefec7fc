import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, statSync, writeFileSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { main } from '../../../src/cli/main.ts';
import { memoryIo } from '../../../src/cli/io.ts';
import { keyringSkipReason, run, tempDir, vectorPath } from '../../helpers.ts';

async function imakit(...argv: string[]) {
  const io = memoryIo();
  const status = await main(argv, io);
  return { status, out: io.out(), err: io.err() };
}
const mode = (p: string) => statSync(p).mode & 0o777;

for (const alg of ['rsa', 'ec', 'sm2']) {
  test(`keys ca + keys gen (${alg}): openssl verifies the chain, modes 0600/0644, info says why`, async () => {
    const { dir, cleanup } = tempDir();
    try {
      const ca = join(dir, 'ca');
      const leaf = join(dir, 'leaf');
      mkdirSync(ca);
      mkdirSync(leaf);
      let r = await imakit('keys', 'ca', '--alg', alg, '--out', ca, '--pass', 'capw', '--days', '100');
      assert.equal(r.status, 0, r.err);
      r = await imakit(
        'keys',
        'gen',
        '--alg',
        alg,
        '--ca',
        ca,
        '--ca-pass',
        'capw',
        '--out',
        leaf,
        '--code-signing',
        '--json',
      );
      assert.equal(r.status, 0, r.err);
      const j = JSON.parse(r.out) as { keyid: string };
      assert.equal(mode(join(ca, 'ca.key.pem')), 0o600);
      assert.equal(mode(join(leaf, 'key.pem')), 0o600);
      assert.equal(mode(join(leaf, 'cert.der')), 0o644);
      const extra = alg === 'sm2' ? ['-vfyopt', 'distid:1234567812345678'] : [];
      const v = run('openssl', ['verify', ...extra, '-CAfile', join(ca, 'ca.pem'), join(leaf, 'cert.pem')]);
      assert.equal(v.status, 0, v.stdout + v.stderr);
      // the DER is the same certificate
      const der = run('openssl', [
        'x509',
        '-in',
        join(leaf, 'cert.der'),
        '-inform',
        'der',
        '-noout',
        '-ext',
        'subjectKeyIdentifier',
      ]).stdout;
      assert.ok(der.replace(/[\s:]/g, '').toLowerCase().endsWith(j.keyid), der);
      // wrong CA passphrase: typed error, exit 2
      r = await imakit(
        'keys',
        'gen',
        '--alg',
        alg,
        '--ca',
        ca,
        '--ca-pass',
        'nope',
        '--out',
        leaf,
        '--force',
      );
      assert.equal(r.status, 2);
      assert.match(r.err, /E_KEY_PASSPHRASE/);
      // no clobbering without --force
      r = await imakit('keys', 'ca', '--alg', alg, '--out', ca);
      assert.equal(r.status, 3);
      // info: debian-6.1 accepts only RSA; mainline refuses SM2, takes RSA/EC leaf certs (if vouched for)
      const deb = JSON.parse((await imakit('keys', 'info', join(leaf, 'cert.der'), '--json')).out);
      assert.equal(deb.keyid, j.keyid);
      assert.equal(deb.ima.accepted, alg === 'rsa');
      const ml = JSON.parse(
        (await imakit('keys', 'info', join(leaf, 'cert.pem'), '--profile', 'mainline', '--json')).out,
      );
      assert.equal(ml.ima.accepted, alg === 'sm2' ? false : 'unknown');
      const old = JSON.parse(
        (await imakit('keys', 'info', join(leaf, 'cert.pem'), '--profile', 'linux-6.6', '--json')).out,
      );
      assert.equal(old.ima.accepted, 'unknown', JSON.stringify(old.ima));
      // the CA itself is refused by .ima on 6.4+ (CA:TRUE, keyCertSign)
      const cai = JSON.parse(
        (await imakit('keys', 'info', join(ca, 'ca.der'), '--profile', 'linux-6.6', '--json')).out,
      );
      assert.equal(cai.ima.accepted, false);
      assert.ok(cai.ima.reasons.some((s: string) => /CA:TRUE/.test(s)));
    } finally {
      cleanup();
    }
  });
}

test('keys info on the shared vectors; bare keys and a custom SKID', async () => {
  const skid = JSON.parse((await imakit('keys', 'info', vectorPath('rsa2048_skid.cer'), '--json')).out);
  assert.equal(skid.keyid, '11121314');
  assert.equal(skid.spkiKeyid, '76732299');
  const p256 = JSON.parse((await imakit('keys', 'info', vectorPath('p256.cer'), '--json')).out);
  assert.equal(p256.keyid, '027eaa7d');
  assert.equal(p256.ima.accepted, false);
  const sm2 = JSON.parse(
    (await imakit('keys', 'info', vectorPath('sm2.cer'), '--profile', 'linux-6.6', '--json')).out,
  );
  assert.equal(sm2.keyid, '31a4fbf1');
  const bare = JSON.parse((await imakit('keys', 'info', vectorPath('rsa2048.pub'), '--json')).out);
  assert.equal(bare.kind, 'public-key');
  assert.equal(bare.ima.accepted, false);
  const bad = await imakit('keys', 'info', vectorPath('hello.txt'));
  assert.equal(bad.status, 2);
  assert.equal((await imakit('keys', 'info', vectorPath('rsa2048.cer'), '--profile', 'nope')).status, 2);
});

test('keys convert: pem/der round trip; --to evmctl equals evmctl convert', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const pub = join(dir, 'k.pub');
    copyFileSync(vectorPath('rsa2048.pub'), pub);
    assert.equal(
      (await imakit('keys', 'convert', pub, '--to', 'evmctl', '--out', join(dir, 'ours'))).status,
      0,
    );
    const e = run('evmctl', ['convert', pub]);
    assert.equal(e.status, 0, e.stderr);
    assert.deepEqual(readFileSync(join(dir, 'ours.bin')), readFileSync(pub + '.bin'));
    assert.equal(readFileSync(join(dir, 'ours.keyid'), 'utf8'), readFileSync(pub + '.keyid', 'utf8'));
    assert.equal(
      (await imakit('keys', 'convert', vectorPath('rsa2048.cer'), '--to', 'pem', '--out', join(dir, 'c.pem')))
        .status,
      0,
    );
    assert.equal(
      (await imakit('keys', 'convert', join(dir, 'c.pem'), '--to', 'der', '--out', join(dir, 'c.der')))
        .status,
      0,
    );
    assert.deepEqual(readFileSync(join(dir, 'c.der')), readFileSync(vectorPath('rsa2048.cer')));
    assert.equal(
      (await imakit('keys', 'convert', vectorPath('sm2.key'), '--to', 'der', '--out', join(dir, 'k.der')))
        .status,
      0,
    );
    assert.equal(mode(join(dir, 'k.der')), 0o600);
    assert.equal(run('openssl', ['pkey', '-in', join(dir, 'k.der'), '-inform', 'der', '-noout']).status, 0);
  } finally {
    cleanup();
  }
});

test('kmk new / evmkey new / evmkey decrypt round trip, 0600, wrong kmk exits 1', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const p = (n: string) => join(dir, n);
    assert.equal((await imakit('keys', 'kmk', 'new', '--out', p('kmk'))).status, 0);
    assert.equal(readFileSync(p('kmk')).length, 32);
    assert.equal(
      (
        await imakit(
          'keys',
          'evmkey',
          'new',
          '--kmk',
          p('kmk'),
          '--out',
          p('evm-key'),
          '--len',
          '64',
          '--plain-out',
          p('plain'),
        )
      ).status,
      0,
    );
    assert.equal(readFileSync(p('evm-key'), 'utf8').length, 246); // seed 000's ls -l size
    assert.equal(
      (await imakit('keys', 'evmkey', 'decrypt', p('evm-key'), '--kmk', p('kmk'), '--out', p('dec'))).status,
      0,
    );
    assert.deepEqual(readFileSync(p('dec')), readFileSync(p('plain')));
    for (const f of ['kmk', 'evm-key', 'plain', 'dec']) assert.equal(mode(p(f)), 0o600, f);
    assert.equal((await imakit('keys', 'kmk', 'new', '--out', p('kmk2'))).status, 0);
    const wrong = await imakit(
      'keys',
      'evmkey',
      'decrypt',
      p('evm-key'),
      '--kmk',
      p('kmk2'),
      '--out',
      p('dec2'),
    );
    assert.equal(wrong.status, 1);
    assert.match(wrong.err, /E_EVMKEY_MAC/);
    assert.throws(() => statSync(p('dec2')));
    writeFileSync(p('trunc'), readFileSync(p('evm-key'), 'utf8').slice(0, 100));
    assert.equal(
      (await imakit('keys', 'evmkey', 'decrypt', p('trunc'), '--kmk', p('kmk'), '--out', p('dec3'))).status,
      2,
    );
  } finally {
    cleanup();
  }
});

test('keys import / evmctl import into a host keyring', { skip: keyringSkipReason() }, async () => {
  const { dir, cleanup } = tempDir();
  const ring = `_imakit_cli_${process.pid}`;
  try {
    mkdirSync(join(dir, 'ca'));
    mkdirSync(join(dir, 'k'));
    await imakit('keys', 'ca', '--out', join(dir, 'ca'));
    await imakit('keys', 'gen', '--ca', join(dir, 'ca'), '--out', join(dir, 'k'));
    let r = await imakit('keys', 'import', join(dir, 'k', 'cert.pem'), '--keyring', ring);
    assert.equal(r.status, 5);
    assert.match(r.err, /E_KEYRING_NOT_FOUND/);
    r = await imakit('keys', 'import', join(dir, 'k', 'cert.pem'), '--keyring', ring, '--create', '--json');
    assert.equal(r.status, 0, r.err);
    const j = JSON.parse(r.out);
    const desc = spawnSync('keyctl', ['rdescribe', String(j.serial)], { encoding: 'utf8' }).stdout;
    assert.match(desc, /^asymmetric;/);
    // evmctl drop-in: prints the serial; the same cert goes in again (as a new key or the same serial)
    const io = memoryIo();
    const st = await main(['evmctl', 'import', join(dir, 'k', 'cert.der'), j.keyringId], io);
    assert.equal(st, 0, io.err());
    assert.match(io.out(), /^[0-9]+\n$/);
    const v1 = memoryIo();
    assert.equal(
      await main(['evmctl', 'import', '--rsa', vectorPath('rsa2048.pub'), j.keyringId], v1),
      0,
      v1.err(),
    );
    const id = v1.out().trim();
    assert.match(
      spawnSync('keyctl', ['rdescribe', id], { encoding: 'utf8' }).stdout,
      /^user;.*;C63C765BCFC20179\n?$/,
    );
    const bad = memoryIo();
    assert.equal(await main(['evmctl', 'import', vectorPath('sm2.cer'), j.keyringId], bad), 125);
  } finally {
    spawnSync('sh', ['-c', `keyctl unlink $(keyctl search @u keyring ${ring}) @u`]);
    cleanup();
  }
});

test('seed 003 end to end: SM2 CA + cert by imakit, sm3 signatures on a tree, verified by openssl and evmctl', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const ca = join(dir, 'ca');
    const k = join(dir, 'k');
    const tree = join(dir, 'tree');
    for (const d of [ca, k, tree, join(tree, 'sub')]) mkdirSync(d);
    assert.equal(
      (await imakit('keys', 'ca', '--alg', 'sm2', '--subject', '/O=IMA-test/CN=IMA test CA', '--out', ca))
        .status,
      0,
    );
    assert.equal(
      (
        await imakit(
          'keys',
          'gen',
          '--alg',
          'sm2',
          '--subject',
          '/O=IMA-test/CN=IMA test key/emailAddress=ima@test.com',
          '--ca',
          ca,
          '--out',
          k,
        )
      ).status,
      0,
    );
    assert.equal(
      run('openssl', [
        'verify',
        '-vfyopt',
        'distid:1234567812345678',
        '-CAfile',
        join(ca, 'ca.pem'),
        join(k, 'cert.pem'),
      ]).status,
      0,
    );
    const files = ['a', 'b', 'sub/c'].map((n) => join(tree, n));
    files.forEach((f, i) => writeFileSync(f, `file ${i}\n`.repeat(i + 1)));
    const io = memoryIo();
    const st = await main(
      ['evmctl', 'ima_sign', '--xattr-user', '-a', 'sm3', '-k', join(k, 'key.pem'), '-r', '-t', 'f', tree],
      io,
    );
    assert.equal(st, 0, io.err());
    const info = JSON.parse((await imakit('keys', 'info', join(k, 'cert.der'), '--json')).out);
    for (const f of files) {
      const x = run('getfattr', ['--only-values', '-n', 'user.ima', '-e', 'hex', f]);
      const hex =
        run('getfattr', ['-n', 'user.ima', '-e', 'hex', f]).stdout.match(/user\.ima=0x([0-9a-f]+)/)?.[1] ??
        '';
      assert.equal(x.status, 0, x.stderr);
      assert.equal(hex.slice(0, 6), '030211', 'v2, sm3'); // formats.md §0.1: sm3 = 17
      assert.equal(hex.slice(6, 14), info.keyid);
      const v = run('evmctl', ['ima_verify', '--xattr-user', '--key', join(k, 'cert.der'), f]);
      assert.equal(v.status, 0, v.stdout + v.stderr);
    }
    writeFileSync(files[0]!, 'changed\n');
    assert.notEqual(
      run('evmctl', ['ima_verify', '--xattr-user', '--key', join(k, 'cert.der'), files[0]!]).status,
      0,
    );
    // which kernels accept these signatures
    const ml = JSON.parse(
      (await imakit('keys', 'info', join(k, 'cert.der'), '--profile', 'linux-6.11', '--json')).out,
    );
    assert.equal(ml.ima.accepted, false);
    const k610 = JSON.parse(
      (await imakit('keys', 'info', join(k, 'cert.der'), '--profile', 'linux-6.10', '--json')).out,
    );
    assert.notEqual(k610.ima.accepted, false);
  } finally {
    cleanup();
  }
});
