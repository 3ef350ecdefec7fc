/**
 * Test helpers for the `imakit tpm …` CLI tests: one TPM state manufactured before the file's tests
 * (removed after them), a fresh swtpm copied from it per test, and the CLI run in-process.
 */
import { after, before } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli as runCli } from './in-process-cli.ts';
import { manufactureTpm, startTestTpm, type TestTpm, type TestTpmState } from '../tpm-helpers.ts';

/** Run `imakit ARGV` in-process; its exit status and what it wrote. */
export async function cli(...argv: string[]): Promise<{ status: number; out: string; err: string }> {
  const { code: status, out, err } = await runCli(argv);
  return { status, out, err };
}

/**
 * Register `before`/`after` hooks that manufacture one TPM state for the calling test file; the
 * returned `withTpm` runs `fn` against a swtpm started from a copy of it and stops it afterwards.
 */
export function sharedTpm(): { withTpm: (fn: (t: TestTpm) => Promise<void>) => Promise<void> } {
  let shared: { dir: string; state: TestTpmState };
  before(() => {
    const dir = mkdtempSync(join(tmpdir(), 'imakit-tpm-state-'));
    shared = { dir, state: manufactureTpm(dir) };
  });
  after(() => rmSync(shared.dir, { recursive: true, force: true }));
  return {
    withTpm: async (fn) => {
      const t = await startTestTpm({ fromState: shared.state });
      try {
        await fn(t);
      } finally {
        t.stop();
      }
    },
  };
}
