/**
 * `imakit vm run`'s workload file and policy warning (issue 10 item 10), without booting anything:
 * the documented example (docs/vm-workload.md) goes through the same validator as a user's file,
 * the documentation names every op the harness has, bad workloads are refused before any boot with
 * the access index, and a policy that appraises exec on the initramfs (the guest's own busybox) is
 * warned about, decided by the policy matcher.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../../src/cli/main.ts';
import { memoryIo } from '../../../src/cli/io.ts';
import { guestExecWarnings, parseWorkload } from '../../../src/cli/commands/vm-workload.ts';
import { WORKLOAD_OPS } from '../../../src/kernel/workload.ts';
import { ImakitError } from '../../../src/errors.ts';
import { REPO_ROOT, tempDir } from '../../helpers.ts';

const DOC = join(REPO_ROOT, 'docs', 'vm-workload.md');

test('docs/vm-workload.md: every JSON example passes the validator and every op is documented', () => {
  const md = readFileSync(DOC, 'utf8');
  const blocks = [...md.matchAll(/```json\n([^]*?)```/g)].map((m) => m[1]!);
  assert.ok(blocks.length >= 1);
  for (const b of blocks) {
    const w = parseWorkload(b, DOC);
    assert.ok(w.length >= 5);
  }
  for (const op of WORKLOAD_OPS) assert.match(md, new RegExp('`' + op + '`'), `op ${op} documented`);
});

const BAD: readonly [string, RegExp][] = [
  ['[{"op":"run","path":"x"}]', /access 0: unknown op "run"/],
  ['[{"op":"read","path":"x"},{"op":"read","path":"/etc/passwd"}]', /must be relative to the data disk root/],
  ['[{"op":"read","path":"a/../../x"}]', /must be relative/],
  ['[{"op":"read","path":"x","uid":5}]', /uid must be 0 or 1000/],
  ['[{"op":"read","path":"x","user":1000}]', /access 0: unknown key "user"/],
  ['[{"op":"read","path":"x","uid":"0"}]', /"uid" must be a number/],
  ['[{"op":"chmod","path":"x"}]', /chmod needs an octal mode/],
  ['{"accesses":[]}', /must be an array of accesses/],
  ['[{"op":"read"', /not JSON/],
];

for (const [text, re] of BAD)
  test(`workload refused: ${text}`, () => {
    assert.throws(
      () => parseWorkload(text, 'w.json'),
      (e) =>
        e instanceof ImakitError &&
        e.code === 'E_SCENARIO' &&
        e.context.path === 'w.json' &&
        re.test(e.message),
    );
  });

test('vm run with a bad workload fails before booting (exit 2, the file and access named)', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const w = join(dir, 'w.json');
    writeFileSync(w, '[{"op":"read","path":"x"},{"op":"exec","path":"y","uid":7}]');
    const io = memoryIo({ cwd: dir });
    const status = await main(['vm', 'run', '--workload', w, '--kernel-dir', join(dir, 'no-kernel')], io);
    assert.equal(status, 2, io.err());
    assert.match(io.err(), /w\.json, entry 1: .*uid must be 0 or 1000.*E_SCENARIO/);
  } finally {
    cleanup();
  }
});

test('a policy appraising exec everywhere is warned about; restricted ones are not', async () => {
  assert.match(
    guestExecWarnings('appraise func=BPRM_CHECK\n').join('\n'),
    /line 1: appraise func=BPRM_CHECK.*busybox.*fsuuid=/,
  );
  assert.match(
    guestExecWarnings('measure func=FILE_CHECK\nappraise func=MMAP_CHECK mask=MAY_EXEC\n').join('\n'),
    /mmap\(PROT_EXEC\).*line 2/,
  );
  assert.deepEqual(
    guestExecWarnings('appraise func=BPRM_CHECK fsuuid=8f1b3c2a-6d4e-4f10-9a7b-2c5d0e1f3a4b\n'),
    [],
  );
  assert.deepEqual(
    guestExecWarnings(
      'dont_appraise fsmagic=0x1021994\ndont_appraise fsmagic=0x858458f6\nappraise func=BPRM_CHECK\n',
    ),
    [],
  );
  assert.deepEqual(guestExecWarnings('measure func=BPRM_CHECK\nappraise func=FILE_CHECK fowner=1000\n'), []);
  // through the CLI: warned before the (here impossible) boot
  const { dir, cleanup } = tempDir();
  try {
    writeFileSync(join(dir, 'p.txt'), 'appraise func=BPRM_CHECK\n');
    const io = memoryIo({ cwd: dir });
    const status = await main(['vm', 'run', '--policy', 'p.txt', '--kernel-dir', join(dir, 'no-kernel')], io);
    assert.equal(status, 5); // no cached kernel there
    assert.match(io.err(), /^warning: the policy appraises exec of files on tmpfs/m);
  } finally {
    cleanup();
  }
});
