/**
 * Tiny loaders shared by tests (style.md practice 14). Vectors live in the shared reference tree
 * beside the repository (`../shared/vectors`), located from this file, never from a machine path.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { fromHex } from '../src/core/bytes.ts';

/** Repository root. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** ../shared/vectors (override with IMAKIT_VECTORS). */
export const VECTORS_DIR = process.env.IMAKIT_VECTORS ?? resolve(REPO_ROOT, '../shared/vectors');
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
