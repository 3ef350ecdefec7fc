/**
 * host/preflight.ts as a library: inline and worker judgements are identical; EVM initialised with
 * a key judges security.evm like the kernel (missing-HMAC / invalid-HMAC, labels made by imakit's
 * evm-file, whose HMACs the real-kernel suite proves equal to the kernel's); a file or directory
 * the walk cannot read (a real EACCES: a child process drops to uid 65534) is reported per path
 * and the walk goes on, on the inline path and in workers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash, randomBytes } from 'node:crypto';
import { preflight, predictTree } from '../../../../src/host/preflight/preflight.ts';
import { setXattr, removeXattr } from '../../../../src/host/fs/xattr.ts';
import { evmLabelFile } from '../../../../src/host/label/evm-file.ts';
import { resolveEvmConfig } from '../../../../src/core/evm/evm-config.ts';
import { parseUuid } from '../../../../src/core/bytes/uuid.ts';
import { REPO_ROOT, tempDir } from '../../../helpers.ts';

const UUID = '0e5c6a1b-2f3d-4c5e-8a9b-0c1d2e3f4a5b';
const sha256 = (b: Buffer): Buffer => createHash('sha256').update(b).digest();
const hashLabel = (b: Buffer): Uint8Array => Uint8Array.from(Buffer.concat([Buffer.from([4, 4]), sha256(b)]));

/** good (right hash), bad (stale hash), none (no label), across a few directories */
function makeTree(root: string, n: number): void {
  for (let i = 0; i < n; i++) {
    const d = join(root, `d${i % 7}`);
    mkdirSync(d, { recursive: true });
    const p = join(d, `f${i}`);
    const c = Buffer.from(`file ${i}\n`);
    writeFileSync(p, c);
    if (i % 3 === 0) setXattr(p, 'security.ima', hashLabel(c));
    else if (i % 3 === 1) setXattr(p, 'security.ima', hashLabel(Buffer.from('other')));
  }
}

test('preflight library: workers and inline judge identically', async () => {
  const { dir, cleanup } = tempDir();
  try {
    makeTree(dir, 300);
    const opts = { builtin: 'appraise_tcb', profile: 'debian-6.1', ops: ['read'] } as const;
    const progress: number[] = [];
    const inline = await preflight(dir, { ...opts, workers: 0 }, { onProgress: (d) => progress.push(d) });
    const pooled = await preflight(dir, { ...opts, workers: 2 });
    assert.equal(inline.summary.workers, 0);
    assert.equal(pooled.summary.workers, 2);
    assert.deepEqual(pooled.results, inline.results);
    assert.equal(inline.summary.files, 300);
    assert.equal(inline.summary.hashed, 200, 'only labelled files are hashed');
    assert.deepEqual(inline.summary.causes, { 'invalid-hash': 100, 'missing-hash': 100 });
    assert.equal(progress.at(-1), 300);
    const bad = inline.results.find((r) => r.path === join('d1', 'f1'));
    assert.deepEqual(bad, {
      path: join('d1', 'f1'),
      op: 'read',
      decision: 'denied',
      auditOp: 'appraise_data',
      cause: 'invalid-hash',
    });
  } finally {
    cleanup();
  }
});

test('preflight library: EVM HMAC key — missing-HMAC, invalid-HMAC after chmod/chown, pass when intact', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const key = new Uint8Array(randomBytes(32));
    const config = resolveEvmConfig('debian-6.1');
    const files = ['intact', 'chmod', 'chown', 'no-evm', 'plain-ima-only'];
    for (const f of files) {
      const p = join(dir, f);
      writeFileSync(p, `${f}\n`);
      setXattr(p, 'security.ima', hashLabel(Buffer.from(`${f}\n`)));
      if (f !== 'plain-ima-only')
        evmLabelFile(p, { evm: { kind: 'hmac', hmacKey: key }, input: { config, uuid: parseUuid(UUID) } });
    }
    chmodSync(join(dir, 'chmod'), 0o600);
    spawnSync('chown', ['1:1', join(dir, 'chown')]);
    removeXattr(join(dir, 'no-evm'), 'security.evm');
    // appraise everything readable by root (appraise_tcb only covers fowner=0)
    const policyText = 'appraise func=FILE_CHECK\n';
    const base = { policyText, profile: 'debian-6.1', ops: ['read'], fsuuid: UUID, workers: 0 } as const;
    const withEvm = await preflight(dir, { ...base, evmKey: key });
    const cause = (r: typeof withEvm, f: string): string | null =>
      r.results.find((x) => x.path === f)?.cause ?? null;
    assert.equal(withEvm.summary.evm, true);
    assert.equal(cause(withEvm, 'intact'), null);
    assert.equal(cause(withEvm, 'chmod'), 'invalid-HMAC');
    assert.equal(cause(withEvm, 'chown'), 'invalid-HMAC');
    assert.equal(cause(withEvm, 'no-evm'), 'missing-HMAC');
    assert.equal(cause(withEvm, 'plain-ima-only'), 'missing-HMAC');
    // the same in workers
    const pooled = await preflight(dir, { ...base, evmKey: key, workers: 2 });
    assert.deepEqual(pooled.results, withEvm.results);
    // a wrong key: every HMAC is invalid
    const wrong = await preflight(dir, { ...base, evmKey: new Uint8Array(32) });
    assert.equal(cause(wrong, 'intact'), 'invalid-HMAC');
    // without EVM, only IMA matters: all hashes are right
    const noEvm = await preflight(dir, base);
    assert.equal(noEvm.summary.denied, 0);
    assert.equal(noEvm.summary.evm, false);
  } finally {
    cleanup();
  }
});

test('preflight library: unreadable directory and file (real EACCES as uid 65534) are reported, the walk goes on', () => {
  const { dir, cleanup } = tempDir();
  try {
    chmodSync(dir, 0o755);
    const root = join(dir, 'tree');
    mkdirSync(join(root, 'locked'), { recursive: true });
    writeFileSync(join(root, 'locked', 'inside'), 'hidden\n');
    chmodSync(join(root, 'locked'), 0o000);
    for (const f of ['ok', 'secret']) {
      const c = Buffer.from(`${f}\n`);
      writeFileSync(join(root, f), c);
      setXattr(join(root, f), 'security.ima', hashLabel(c));
    }
    chmodSync(join(root, 'secret'), 0o000);
    chmodSync(join(root, 'ok'), 0o644);
    const lib = fileURLToPath(new URL('../../../../src/host/preflight/preflight.ts', import.meta.url));
    const script = join(dir, 'child.mts');
    writeFileSync(
      script,
      `import { preflight } from ${JSON.stringify(lib)};
process.setgid(65534);
process.setuid(65534);
const out = [];
for (const workers of [0, 2]) {
  // a policy appraising files owned by root (appraise_tcb), read as the accessing uid 65534
  const r = await preflight(${JSON.stringify(root)}, { builtin: 'appraise_tcb', profile: 'debian-6.1', ops: ['read'], workers });
  out.push({ workers, results: r.results, unreadable: r.summary.unreadable });
}
process.stdout.write(JSON.stringify(out));
`,
    );
    chmodSync(script, 0o644);
    const r = spawnSync(process.execPath, ['--import', 'tsx', script], { encoding: 'utf8', cwd: REPO_ROOT });
    assert.equal(r.status, 0, r.stderr);
    const runs = JSON.parse(r.stdout) as Array<{
      workers: number;
      results: Array<{ path: string; decision: string }>;
      unreadable: Array<{ path: string; code: string }>;
    }>;
    assert.equal(runs.length, 2);
    for (const run of runs) {
      const un = Object.fromEntries(run.unreadable.map((u) => [u.path, u.code]));
      assert.deepEqual(Object.keys(un).sort(), ['locked', 'secret'], `workers=${run.workers}`);
      assert.ok(un.locked?.startsWith('E_'), 'a catalogue code');
      assert.ok(un.secret?.startsWith('E_'));
      assert.deepEqual(
        run.results.map((x) => `${x.path}:${x.decision}`),
        ['ok:allowed'],
        'the readable file is still judged',
      );
    }
    assert.deepEqual(runs[0]!.unreadable, runs[1]!.unreadable);
  } finally {
    try {
      chmodSync(join(dir, 'tree', 'locked'), 0o755);
    } catch {
      // already gone
    }
    cleanup();
  }
});

test('preflight library: bad options are usage errors, a broken policy names its line', async () => {
  const { dir, cleanup } = tempDir();
  try {
    writeFileSync(join(dir, 'f'), 'x');
    await assert.rejects(preflight(dir, {}), { code: 'E_USAGE' });
    await assert.rejects(preflight(dir, { builtin: 'tcb', ops: ['write'] }), { code: 'E_USAGE' });
    await assert.rejects(preflight(dir, { builtin: 'tcb', fsuuid: 'nope' }), { code: 'E_USAGE' });
    await assert.rejects(preflight(dir, { builtin: 'tcb', fsType: 'nofs' }), { code: 'E_USAGE' });
    await assert.rejects(preflight(join(dir, 'missing'), { builtin: 'tcb' }), { code: 'E_IO_READ' });
    await assert.rejects(
      preflight(dir, { policyText: 'measure func=FILE_CHECK\nappraise bogus=1\n' }),
      (e: unknown) => {
        const err = e as { code: string; context: { line?: number } };
        assert.match(err.code, /^E_POLICY_/);
        assert.equal(err.context.line, 2);
        return true;
      },
    );
  } finally {
    cleanup();
  }
});

test('predictTree: the demo shape, with a certificate and an EVM key', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const c = Buffer.from('x\n');
    writeFileSync(join(dir, 'a'), c);
    setXattr(join(dir, 'a'), 'security.ima', hashLabel(c));
    writeFileSync(join(dir, 'b'), c);
    const cert = readFileSync(
      fileURLToPath(new URL('../../../fixtures/kernel/appraise-enforce/manifest.json', import.meta.url)),
    );
    const der = Uint8Array.from(
      Buffer.from((JSON.parse(cert.toString()) as { imaCertsDerHex: string[] }).imaCertsDerHex[0]!, 'hex'),
    );
    const p = await predictTree(dir, der, { fsType: 'ext4' });
    assert.equal(p.mode, 'enforce');
    assert.match(p.policy, /appraise_tcb/);
    assert.equal(p.checks, 2);
    assert.deepEqual(p.denied, [{ path: 'b', op: 'read', cause: 'missing-hash' }]);
    rmSync(join(dir, 'b'));
  } finally {
    cleanup();
  }
});
