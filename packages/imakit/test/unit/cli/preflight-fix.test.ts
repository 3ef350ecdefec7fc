/**
 * Preflight's suggested fix (issue 10 item 2): apply every suggested command, re-run preflight,
 * expect zero denials — and signatures kept. Before, an invalid HMAC after one chmod got
 * `label --hash`, which replaced signatures by hashes, broke every HMAC and suggested itself again.
 * Labels are checked with evmctl (signatures) and the independent reference HMAC (evm_ref.py).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { main } from '../../../src/cli/main.ts';
import { memoryIo } from '../../../src/cli/io.ts';
import { removeXattr } from '../../../src/host/fs/xattr.ts';
import { evmRefHmac, tempDir, vectorPath, run } from '../../helpers.ts';

const RSA_KEY = vectorPath('rsa2048.key');
const RSA_CER = vectorPath('rsa2048.cer');
const UUID = '0f3c8a52-7d41-4c1e-9b3a-5e2d6f708192';

async function imakit(args: string[]) {
  const io = memoryIo();
  const status = await main(args, io);
  return { status, out: io.out(), err: io.err() };
}

interface Setup {
  dir: string;
  root: string;
  hmacKey: string;
  policy: string;
  files: string[];
}

function setup(dir: string, policyText: string): Setup {
  const root = join(dir, 'tree');
  mkdirSync(join(root, 'sub'), { recursive: true });
  const files: string[] = [];
  for (let i = 0; i < 6; i++) {
    const p = join(root, i % 2 ? 'sub' : '', `f${i}`);
    writeFileSync(p, randomBytes(1000 + i));
    files.push(p);
  }
  const hmacKey = join(dir, 'evm.key');
  writeFileSync(hmacKey, randomBytes(32));
  const policy = join(dir, 'policy');
  writeFileSync(policy, policyText);
  return { dir, root, hmacKey, policy, files };
}

async function preflight(s: Setup) {
  const r = await imakit([
    'preflight',
    s.root,
    '--policy',
    s.policy,
    '--profile',
    'debian-6.1',
    '--op',
    'read',
    '--fsuuid',
    UUID,
    '--evm-key',
    s.hmacKey,
    '--key',
    RSA_CER,
    '--workers',
    '0',
    '--json',
  ]);
  assert.ok(r.status === 0 || r.status === 1, r.err);
  return JSON.parse(r.out) as {
    summary: { denied: number; causes: Record<string, number> };
    fix: string[] | null;
  };
}

/** Apply the suggested fixes until preflight has none (at most 3 rounds: a fix must converge). */
async function applyFixes(s: Setup): Promise<string[][]> {
  const applied: string[][] = [];
  for (let round = 0; round < 3; round++) {
    const p = await preflight(s);
    if (p.fix === null) {
      assert.equal(p.summary.denied, 0, JSON.stringify(p.summary.causes));
      return applied;
    }
    assert.ok(
      !applied.some((a) => a.join(' ') === p.fix!.join(' ')),
      `the same fix again: ${p.fix.join(' ')}`,
    );
    applied.push(p.fix);
    const argv = p.fix.map((a) => (a === '<signing-key.pem>' ? RSA_KEY : a));
    const r = await imakit(argv);
    assert.equal(r.status, 0, `${argv.join(' ')}: ${r.out}${r.err}`);
  }
  assert.fail(`fixes did not converge: ${JSON.stringify(applied)}`);
}

function imaHex(p: string): string {
  return run('getfattr', ['--absolute-names', '-n', 'security.ima', '-e', 'hex', p]).stdout;
}

test('invalid HMAC after a chmod: the fix recomputes security.evm only, signatures kept, zero denials', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const s = setup(dir, 'appraise func=FILE_CHECK\n');
    const l = await imakit([
      'label',
      '--sign',
      '--key',
      RSA_KEY,
      '-a',
      'sha256',
      '--evm',
      'hmac',
      '--hmac-key',
      s.hmacKey,
      '--evm-config',
      'debian-6.1',
      '--uuid',
      UUID,
      s.root,
    ]);
    assert.equal(l.status, 0, l.out);
    assert.equal((await preflight(s)).summary.denied, 0);
    chmodSync(s.files[1]!, 0o600);
    const before = await preflight(s);
    assert.deepEqual(before.summary.causes, { 'invalid-HMAC': 1 });
    const sigs = s.files.map(imaHex);
    const applied = await applyFixes(s);
    assert.equal(applied.length, 1);
    assert.ok(applied[0]!.includes('--evm-only'), applied[0]!.join(' '));
    assert.deepEqual(s.files.map(imaHex), sigs, 'security.ima untouched');
    const v = run('evmctl', ['ima_verify', '--key', RSA_CER, ...s.files]);
    assert.equal(v.status, 0, v.stderr);
    for (const f of s.files) {
      const evm = run('getfattr', ['--absolute-names', '-n', 'security.evm', '-e', 'hex', f]).stdout;
      assert.match(evm, new RegExp(`security\\.evm=0x02${evmRefHmac(f, s.hmacKey, UUID)}`), f);
    }
  } finally {
    cleanup();
  }
});

test('mixed damage (unlabelled, tampered hash, chmod) on a tree with signatures: hashes fix it, no signature downgraded', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const s = setup(dir, 'appraise func=FILE_CHECK\n');
    const signed = s.files.slice(0, 3);
    const hashed = s.files.slice(3);
    const base = ['--evm', 'hmac', '--hmac-key', s.hmacKey, '--evm-config', 'debian-6.1', '--uuid', UUID];
    assert.equal((await imakit(['label', '--sign', '--key', RSA_KEY, ...base, ...signed])).status, 0);
    assert.equal((await imakit(['label', '--hash', ...base, ...hashed])).status, 0);
    removeXattr(hashed[0]!, 'security.ima');
    appendFileSync(hashed[1]!, 'tampered');
    chmodSync(signed[2]!, 0o600);
    const before = await preflight(s);
    assert.ok(before.summary.denied >= 3, JSON.stringify(before.summary.causes));
    const applied = await applyFixes(s);
    assert.deepEqual(applied[0]!.slice(0, 2), ['label', '--hash']);
    const v = run('evmctl', ['ima_verify', '--key', RSA_CER, ...signed]);
    assert.equal(v.status, 0, `signatures kept: ${v.stderr}`);
  } finally {
    cleanup();
  }
});

test('signature-required policy with unsigned files: the fix signs (key filled in), zero denials', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const s = setup(dir, 'appraise func=FILE_CHECK appraise_type=imasig\n');
    const base = ['--evm', 'hmac', '--hmac-key', s.hmacKey, '--evm-config', 'debian-6.1', '--uuid', UUID];
    assert.equal((await imakit(['label', '--hash', ...base, s.root])).status, 0);
    const before = await preflight(s);
    assert.equal(before.summary.causes['IMA-signature-required'], s.files.length);
    const applied = await applyFixes(s);
    assert.ok(applied[0]!.includes('--sign'));
    assert.equal(run('evmctl', ['ima_verify', '--key', RSA_CER, ...s.files]).status, 0);
  } finally {
    cleanup();
  }
});
