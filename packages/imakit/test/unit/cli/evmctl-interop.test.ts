/**
 * `imakit evmctl` against the real evmctl (ima-evm-utils 1.4), both ways, on fresh files and keys.
 * Runs in-process through main(argv, memoryIo()) and checks results with evmctl/getfattr.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, writeFileSync, symlinkSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { main } from '../../../src/cli/main.ts';
import { memoryIo } from '../../../src/cli/io.ts';
import { freshFile, tempDir, vectorPath, vectorOutputLine, run } from '../../helpers.ts';

const RSA_KEY = vectorPath('rsa2048.key');
const RSA_CER = vectorPath('rsa2048.cer');
const P256_KEY = vectorPath('p256.key');
const P256_CER = vectorPath('p256.cer');
const SM2_KEY = vectorPath('sm2.key');
const SM2_CER = vectorPath('sm2.cer');

async function imakit(args: string[], stdin?: string) {
  const io = memoryIo(stdin === undefined ? {} : { stdin });
  const status = await main(['evmctl', ...args], io);
  return { status, stdout: io.out(), stderr: io.err() };
}

function xattrHex(path: string, name: string): string {
  const r = run('getfattr', ['--only-values', '-e', 'hex', '-n', name, path]);
  if (r.status !== 0) return '';
  return Buffer.from(
    run('getfattr', ['--only-values', '-n', name, path], { encoding: 'latin1' }).stdout,
    'latin1',
  ).toString('hex');
}

const fresh = (dir: string, name: string, size = 3000): string => freshFile(dir, name, size);

/** Inode fields forced on the command line, so both tools hash identical metadata. */
const FIXED_INODE = ['--ino', '1000', '--generation', '12345', '--uid', '0', '--gid', '0', '--mode', '33188'];

test('ima_hash -n: output identical to evmctl for every algorithm both support', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const f = fresh(dir, 'a.bin', 5000);
    for (const algo of ['md5', 'sha1', 'sha224', 'sha256', 'sha384', 'sha512', 'rmd160', 'sm3']) {
      const ours = await imakit(['ima_hash', '-n', '-a', algo, f]);
      const theirs = run('evmctl', ['ima_hash', '-n', '-a', algo, f]);
      assert.equal(ours.status, 0, algo);
      assert.equal(ours.stdout, theirs.stdout, algo);
    }
    // case-sensitive names like evmctl
    assert.notEqual((await imakit(['ima_hash', '-n', '-a', 'SHA1', f])).status, 0);
  } finally {
    cleanup();
  }
});

test('ima_hash writes the same security.ima (and user.ima) as evmctl', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const a = fresh(dir, 'a');
    const b = join(dir, 'b');
    copyFileSync(a, b);
    assert.equal((await imakit(['ima_hash', '-a', 'sha256', a])).status, 0);
    run('evmctl', ['ima_hash', '-a', 'sha256', b]);
    assert.notEqual(xattrHex(a, 'security.ima'), '');
    assert.equal(xattrHex(a, 'security.ima'), xattrHex(b, 'security.ima'));
    assert.equal((await imakit(['ima_hash', '--xattr-user', '-a', 'sha1', a])).status, 0);
    run('evmctl', ['ima_hash', '--xattr-user', '-a', 'sha1', b]);
    assert.equal(xattrHex(a, 'user.ima'), xattrHex(b, 'user.ima'));
  } finally {
    cleanup();
  }
});

test('ima_sign RSA: byte-identical to evmctl (-n and xattr), verifies with evmctl ima_verify, and vice versa', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const a = fresh(dir, 'a');
    const b = join(dir, 'b');
    copyFileSync(a, b);
    for (const algo of ['sha1', 'sha256', 'sha512']) {
      const ours = await imakit(['ima_sign', '-n', '-a', algo, '--key', RSA_KEY, a]);
      const theirs = run('evmctl', ['ima_sign', '-n', '-a', algo, '--key', RSA_KEY, a]);
      assert.equal(ours.stdout, theirs.stdout, algo);
    }
    assert.equal((await imakit(['ima_sign', '-a', 'sha256', '--key', RSA_KEY, a])).status, 0);
    run('evmctl', ['ima_sign', '-a', 'sha256', '--key', RSA_KEY, b]);
    assert.equal(xattrHex(a, 'security.ima'), xattrHex(b, 'security.ima'));
    const v = run('evmctl', ['ima_verify', '--key', RSA_CER, a]);
    assert.equal(v.status, 0, v.stderr);
    assert.match(v.stderr, /verification is OK/);
    const ours = await imakit(['ima_verify', '--key', RSA_CER, b]);
    assert.equal(ours.status, 0, ours.stderr);
    assert.match(ours.stderr, new RegExp(`${b}: verification is OK`));
  } finally {
    cleanup();
  }
});

test('ima_verify exit statuses equal evmctl: ok, one of several failed, missing file, no signature, unknown key', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const good = fresh(dir, 'good');
    const bad = fresh(dir, 'bad');
    const plain = fresh(dir, 'plain');
    run('evmctl', ['ima_sign', '--xattr-user', '--key', RSA_KEY, good]);
    run('evmctl', ['ima_sign', '--xattr-user', '--key', RSA_KEY, bad]);
    writeFileSync(bad, 'changed');
    run('evmctl', ['ima_hash', '--xattr-user', plain]);
    const cases: string[][] = [[good], [good, bad], [join(dir, 'missing')], [plain]];
    for (const files of cases) {
      const theirs = run('evmctl', ['ima_verify', '--xattr-user', '--key', RSA_CER, ...files]);
      const ours = await imakit(['ima_verify', '--xattr-user', '--key', RSA_CER, ...files]);
      assert.equal(ours.status, theirs.status, files.join(' '));
    }
    const theirs = run('evmctl', ['ima_verify', '--xattr-user', '--key', P256_CER, good]);
    const ours = await imakit(['ima_verify', '--xattr-user', '--key', P256_CER, good]);
    assert.equal(ours.status, theirs.status);
    assert.equal(ours.status, 1);
    assert.match(ours.stderr, /4d0e4f4d \(unknown keyid\)/);
    // --key accepts a list
    assert.equal(
      (await imakit(['ima_verify', '--xattr-user', '--key', `${P256_CER},${RSA_CER}`, good])).status,
      0,
    );
  } finally {
    cleanup();
  }
});

test('ECDSA and SM2 signatures interoperate both ways; seed 003 line works (-a sm3 -s -k SM2 -r -t f DIR)', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const tree = join(dir, 'tree');
    mkdirSync(join(tree, 'sub'), { recursive: true });
    const files = [fresh(tree, 'x'), fresh(join(tree, 'sub'), 'y'), fresh(tree, 'z', 0)];
    symlinkSync('x', join(tree, 'link'));
    const r = await imakit(['ima_sign', '-a', 'sm3', '-s', '-k', SM2_KEY, '-r', '-t', 'f', tree]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim().split('\n').length, 3);
    const v = run('evmctl', ['ima_verify', '--key', SM2_CER, ...files]);
    assert.equal(v.status, 0, v.stderr);
    // the SM2 signature is also an openssl-verifiable signature over the bare SM3 digest (pitfall 15)
    const sig = Buffer.from(xattrHex(files[0]!, 'security.ima'), 'hex');
    assert.equal(sig.readUInt16BE(7), sig.length - 9);
    // evmctl → imakit, P-256
    const p = fresh(dir, 'p');
    run('evmctl', ['ima_sign', '-a', 'sha384', '--key', P256_KEY, p]);
    assert.equal((await imakit(['ima_verify', '--key', P256_CER, p])).status, 0);
    const q = fresh(dir, 'q');
    assert.equal((await imakit(['ima_sign', '-a', 'sha256', '--key', P256_KEY, q])).status, 0);
    assert.equal(run('evmctl', ['ima_verify', '--key', P256_CER, q]).status, 0);
  } finally {
    cleanup();
  }
});

test('EVM sign/verify both ways (0x03 with -u and --generation, portable 0x05 with --imahash); seed 002 positional key', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const a = fresh(dir, 'a');
    const b = fresh(dir, 'b');
    const meta = ['-u', '--generation', '0'];
    // seed 002: sign --imasig FILE KEY (the key as second positional argument)
    const s = await imakit(['sign', '--imasig', ...meta, a, RSA_KEY]);
    assert.equal(s.status, 0, s.stderr);
    assert.match(xattrHex(a, 'security.evm'), /^0302044d0e4f4d0100/);
    assert.equal(run('evmctl', ['verify', ...meta, '--key', RSA_CER, a]).status, 0);
    assert.equal(run('evmctl', ['ima_verify', '--key', RSA_CER, a]).status, 0);
    run('evmctl', ['sign', '--imasig', ...meta, '--key', RSA_KEY, b]);
    assert.equal((await imakit(['verify', ...meta, '--key', RSA_CER, b])).status, 0);
    // a metadata change breaks it for both
    const theirs = run('evmctl', ['verify', '-u', '--generation', '1', '--key', RSA_CER, b]);
    const ours = await imakit(['verify', '-u', '--generation', '1', '--key', RSA_CER, b]);
    assert.equal(ours.status, theirs.status);
    assert.notEqual(ours.status, 0);
    // identical EVM signature when the inputs are identical (same inode fields forced)
    const forced = ['--uuid=28b23254-9467-44c0-b6ba-34b12e85a26f', ...FIXED_INODE, '-n'];
    const ev = run('evmctl', ['sign', ...forced, '--key', RSA_KEY, b])
      .stdout.trim()
      .split('\n')
      .pop();
    const im = (await imakit(['sign', ...forced, '--key', RSA_KEY, b])).stdout.trim().split('\n').pop();
    assert.equal(im, ev);
    // portable: seed 002 --imahash variant, -o
    const c = fresh(dir, 'c');
    assert.equal((await imakit(['sign', '-o', '--imahash', c, RSA_KEY])).status, 0);
    assert.match(xattrHex(c, 'security.evm'), /^0502/);
    assert.equal(run('evmctl', ['verify', '--key', RSA_CER, c]).status, 0);
  } finally {
    cleanup();
  }
});

test('hmac is kernel-correct: equals the shared vector (SHA-1, 128-byte key, with and without UUID)', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const f = join(dir, 'hello.txt');
    copyFileSync(vectorPath('hello.txt'), f);
    const key = vectorPath('evm-key-plain.bin');
    const ima = '0404a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447';
    const common = ['--hmackey', key, '--ima', ima, ...FIXED_INODE, '-n', '--caps'];
    const withUuid = await imakit(['hmac', ...common, '--uuid=28b23254-9467-44c0-b6ba-34b12e85a26f', f]);
    assert.equal(withUuid.status, 0, withUuid.stderr);
    assert.equal(withUuid.stdout.trim(), '02debcd8116442ae9303c630cfaf20238750ad7d18');
    const noUuid = await imakit(['hmac', ...common, '-u', f]);
    assert.match(noUuid.stdout.trim(), /^028eb4581c[0-9a-f]{28}bb81$/);
  } finally {
    cleanup();
  }
});

test('sign_hash: same output as evmctl for sha256sum lines; --veritysig gives 06 03 sigv3 verifiable by imakit', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const f = fresh(dir, 'a');
    const line = run('sha256sum', [f]).stdout;
    const ours = await imakit(['sign_hash', '--key', RSA_KEY], line);
    const theirs = run('evmctl', ['sign_hash', '--key', RSA_KEY], { input: line });
    assert.equal(ours.stdout, theirs.stdout);
    const v = await imakit(
      ['sign_hash', '--veritysig', '--key', RSA_KEY],
      `sha256:${'ab'.repeat(32)} ${f}\n`,
    );
    assert.equal(v.status, 0);
    assert.match(v.stdout, /^sha256:(ab){32} \S+ 0603044d0e4f4d0100[0-9a-f]{512}\n$/);
    assert.equal((await imakit(['sign_hash', '--key', RSA_KEY], '')).status, 125);
    // the evmctl 1.6 vector (fsverity digest | evmctl sign_hash --veritysig), RSA is deterministic
    const expected = vectorOutputLine(
      'sha256:37061ef2ac4c21bec68489b56138c5780306a4ad7fe6676236ecdf2c9027cd92 hello.txt 06',
    );
    const input = expected.split(' ').slice(0, 2).join(' ') + '\n';
    assert.equal(
      (await imakit(['sign_hash', '--veritysig', '--key', RSA_KEY], input)).stdout,
      expected + '\n',
    );
  } finally {
    cleanup();
  }
});

test('bad input: missing file, symlink, device, wrong passphrase, wrong key type leave labels untouched', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const f = fresh(dir, 'f');
    run('evmctl', ['ima_hash', f]);
    const before = xattrHex(f, 'security.ima');
    // missing: same status as evmctl
    const missing = join(dir, 'missing');
    assert.equal((await imakit(['ima_hash', missing])).status, run('evmctl', ['ima_hash', missing]).status);
    assert.equal((await imakit(['ima_sign', '--key', RSA_KEY, missing])).status, 125);
    const link = join(dir, 'link');
    symlinkSync(f, link);
    const l = await imakit(['ima_sign', '--key', RSA_KEY, link]);
    assert.equal(l.status, 125);
    assert.match(l.stderr, /symbolic link.*E_IO_NOT_REGULAR/);
    assert.equal(xattrHex(f, 'security.ima'), before);
    const d = await imakit(['ima_hash', '-n', '/dev/null']);
    assert.equal(d.status, 125);
    assert.match(d.stderr, /E_IO_NOT_REGULAR/);
    // encrypted key, wrong passphrase
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const enc = join(dir, 'enc.pem');
    writeFileSync(
      enc,
      privateKey.export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: 'right' }),
    );
    const wrong = await imakit(['sign', '--imasig', '-u', '--generation', '0', '-pwrong', '--key', enc, f]);
    assert.equal(wrong.status, 125);
    assert.match(wrong.stderr, /E_KEY_PASSPHRASE/);
    assert.equal(xattrHex(f, 'security.ima'), before);
    assert.equal(xattrHex(f, 'security.evm'), '');
    const right = await main(
      ['evmctl', 'ima_sign', '-n', '--key', enc, f],
      memoryIo({ env: { EVMCTL_KEY_PASSWORD: 'right' } }),
    );
    assert.equal(right, 0);
    // a certificate is not a signing key
    const notKey = await imakit(['ima_sign', '--key', RSA_CER, f]);
    assert.equal(notKey.status, 125);
    assert.equal(xattrHex(f, 'security.ima'), before);
  } finally {
    cleanup();
  }
});

test('ima_setxattr / --sigfile / ima_clear / convert', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const f = fresh(dir, 'f');
    assert.equal((await imakit(['ima_sign', '-f', '-n', '--key', RSA_KEY, f])).status, 0);
    assert.equal(xattrHex(f, 'security.ima'), '');
    assert.equal((await imakit(['ima_verify', '-f', '--key', RSA_CER, f])).status, 0);
    assert.equal((await imakit(['ima_setxattr', f])).status, 0);
    assert.equal(xattrHex(f, 'security.ima'), readFileSync(`${f}.sig`).toString('hex'));
    assert.equal(run('evmctl', ['ima_verify', '--key', RSA_CER, f]).status, 0);
    assert.equal((await imakit(['ima_clear', f])).status, 0);
    assert.equal(xattrHex(f, 'security.ima'), '');
    const pub = join(dir, 'pub.pem');
    copyFileSync(vectorPath('rsa2048.pub'), pub);
    assert.equal((await imakit(['convert', pub])).status, 0);
    assert.match(readFileSync(`${pub}.keyid`, 'utf8'), /^[0-9A-F]{1,16}$/);
    assert.equal(readFileSync(`${pub}.bin`)[0], 1);
    // unknown command and no command
    assert.equal((await imakit(['nonsense'])).status, 125);
    assert.equal((await imakit([])).status, 0);
  } finally {
    cleanup();
  }
});
