/**
 * Tiny loaders shared by tests (style.md practice 14). Vectors live in `test/vectors/` (copied from
 * the shared reference tree, see its ORIGIN.md), located from this file, never from a machine path.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { fromHex } from '../src/core/bytes/bytes.ts';

/** The imakit package's root (packages/imakit). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** test/vectors, carried by the repository. */
export const VECTORS_DIR = join(REPO_ROOT, 'test/vectors');
/** Captured real-kernel artifacts. */
export const FIXTURES_DIR = join(REPO_ROOT, 'test/fixtures');

/** Path of a shared vector file. */
export function vectorPath(name: string): string {
  return join(VECTORS_DIR, name);
}
/** Bytes of a shared vector file. */
export function vector(name: string): Uint8Array {
  return new Uint8Array(readFileSync(vectorPath(name)));
}
/** Bytes from a hex string (whitespace ignored). */
export function hex(s: string): Uint8Array {
  return fromHex(s.replace(/\s+/g, ''));
}

/**
 * Look up `key` in vectors_output.txt: returns the text after `key` on the first line that contains it.
 * Use for long expected values instead of copying them into tests.
 */
export function vectorOutputLine(contains: string): string {
  const text = readFileSync(vectorPath('vectors_output.txt'), 'utf8');
  const line = text.split('\n').find((l) => l.includes(contains));
  if (line === undefined) throw new Error(`vectors_output.txt has no line containing '${contains}'`);
  return line;
}

/** A fresh temporary directory, removed by the returned cleanup function. */
export function tempDir(prefix = 'imakit-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A file of `size` fresh random bytes at `dir/name`; returns its path. */
export function freshFile(dir: string, name: string, size: number): string {
  const p = join(dir, name);
  writeFileSync(p, randomBytes(size));
  return p;
}

/** Run an external tool; returns status, stdout, stderr as text. */
export function run(
  cmd: string,
  args: readonly string[],
  opts: SpawnSyncOptions & { input?: string | Uint8Array } = {},
): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  if (r.error) throw r.error;
  return { status: r.status ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/**
 * The independent reference HMAC (`evm_ref.py` in the shared vectors) of a real file: Python reads
 * everything itself (os.lstat, os.getxattr, the generation from `lsattr -vd`), so nothing of
 * imakit's file reading is trusted. Returns the 20-byte HMAC as lowercase hex.
 */
export function evmRefHmac(file: string, keyFile: string, fsUuid: string): string {
  const py = `
import os, subprocess, sys
sys.path.insert(0, sys.argv[1])
import evm_ref
f, key, uuid = sys.argv[2], open(sys.argv[3], 'rb').read(), sys.argv[4]
evm_ref.EVM_XATTRS = ["security.selinux", "security.apparmor", "security.ima", "security.capability"]
xs = {}
for n in evm_ref.EVM_XATTRS:
    try: xs[n] = os.getxattr(f, n, follow_symlinks=False)
    except OSError: pass
st = os.lstat(f)
gen = int(subprocess.run(["lsattr", "-vd", f], capture_output=True, text=True, check=True).stdout.split()[0])
print(evm_ref.evm_hmac(key, xs, st.st_ino, gen, st.st_uid, st.st_gid, st.st_mode, fsuuid=uuid).hex())
`;
  const r = run('python3', ['-c', py, VECTORS_DIR, file, keyFile, fsUuid]);
  if (r.status !== 0) throw new Error(`evm_ref.py failed (${r.status}): ${r.stderr}`);
  return r.stdout.trim();
}

/**
 * Why kernel keyrings cannot be used here, or false when they can. Probes with keyctl itself (not
 * imakit's keyctl wrapper, which is what the keyring tests test), so a missing keyctl gives a skip
 * reason that CI refuses (scripts/run-tests.mjs) instead of a silently skipped test.
 */
export function keyringSkipReason(): string | false {
  const r = spawnSync('keyctl', ['newring', `_imakit_probe_${process.pid}`, '@u'], { encoding: 'utf8' });
  if (r.error) return `keyctl cannot run: ${r.error.message}`;
  if (r.status !== 0) return `keyctl newring failed: ${String(r.stderr).trim()}`;
  spawnSync('keyctl', ['unlink', String(r.stdout).trim(), '@u']);
  return false;
}
