/**
 * `imakit policy`, `imakit preflight` and `imakit emulate`, run in-process. Preflight runs on a fresh
 * tree labelled here with setfattr (needs root for security.* xattrs), and its verdicts are checked
 * against what real-kernel.md §7 says the kernel does with such labels.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { main } from '../../../src/cli/main.ts';
import { memoryIo } from '../../../src/cli/io.ts';
import { run, tempDir, vectorPath } from '../../helpers.ts';
import { loadPrivateKey } from '../../../src/core/keys/keys.ts';
import { signImaDigest } from '../../../src/core/labels/ima-signature.ts';
import { hashAlgoByName } from '../../../src/core/hash/hash-algo.ts';
import { createEvmKeyBlob } from '../../../src/core/evm/evm-key-blob.ts';
import { resolveEvmConfig } from '../../../src/core/evm/evm-config.ts';
import { parseUuid } from '../../../src/core/bytes/uuid.ts';
import { evmLabelFile } from '../../../src/host/label/evm-file.ts';

async function cli(args: string[]) {
  const io = memoryIo();
  const code = await main(args, io);
  return { code, out: io.out(), err: io.err() };
}

test('policy check: every diagnostic with line:col and token, exit 2; valid policy exit 0', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const bad = join(dir, 'bad.policy');
    writeFileSync(
      bad,
      'measure func=FILE_CHECK\nappraise template=ima-sig\ndont_audit\nmeasure mask=MAY_READ mask=MAY_EXEC\n',
    );
    const r = await cli(['policy', 'check', bad]);
    assert.equal(r.code, 2);
    assert.match(r.out, /bad\.policy:2:10: error E_POLICY_COMBINATION at 'template=ima-sig'/);
    assert.match(r.out, /bad\.policy:3:1: error E_POLICY_UNKNOWN_KEYWORD at 'dont_audit'/);
    assert.match(r.out, /bad\.policy:4:23: error E_POLICY_DUPLICATE at 'mask=MAY_EXEC'/);
    const j = JSON.parse((await cli(['policy', 'check', bad, '--json'])).out);
    assert.equal(j.ok, false);
    assert.equal(j.diagnostics.length, 3);
    const good = join(dir, 'good.policy');
    writeFileSync(good, '# comment\nmeasure mask=^MAY_READ func=FILE_CHECK euid=0\n');
    assert.equal((await cli(['policy', 'check', good])).code, 0);
    assert.equal(
      (await cli(['policy', 'fmt', good])).out,
      'measure func=FILE_CHECK mask=^MAY_READ euid=0 \n',
    );
    // the same rule is refused by the Debian 6.1 profile when it needs modsig
    writeFileSync(good, 'appraise func=MODULE_CHECK appraise_type=imasig|modsig\n');
    assert.equal((await cli(['policy', 'check', good])).code, 0);
    assert.equal((await cli(['policy', 'check', good, '--profile', 'debian-6.1'])).code, 2);
  } finally {
    cleanup();
  }
});

test('policy builtin and explain', async () => {
  const b = await cli(['policy', 'builtin', 'appraise_tcb']);
  assert.equal(b.code, 0);
  assert.equal(b.out.trim().split('\n').at(-1), 'appraise fowner=0');
  assert.equal((await cli(['policy', 'builtin', 'nope'])).code, 2);
  const e = JSON.parse(
    (
      await cli([
        'policy',
        'explain',
        '--builtin',
        'tcb',
        '--path',
        '/nonexistent/x',
        '--op',
        'read',
        '--uid',
        '1000',
        '--json',
      ])
    ).out,
  );
  const m = e.results[0].actions.measure;
  assert.equal(m.decided, false, 'tcb does not measure uid 1000 reads of root files? (uid=0 rules)');
  const e2 = JSON.parse(
    (
      await cli([
        'policy',
        'explain',
        '--builtin',
        'tcb',
        '--path',
        '/nonexistent/x',
        '--op',
        'read',
        '--fsmagic',
        'tmpfs',
        '--json',
      ])
    ).out,
  );
  assert.equal(e2.results[0].actions.measure.action, 'dont_measure');
  assert.equal(e2.results[0].actions.measure.rule, 4);
});

test('preflight on a labelled tree: decisions and causes per file and op, JSON shape, label hint', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const root = join(dir, 'root');
    mkdirSync(join(root, 'bin'), { recursive: true });
    const put = (p: string, c: string, ima?: string) => {
      writeFileSync(join(root, p), c);
      if (ima) assert.equal(run('setfattr', ['-n', 'security.ima', '-v', ima, join(root, p)]).status, 0);
    };
    const sha = (a: string, c: string) => createHash(a).update(c).digest('hex');
    put('good.txt', 'good\n', `0x0404${sha('sha256', 'good\n')}`);
    put('sha1.txt', 'one\n', `0x01${sha('sha1', 'one\n')}`);
    put('bad.txt', 'bad\n', `0x0404${sha('sha256', 'other\n')}`);
    put('none.txt', 'none\n');
    put('garbage.txt', 'g\n', '0xdeadbeef');
    put('x512.txt', 'x\n', `0x0406${sha('sha512', 'x\n')}`);
    put('user.txt', 'u\n');
    chownSync(join(root, 'user.txt'), 1000, 1000);
    copyFileSync('/bin/true', join(root, 'bin/true'));
    chmodSync(join(root, 'bin/true'), 0o755);
    const r = await cli([
      'preflight',
      root,
      '--builtin',
      'appraise_tcb',
      '--profile',
      'debian-6.1',
      '--json',
    ]);
    assert.equal(r.code, 1, r.err);
    const j = JSON.parse(r.out) as {
      results: Array<{
        path: string;
        op: string;
        decision: string;
        auditOp: string | null;
        cause: string | null;
      }>;
      summary: Record<string, unknown>;
    };
    const got = Object.fromEntries(
      j.results.map((x) => [`${x.path}/${x.op}`, `${x.decision} ${x.auditOp ?? '-'}:${x.cause ?? '-'}`]),
    );
    assert.deepEqual(got, {
      'good.txt/read': 'allowed -:-',
      'sha1.txt/read': 'allowed -:-',
      'bad.txt/read': 'denied appraise_data:invalid-hash',
      'none.txt/read': 'denied appraise_data:missing-hash',
      'garbage.txt/read': 'denied appraise_data:unknown-ima-data',
      'x512.txt/read': 'denied collect_data:failed',
      'user.txt/read': 'allowed -:-',
      'bin/true/read': 'denied appraise_data:missing-hash',
      'bin/true/exec': 'denied appraise_data:missing-hash',
    });
    assert.equal(j.summary.hashed, 3, 'only files whose decision depends on their digest are hashed');
    // log mode: nothing denied, the causes are still reported
    const l = JSON.parse(
      (
        await cli([
          'preflight',
          root,
          '--builtin',
          'appraise_tcb',
          '--profile',
          'debian-6.1',
          '--appraise',
          'log',
          '--json',
        ])
      ).out,
    );
    assert.equal(l.summary.denied, 0);
    assert.equal(l.results.find((x: { path: string }) => x.path === 'bad.txt').cause, 'invalid-hash');
    // human output ends with the command that fixes the labels
    const h = await cli(['preflight', root, '--builtin', 'appraise_tcb', '--profile', 'debian-6.1']);
    assert.match(h.out, /denied: appraise_data\/missing-hash \(3\)/);
    assert.match(h.out, new RegExp(`fix: imakit label --hash -a sha256 ${root}`));
    // a policy with fsuuid= only applies when the tree stands for that filesystem
    const pol = join(dir, 'p.policy');
    writeFileSync(pol, 'appraise func=FILE_CHECK fsuuid=28b23254-9467-44c0-b6ba-34b12e85a26f\n');
    assert.equal((await cli(['preflight', root, '--policy', pol, '--op', 'read'])).code, 0);
    assert.equal(
      (
        await cli([
          'preflight',
          root,
          '--policy',
          pol,
          '--op',
          'read',
          '--fsuuid',
          '28b23254-9467-44c0-b6ba-34b12e85a26f',
        ])
      ).code,
      1,
    );
  } finally {
    cleanup();
  }
});

test('preflight with signing certificates: signatures verified per profile (no ECDSA on debian-6.1)', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const root = join(dir, 'root');
    mkdirSync(root);
    const signed = (name: string, keyFile: string): void => {
      const content = `${name}\n`;
      writeFileSync(join(root, name), content);
      const key = loadPrivateKey(new Uint8Array(readFileSync(vectorPath(keyFile))));
      const sig = signImaDigest({
        key,
        algo: hashAlgoByName('sha256'),
        digest: new Uint8Array(createHash('sha256').update(content).digest()),
      });
      assert.equal(
        run('setfattr', [
          '-n',
          'security.ima',
          '-v',
          `0x${Buffer.from(sig).toString('hex')}`,
          join(root, name),
        ]).status,
        0,
      );
    };
    signed('rsa.txt', 'rsa2048.key');
    signed('ec.txt', 'p256.key');
    const pol = join(dir, 'p.policy');
    writeFileSync(pol, 'appraise func=FILE_CHECK appraise_type=imasig\n');
    const args = [
      'preflight',
      root,
      '--policy',
      pol,
      '--op',
      'read',
      '--key',
      vectorPath('rsa2048.cer'),
      '--key',
      vectorPath('p256.cer'),
      '--json',
    ];
    const deb = await cli([...args, '--profile', 'debian-6.1']);
    assert.match(deb.err, /cannot load this ec key/);
    const d = Object.fromEntries(
      JSON.parse(deb.out).results.map((x: { path: string; decision: string; cause: string | null }) => [
        x.path,
        `${x.decision}:${x.cause}`,
      ]),
    );
    assert.deepEqual(d, { 'rsa.txt': 'allowed:null', 'ec.txt': 'denied:invalid-signature' });
    const main_ = JSON.parse((await cli([...args, '--profile', 'mainline'])).out);
    assert.equal(main_.summary.denied, 0, 'mainline verifies ECDSA');
    // without the certificate: invalid-signature (unknown key)
    const nokey = JSON.parse((await cli(['preflight', root, '--policy', pol, '--op', 'read', '--json'])).out);
    assert.equal(nokey.summary.denied, 2);
  } finally {
    cleanup();
  }
});

test('emulate: runs a scenario, writes the harness artifacts; bad scenarios name the field', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const s = join(dir, 's.json');
    writeFileSync(
      s,
      JSON.stringify({
        profile: 'debian-6.1',
        append: ['ima_policy=tcb', 'ima_hash=sha256', 'ima_template=ima-ng'],
        files: [{ path: 'a b.txt', content: 'hello\n' }],
        workload: [
          { op: 'read', path: 'a b.txt' },
          { op: 'open-writers', path: 'a b.txt' },
        ],
      }),
    );
    const out = join(dir, 'out');
    const r = await cli(['emulate', s, '-o', out, '--json']);
    assert.equal(r.code, 0, r.err);
    const j = JSON.parse(r.out);
    assert.equal(j.measurementCount, 3);
    assert.equal(j.violations, 1);
    const ascii = run('cat', [join(out, 'ascii_runtime_measurements')]).stdout;
    assert.match(ascii, /\/data\/a_b\.txt\n/);
    writeFileSync(s, JSON.stringify({ workload: [{ op: 'read', path: 'x', uid: 'root' }] }));
    const bad = await cli(['emulate', s]);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /workload\[0\]\.uid/);
  } finally {
    cleanup();
  }
});

test('preflight --evm-key / --evm-key-blob --kmk: security.evm judged like the kernel with EVM initialised', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const root = join(dir, 'tree');
    mkdirSync(root);
    const uuid = '1b2c3d4e-5f60-4718-8a9b-acbdcedf0011';
    const key = Uint8Array.from(Buffer.alloc(32, 7));
    const kmk = Uint8Array.from(Buffer.alloc(32, 9));
    writeFileSync(join(dir, 'evm.key'), key);
    writeFileSync(join(dir, 'kmk'), kmk);
    writeFileSync(join(dir, 'evm.blob'), createEvmKeyBlob({ masterKey: kmk, plain: key }).payloadHex);
    const config = resolveEvmConfig('debian-6.1');
    for (const f of ['intact.txt', 'chmod.txt']) {
      const p = join(root, f);
      writeFileSync(p, `${f}\n`);
      const d = createHash('sha256').update(`${f}\n`).digest();
      run('setfattr', ['-n', 'security.ima', '-v', `0x0404${d.toString('hex')}`, p]);
      evmLabelFile(p, { evm: { kind: 'hmac', hmacKey: key }, input: { config, uuid: parseUuid(uuid) } });
    }
    chmodSync(join(root, 'chmod.txt'), 0o600);
    const pol = join(dir, 'p.policy');
    writeFileSync(pol, 'appraise func=FILE_CHECK\n');
    const base = ['preflight', root, '--policy', pol, '--op', 'read', '--fsuuid', uuid, '--json'];
    for (const keyArgs of [
      ['--evm-key', join(dir, 'evm.key')],
      ['--evm-key-blob', join(dir, 'evm.blob'), '--kmk', join(dir, 'kmk')],
    ]) {
      const r = await cli([...base, ...keyArgs]);
      assert.equal(r.code, 1, r.err);
      const j = JSON.parse(r.out);
      assert.equal(j.summary.evm, true);
      const by = Object.fromEntries(j.results.map((x: { path: string; cause: string }) => [x.path, x.cause]));
      assert.deepEqual(by, { 'intact.txt': null, 'chmod.txt': 'invalid-HMAC' });
    }
    // without EVM the IMA hashes are right: nothing denied
    assert.equal((await cli(base)).code, 0);
    // flags that do not go together, and a wrong master key
    assert.equal(
      (await cli([...base, '--evm-key', join(dir, 'evm.key'), '--kmk', join(dir, 'kmk')])).code,
      2,
    );
    assert.equal((await cli([...base, '--evm-key-blob', join(dir, 'evm.blob')])).code, 2);
    assert.notEqual(
      (await cli([...base, '--evm-key-blob', join(dir, 'evm.blob'), '--kmk', join(dir, 'evm.key')])).code,
      0,
    );
  } finally {
    cleanup();
  }
});
