/**
 * The modern per-file CLI: `imakit hash|sign|verify` and `imakit evm sign|hmac|verify`, in-process
 * through main(argv, memoryIo()), cross-checked with the real evmctl (both ways), fsverity,
 * openssl and the independent EVM reference (test/vectors/evm_ref.py); plus `imakit label
 * --type` and the progress bar on a real pseudo-terminal (util-linux `script`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { main } from '../../../src/cli/main.ts';
import { memoryIo } from '../../../src/cli/io.ts';
import { getXattr, setXattr } from '../../../src/host/fs/xattr.ts';
import { toHex } from '../../../src/core/bytes/bytes.ts';
import { REPO_ROOT, evmRefHmac, freshFile, tempDir, vectorPath, run } from '../../helpers.ts';

const RSA_KEY = vectorPath('rsa2048.key');
const RSA_CER = vectorPath('rsa2048.cer');
const P256_KEY = vectorPath('p256.key');
const P256_CER = vectorPath('p256.cer');
const SM2_KEY = vectorPath('sm2.key');
const SM2_CER = vectorPath('sm2.cer');
const UUID = '28b23254-9467-44c0-b6ba-34b12e85a26f';

async function imakit(args: string[], env: Record<string, string> = {}) {
  const io = memoryIo({ env });
  const status = await main(args, io);
  return { status, out: io.out(), err: io.err() };
}

const fresh = (dir: string, name: string, size = 4000): string => freshFile(dir, name, size);

const hexOf = (b: Uint8Array | null): string => (b === null ? '' : toHex(b));

test('hash: values equal evmctl ima_hash for several algorithms; --print writes nothing; JSON shape', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const f = fresh(dir, 'a');
    for (const algo of ['sha1', 'sha256', 'sha512', 'sm3']) {
      const ours = await imakit(['hash', '--print', '-a', algo, f]);
      assert.equal(ours.status, 0, ours.err);
      const theirs = run('evmctl', ['ima_hash', '-n', '-a', algo, f]).stdout.trim();
      assert.equal(ours.out, `${theirs}  ${f}\n`, algo);
    }
    assert.equal(getXattr(f, 'security.ima'), null, '--print must not write');
    const j = await imakit(['hash', '--json', f]);
    assert.equal(j.status, 0);
    const doc = JSON.parse(j.out) as {
      files: { path: string; ok: boolean; algo: string; value: string; written: boolean }[];
    };
    assert.equal(doc.files.length, 1);
    assert.deepEqual(
      {
        path: doc.files[0]!.path,
        ok: doc.files[0]!.ok,
        algo: doc.files[0]!.algo,
        written: doc.files[0]!.written,
      },
      { path: f, ok: true, algo: 'sha256', written: true },
    );
    assert.equal(hexOf(getXattr(f, 'security.ima')), doc.files[0]!.value);
    // evmctl writes the same bytes on a copy
    const g = join(dir, 'g');
    copyFileSync(f, g);
    run('evmctl', ['ima_hash', '-a', 'sha256', g]);
    assert.equal(hexOf(getXattr(g, 'security.ima')), doc.files[0]!.value);
    // --xattr-user
    assert.equal((await imakit(['hash', '-x', '-a', 'sha1', f])).status, 0);
    assert.match(hexOf(getXattr(f, 'user.ima')), /^01[0-9a-f]{40}$/);
  } finally {
    cleanup();
  }
});

test('hash/sign bad input: missing file (3), symlink and device (2), unknown algorithm (2); others still done, labels untouched', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const target = fresh(dir, 'target');
    const link = join(dir, 'link');
    symlinkSync(target, link);
    setXattr(target, 'security.ima', new Uint8Array([0x04, 0x04, ...new Uint8Array(32)]));
    const before = hexOf(getXattr(target, 'security.ima'));
    const ok = fresh(dir, 'ok');
    const r = await imakit(['hash', join(dir, 'missing'), ok]);
    assert.equal(r.status, 3);
    assert.match(r.err, /missing.*E_IO_READ/);
    assert.notEqual(getXattr(ok, 'security.ima'), null, 'the other file is still labelled');
    const s = await imakit(['hash', link]);
    assert.equal(s.status, 2);
    assert.match(s.err, /link.*symbolic link.*E_IO_NOT_REGULAR/);
    assert.equal(hexOf(getXattr(target, 'security.ima')), before, "the link's target is untouched");
    const d = await imakit(['sign', '-k', RSA_KEY, '/dev/null', '--json']);
    assert.equal(d.status, 2);
    const doc = JSON.parse(d.out) as { files: { ok: boolean; error: { code: string } }[] };
    assert.equal(doc.files[0]!.error.code, 'E_IO_NOT_REGULAR');
    assert.equal((await imakit(['hash', '-a', 'nope', ok])).status, 2);
    assert.equal((await imakit(['hash', '-a', 'streebog256', ok])).status, 4);
  } finally {
    cleanup();
  }
});

test('sign: RSA byte-identical to evmctl; RSA, P-256 and SM2 labels verify with evmctl ima_verify; --sigfile, --print, --keyid', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const f = fresh(dir, 'f');
    const p = await imakit(['sign', '--print', '-k', RSA_KEY, '-a', 'sha256', f]);
    assert.equal(p.status, 0, p.err);
    const theirs = run('evmctl', ['ima_sign', '-n', '-a', 'sha256', '--key', RSA_KEY, f]).stdout.trim();
    assert.equal(p.out, `${theirs}  ${f}\n`);
    assert.equal(getXattr(f, 'security.ima'), null);
    for (const [key, cer, algo] of [
      [RSA_KEY, RSA_CER, 'sha512'],
      [P256_KEY, P256_CER, 'sha256'],
      [SM2_KEY, SM2_CER, 'sm3'],
    ] as const) {
      const g = fresh(dir, `g-${algo}`);
      const r = await imakit(['sign', '-k', key, '-a', algo, '--sigfile', g]);
      assert.equal(r.status, 0, r.err);
      const v = run('evmctl', ['ima_verify', '--key', cer, g]);
      assert.equal(v.status, 0, `${algo}: ${v.stderr}`);
      assert.deepEqual(readFileSync(`${g}.sig`), Buffer.from(getXattr(g, 'security.ima')!));
    }
    const k = await imakit(['sign', '--print', '--json', '-k', RSA_KEY, '--keyid', 'aabbccdd', f]);
    const doc = JSON.parse(k.out) as { keyid: string; files: { value: string; kind: string }[] };
    assert.equal(doc.keyid, 'aabbccdd');
    assert.equal(doc.files[0]!.kind, 'signature');
    assert.match(doc.files[0]!.value, /^030204aabbccdd0100/);
  } finally {
    cleanup();
  }
});

test('sign: encrypted key with --pass or IMAKIT_KEY_PASSWORD; wrong passphrase and wrong key type exit 2 and write nothing', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const enc = join(dir, 'enc.pem');
    const g = run('openssl', [
      'genpkey',
      '-algorithm',
      'RSA',
      '-pkeyopt',
      'rsa_keygen_bits:2048',
      '-aes-256-cbc',
      '-pass',
      'pass:s3cret',
      '-out',
      enc,
    ]);
    assert.equal(g.status, 0, g.stderr);
    const pub = join(dir, 'enc.cer');
    const c = run('openssl', [
      'req',
      '-x509',
      '-new',
      '-key',
      enc,
      '-passin',
      'pass:s3cret',
      '-subj',
      '/CN=t',
      '-days',
      '1',
      '-outform',
      'DER',
      '-out',
      pub,
    ]);
    assert.equal(c.status, 0, c.stderr);
    const f = fresh(dir, 'f');
    const before = fresh(dir, 'before');
    setXattr(before, 'security.ima', new Uint8Array([1, ...new Uint8Array(20).fill(7)]));
    const bad = await imakit(['sign', '-k', enc, '-p', 'wrong', before]);
    assert.equal(bad.status, 2);
    assert.match(bad.err, /enc\.pem.*E_KEY_PASSPHRASE/);
    const missing = await imakit(['sign', '-k', enc, before]);
    assert.equal(missing.status, 2);
    assert.equal(hexOf(getXattr(before, 'security.ima')), '01' + '07'.repeat(20));
    const cert = await imakit(['sign', '-k', vectorPath('rsa2048.pub'), before]);
    assert.equal(cert.status, 2);
    assert.match(cert.err, /E_KEY_PARSE/);
    assert.equal(hexOf(getXattr(before, 'security.ima')), '01' + '07'.repeat(20));
    const viaEnv = await imakit(['sign', '-k', enc, f], { IMAKIT_KEY_PASSWORD: 's3cret' });
    assert.equal(viaEnv.status, 0, viaEnv.err);
    // the certificate's SKID (openssl: SHA-1 of the public key) is the key's own id, as imakit computes it
    assert.equal(run('evmctl', ['ima_verify', '--key', pub, f]).status, 0);
    assert.equal((await imakit(['verify', '--key', pub, f])).status, 0);
    assert.equal((await imakit(['sign', '-k', enc, '-p', 's3cret', '--print', f])).status, 0);
  } finally {
    cleanup();
  }
});

test('sign --verity: equals evmctl sign_hash --veritysig over `fsverity digest` output; imakit verify checks it', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const f = fresh(dir, 'v', 70000);
    const r = await imakit(['sign', '--verity', '--print', '-k', RSA_KEY, f]);
    assert.equal(r.status, 0, r.err);
    // evmctl 1.4 has no --veritysig: rebuild the sigv3 with fsverity + openssl instead. The signed
    // data is ima_file_id = 06 ‖ hash algo 04 (sha256) ‖ fs-verity digest (formats.md §3.3)
    const m = /^sha256:([0-9a-f]{64}) /.exec(run('fsverity', ['digest', f]).stdout);
    assert.ok(m, 'fsverity digest output');
    const fileId = join(dir, 'file_id');
    writeFileSync(fileId, Buffer.concat([Buffer.from([0x06, 0x04]), Buffer.from(m[1]!, 'hex')]));
    const sig = run('openssl', ['dgst', '-sha256', '-sign', RSA_KEY, fileId], { encoding: 'latin1' });
    const value = r.out.split('  ')[0]!;
    assert.equal(value.slice(0, 18), '0603044d0e4f4d0100');
    assert.equal(value.slice(18), Buffer.from(sig.stdout, 'latin1').toString('hex'));
    assert.equal((await imakit(['sign', '--verity', '-k', RSA_KEY, f])).status, 0);
    const v = await imakit(['verify', '--key', RSA_CER, f]);
    assert.equal(v.out, `${f}: ok (verity-signature rsa-2048 sha256 keyid 4d0e4f4d)\n`);
    assert.equal((await imakit(['sign', '--verity', '-a', 'sha1', '-k', RSA_KEY, f])).status, 4);
  } finally {
    cleanup();
  }
});

test('verify: accepts what evmctl ima_sign/ima_hash wrote; per-file lines; exit 1 on any failure; JSON verdicts', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const signed = fresh(dir, 'signed');
    const tampered = fresh(dir, 'tampered');
    const hashed = fresh(dir, 'hashed');
    const badHash = fresh(dir, 'badhash');
    const plain = fresh(dir, 'plain');
    const ecdsa = fresh(dir, 'ecdsa');
    run('evmctl', ['ima_sign', '-a', 'sha256', '--key', RSA_KEY, signed]);
    run('evmctl', ['ima_sign', '-a', 'sha256', '--key', RSA_KEY, tampered]);
    writeFileSync(tampered, 'changed');
    run('evmctl', ['ima_hash', '-a', 'sha256', hashed]);
    run('evmctl', ['ima_hash', '-a', 'sha512', badHash]);
    writeFileSync(badHash, 'changed');
    run('evmctl', ['ima_sign', '-a', 'sha384', '--key', P256_KEY, ecdsa]);
    const good = await imakit(['verify', '--key', `${RSA_CER},${P256_CER}`, signed, hashed, ecdsa]);
    assert.equal(good.status, 0, good.out + good.err);
    assert.equal(
      good.out,
      `${signed}: ok (signature rsa-2048 sha256 keyid 4d0e4f4d)\n${hashed}: ok (hash sha256)\n` +
        `${ecdsa}: ok (signature ec-P-256 sha384 keyid ${run('evmctl', ['ima_sign', '-n', '--key', P256_KEY, ecdsa]).stdout.slice(6, 14)})\n`,
    );
    const mixed = await imakit([
      'verify',
      '--key',
      RSA_CER,
      '--key',
      P256_CER,
      signed,
      tampered,
      badHash,
      plain,
    ]);
    assert.equal(mixed.status, 1);
    assert.deepEqual(mixed.out.trim().split('\n'), [
      `${signed}: ok (signature rsa-2048 sha256 keyid 4d0e4f4d)`,
      `${tampered}: FAILED invalid-signature`,
      `${badHash}: FAILED invalid-hash`,
      `${plain}: no label`,
    ]);
    const unknown = await imakit(['verify', '--key', P256_CER, signed]);
    assert.equal(unknown.status, 1);
    assert.equal(unknown.out, `${signed}: FAILED unknown-key 4d0e4f4d\n`);
    const j = await imakit(['verify', '--json', '--key', RSA_CER, signed, tampered, join(dir, 'missing')]);
    assert.equal(j.status, 3, 'an unreadable file wins over a failed one');
    const doc = JSON.parse(j.out) as {
      ok: boolean;
      files: { path: string; status: string; code?: string; kind?: string; notEstablished: string[] }[];
    };
    assert.equal(doc.ok, false);
    assert.deepEqual(
      doc.files.map((v) => [v.status, v.code ?? null]),
      [
        ['pass', null],
        ['fail', 'E_SIG_INVALID'],
        ['error', 'E_IO_READ'],
      ],
    );
    assert.ok(doc.files[0]!.notEstablished.some((s) => s.startsWith('key trust')));
    // malformed label: a fail with the codec's code, no crash
    setXattr(plain, 'security.ima', new Uint8Array([0x03, 0x02, 0x04, 1, 2, 3, 4, 0xff, 0xff]));
    const m = await imakit(['verify', '--json', plain]);
    assert.equal(m.status, 1);
    assert.match((JSON.parse(m.out) as { files: { code: string }[] }).files[0]!.code, /^E_CODEC_/);
    // an unreadable key file is an I/O error naming it
    const bk = await imakit(['verify', '--key', join(dir, 'nokey.der'), signed]);
    assert.equal(bk.status, 3);
    assert.match(bk.err, /nokey\.der/);
  } finally {
    cleanup();
  }
});

test('evm sign: verified by evmctl verify with the same metadata flags, both ways; portable; tamper detected', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const a = fresh(dir, 'a');
    const r = await imakit(['evm', 'sign', '--imasig', '-k', RSA_KEY, '--uuid', UUID, a]);
    assert.equal(r.status, 0, r.err);
    assert.match(hexOf(getXattr(a, 'security.evm')), /^0302044d0e4f4d0100/);
    assert.equal(run('evmctl', ['verify', `--uuid=${UUID}`, '--key', RSA_CER, a]).status, 0);
    assert.equal(run('evmctl', ['ima_verify', '--key', RSA_CER, a]).status, 0);
    const v = await imakit(['evm', 'verify', '--uuid', UUID, '--key', RSA_CER, a]);
    assert.equal(v.out, `${a}: ok (signature rsa-2048 sha256 keyid 4d0e4f4d)\n`);
    // evmctl's value, verified by imakit (evmctl's xattr list)
    const b = fresh(dir, 'b');
    run('evmctl', ['sign', '--imahash', '-u', '--generation', '7', '--key', RSA_KEY, b]);
    const vb = await imakit([
      'evm',
      'verify',
      '--evm-config',
      'evmctl',
      '--no-uuid',
      '--generation',
      '7',
      '--key',
      RSA_CER,
      b,
    ]);
    assert.equal(vb.status, 0, vb.out + vb.err);
    const wrongGen = await imakit(['evm', 'verify', '--no-uuid', '--generation', '8', '--key', RSA_CER, b]);
    assert.equal(wrongGen.status, 1);
    assert.equal(wrongGen.out, `${b}: FAILED invalid-signature\n`);
    // portable 0x05: evmctl verify needs no UUID or generation
    const c = fresh(dir, 'c');
    assert.equal((await imakit(['evm', 'sign', '--portable', '--imahash', '-k', RSA_KEY, c])).status, 0);
    assert.match(hexOf(getXattr(c, 'security.evm')), /^0502/);
    assert.equal(run('evmctl', ['verify', '--key', RSA_CER, c]).status, 0);
    // metadata change (mode) breaks it for both tools
    run('chmod', ['0600', c]);
    assert.notEqual(run('evmctl', ['verify', '--key', RSA_CER, c]).status, 0);
    const vc = await imakit(['evm', 'verify', '--key', RSA_CER, c]);
    assert.equal(vc.status, 1);
    // portable without security.ima: bad input naming the file, nothing written
    const d = fresh(dir, 'd');
    const nd = await imakit(['evm', 'sign', '--portable', '-k', RSA_KEY, d]);
    assert.equal(nd.status, 2);
    assert.match(
      nd.err,
      /\/d, field security\.ima: a portable EVM signature needs security\.ima.*E_XATTR_MISSING/,
    );
    assert.equal(getXattr(d, 'security.evm'), null);
    // --print: JSON, nothing written
    const e = fresh(dir, 'e');
    const pj = await imakit(['evm', 'sign', '--print', '--json', '--imahash', '--no-uuid', '-k', RSA_KEY, e]);
    const doc = JSON.parse(pj.out) as {
      files: { ok: boolean; ima: string; evm: string; written: boolean }[];
    };
    assert.equal(doc.files[0]!.written, false);
    assert.match(doc.files[0]!.ima, /^0404/);
    assert.match(doc.files[0]!.evm, /^0302/);
    assert.equal(getXattr(e, 'security.evm'), null);
    assert.equal((await imakit(['evm', 'sign', '--evm-config', 'nope', '-k', RSA_KEY, e])).status, 2);
  } finally {
    cleanup();
  }
});

test('evm hmac: equals the independent evm_ref.py HMAC over the real file; --kmk/--evm-key equals the plain key; verify', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const f = fresh(dir, 'f');
    const key = vectorPath('evm-key-plain.bin');
    const uuid = randomUUID();
    const r = await imakit(['evm', 'hmac', '--imahash', '--hmac-key', key, '--uuid', uuid, f]);
    assert.equal(r.status, 0, r.err);
    const ref = evmRefHmac(f, key, uuid);
    assert.equal(hexOf(getXattr(f, 'security.evm')), '02' + ref);
    assert.equal(r.out.split('\n')[1], `${f}: evm 02${ref}`);
    // the kernel's encrypted evm-key blob decrypted with its master key gives the same HMAC
    const kmk = join(dir, 'kmk');
    const blob = join(dir, 'evm-key');
    const plain = join(dir, 'evm-plain');
    const mk = await imakit(['keys', 'kmk', 'new', '--out', kmk]);
    assert.equal(mk.status, 0, mk.err);
    const ek = await imakit(['keys', 'evmkey', 'new', '--kmk', kmk, '--out', blob, '--plain-out', plain]);
    assert.equal(ek.status, 0, ek.err);
    const viaPlain = await imakit(['evm', 'hmac', '--print', '--hmac-key', plain, '--uuid', uuid, f]);
    const viaBlob = await imakit([
      'evm',
      'hmac',
      '--print',
      '--kmk',
      kmk,
      '--evm-key',
      blob,
      '--uuid',
      uuid,
      f,
    ]);
    assert.equal(viaBlob.status, 0, viaBlob.err);
    assert.equal(viaBlob.out, viaPlain.out);
    const wrongKmk = fresh(dir, 'wrong-kmk', 32);
    const wk = await imakit([
      'evm',
      'hmac',
      '--print',
      '--kmk',
      wrongKmk,
      '--evm-key',
      blob,
      '--uuid',
      uuid,
      f,
    ]);
    assert.notEqual(wk.status, 0);
    assert.match(wk.err, /E_EVMKEY_MAC/);
    // verify the HMAC written above; a different key or UUID fails
    const ok = await imakit(['evm', 'verify', '--hmac-key', key, '--uuid', uuid, f]);
    assert.equal(ok.out, `${f}: ok (hmac sha1)\n`);
    const bad = await imakit(['evm', 'verify', '--hmac-key', plain, '--uuid', uuid, f]);
    assert.equal(bad.status, 1);
    assert.equal(bad.out, `${f}: FAILED invalid-hmac\n`);
    const nokey = await imakit(['evm', 'verify', '--json', '--uuid', uuid, f]);
    assert.equal(nokey.status, 4);
    assert.equal((JSON.parse(nokey.out) as { files: { status: string }[] }).files[0]!.status, 'unsupported');
    assert.equal((await imakit(['evm', 'hmac', '--kmk', kmk, f])).status, 2);
  } finally {
    cleanup();
  }
});

test('label --type: x skips files with both xattrs, m stays on one filesystem, other letters are refused', async () => {
  const { dir, cleanup } = tempDir();
  try {
    mkdirSync(join(dir, 't'));
    const a = fresh(join(dir, 't'), 'a');
    const b = fresh(join(dir, 't'), 'b');
    setXattr(a, 'user.ima', new Uint8Array([1, ...new Uint8Array(20)]));
    setXattr(a, 'user.evm', new Uint8Array([2, ...new Uint8Array(20)]));
    const r = await imakit(['label', '-x', '--type', 'fx', '--json', join(dir, 't')]);
    assert.equal(r.status, 0, r.err);
    const rep = JSON.parse(r.out) as { files: number; labelled: number; skipped: number };
    assert.deepEqual([rep.files, rep.labelled, rep.skipped], [1, 1, 1]);
    assert.equal(hexOf(getXattr(a, 'user.ima')), '01' + '00'.repeat(20), 'x: not rewritten');
    assert.match(hexOf(getXattr(b, 'user.ima')), /^0404/);
    // m: /dev/shm is its own tmpfs below /dev (devtmpfs); with m the walk of /dev does not enter it
    const shm = mkdtempSync('/dev/shm/imakit-test-');
    try {
      fresh(shm, 'in-shm', 10);
      const count = async (type: string) => {
        const o = await imakit(['label', '-x', '--dry-run', '--json', '--type', type, '/dev']);
        return (JSON.parse(o.out) as { files: number }).files;
      };
      const all = await count('f');
      assert.ok(all >= 1, 'the file in /dev/shm is found without m');
      assert.ok((await count('fm')) < all, 'm stays on /dev');
    } finally {
      rmSync(shm, { recursive: true, force: true });
    }
    assert.equal((await imakit(['label', '--type', 'fd', join(dir, 't')])).status, 2);
  } finally {
    cleanup();
  }
});

test('label draws a progress bar on a terminal (script(1) pty) and stays silent with --json', () => {
  const { dir, cleanup } = tempDir();
  try {
    // enough files that the run takes over the bar's 1 s delay even on a fast machine
    const root = join(dir, 'tree');
    for (let d = 0; d < 25; d++) {
      mkdirSync(join(root, `d${d}`), { recursive: true });
      for (let i = 0; i < 160; i++) writeFileSync(join(root, `d${d}`, `f${i}`), randomBytes(2048));
    }
    const bin = join(REPO_ROOT, 'bin/imakit.js');
    const cmd = (extra: string) => `node ${bin} label --sign -k ${RSA_KEY} --workers 1 -x ${extra} ${root}`;
    const env = { ...process.env };
    delete env.CI;
    const tty = run('script', ['-qec', cmd(''), '/dev/null'], { env });
    assert.equal(tty.status, 0, tty.stdout + tty.stderr);
    assert.match(tty.stdout, /label \[[^\]]*\] \d+% \d+\/\d+ files/);
    assert.match(tty.stdout, /4000 files: 4000 labelled/);
    const json = run('script', ['-qec', cmd('--json --dry-run'), '/dev/null'], { env });
    assert.equal(json.status, 0);
    assert.doesNotMatch(json.stdout, /label \[/);
    assert.equal((JSON.parse(json.stdout.replace(/\r/g, '')) as { unchanged: number }).unchanged, 4000);
    // not a terminal: silent
    const pipe = run('node', [bin, 'label', '--sign', '-k', RSA_KEY, '--workers', '1', '-x', root], { env });
    assert.doesNotMatch(pipe.stderr, /label \[/);
    assert.ok(existsSync(root));
  } finally {
    cleanup();
  }
});
