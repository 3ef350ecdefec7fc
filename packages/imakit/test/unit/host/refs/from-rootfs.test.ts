/**
 * `refs from-rootfs` (issue 12 part 3) against `sha256sum` of the same files: every regular file's
 * digest and path, symlinks and directories left out, `--owner` and a policy that measures only
 * executables; the Keylime output validates as a policy imakit reads back equal.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { run, tempDir } from '../../../helpers.ts';
import { toHex } from '../../../../src/core/bytes/bytes.ts';
import { referencesFromRootfs } from '../../../../src/host/refs/from-rootfs.ts';
import { readKeylimePolicy, writeKeylimePolicy } from '../../../../src/core/refs/keylime-policy.ts';

test('from-rootfs: paths and digests equal sha256sum of every regular file; a policy keeps only what it measures', async () => {
  const { dir, cleanup } = tempDir();
  try {
    mkdirSync(join(dir, 'usr/bin'), { recursive: true });
    mkdirSync(join(dir, 'etc'), { recursive: true });
    for (let i = 0; i < 40; i++) writeFileSync(join(dir, 'usr/bin', `tool${i}`), randomBytes(i * 997));
    for (let i = 0; i < 5; i++) chmodSync(join(dir, 'usr/bin', `tool${i}`), 0o755);
    writeFileSync(join(dir, 'etc/näme with space'), 'config\n');
    symlinkSync('tool1', join(dir, 'usr/bin/link'));
    const r = await referencesFromRootfs(dir, { algo: 'sha256', workers: 2 });
    const sums = run('sh', ['-c', 'find . -type f -print0 | xargs -0 sha256sum'], { cwd: dir });
    assert.equal(sums.status, 0, sums.stderr);
    const expected = new Map(
      sums.stdout
        .trim()
        .split('\n')
        .map((l) => [l.slice(66).replace(/^\.\//, '/'), l.slice(0, 64)] as const),
    );
    assert.equal(r.set.digests.size, expected.size);
    for (const [path, hex] of expected) assert.equal(toHex(r.set.digests.get(path)![0]!.digest), hex, path);
    assert.equal(r.set.digests.get('/usr/bin/link'), undefined);
    assert.equal(r.set.provenances[0]!.kind, 'rootfs');
    // Keylime form: read back equal digests
    const back = readKeylimePolicy(writeKeylimePolicy(r.set).text);
    for (const [path, hex] of expected) assert.equal(toHex(back.digests.get(path)![0]!.digest), hex);
    // a policy measuring only executions: the 5 executable files
    const execOnly = await referencesFromRootfs(dir, {
      algo: 'sha256',
      policy: { policyText: 'measure func=BPRM_CHECK mask=MAY_EXEC\n' },
    });
    assert.deepEqual(
      [...execOnly.set.digests.paths()].sort(),
      [0, 1, 2, 3, 4].map((i) => `/usr/bin/tool${i}`).sort(),
    );
    assert.equal(execOnly.skippedByPolicy, expected.size - 5);
    // --owner: nobody owns these files
    const none = await referencesFromRootfs(dir, { algo: 'sha256', owner: 65534 });
    assert.equal(none.set.digests.size, 0);
  } finally {
    cleanup();
  }
});
