import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { diagnoseHost } from '../../../../src/host/doctor/doctor.ts';
import { hasNativeHash } from '../../../../src/host/workers/native-hash.ts';
import { hasIoctlAddon } from '../../../../src/host/fs/inode.ts';
import { hasXattrSupport } from '../../../../src/host/fs/xattr.ts';
import { main } from '../../../../src/cli/main.ts';
import { tempDir } from '../../../helpers.ts';

test('tools: found only when executable on the given search path, in path order', () => {
  const { dir, cleanup } = tempDir();
  try {
    const a = join(dir, 'a');
    const b = join(dir, 'b');
    mkdirSync(a);
    mkdirSync(b);
    writeFileSync(join(a, 'evmctl'), '');
    chmodSync(join(a, 'evmctl'), 0o644); // not executable: not a tool
    writeFileSync(join(b, 'evmctl'), '#!/bin/sh\n');
    chmodSync(join(b, 'evmctl'), 0o755);
    writeFileSync(join(a, 'keyctl'), '#!/bin/sh\n');
    chmodSync(join(a, 'keyctl'), 0o755);
    writeFileSync(join(b, 'keyctl'), '#!/bin/sh\n');
    chmodSync(join(b, 'keyctl'), 0o755);
    const r = diagnoseHost({ searchPath: `${a}::${b}` });
    const tool = (n: string): string | null | undefined => r.tools.find((t) => t.name === n)?.path;
    assert.equal(tool('evmctl'), join(b, 'evmctl'));
    assert.equal(tool('keyctl'), join(a, 'keyctl'));
    assert.equal(tool('swtpm'), null);
    assert.equal(
      diagnoseHost().tools.every((t) => t.path === null),
      true,
      'no search path: nothing searched',
    );
  } finally {
    cleanup();
  }
});

test('kernel facilities: securityfs list and TPM device found where they are, absent elsewhere', () => {
  const { dir, cleanup } = tempDir();
  try {
    const ima = join(dir, 'ima');
    mkdirSync(ima);
    writeFileSync(join(ima, 'binary_runtime_measurements'), '');
    writeFileSync(join(dir, 'tpm0'), '');
    const r = diagnoseHost({
      securityfsDirs: [join(dir, 'none'), ima],
      tpmDevices: [join(dir, 'tpmrm0'), join(dir, 'tpm0')],
      tpmSysfs: join(dir, 'sysfs'),
    });
    const [lists, dev, sysfs] = r.kernel;
    assert.equal(lists?.path, join(ima, 'binary_runtime_measurements'));
    assert.equal(dev?.path, join(dir, 'tpm0'));
    assert.deepEqual([sysfs?.present, sysfs?.path], [false, null]);
    assert.ok(Object.isFrozen(r) && Object.isFrozen(r.kernel[0]));
  } finally {
    cleanup();
  }
});

test('native addons: the report says what loaded, and names the fallback', () => {
  const r = diagnoseHost();
  assert.deepEqual(
    r.native.map((a) => [a.name, a.loaded]),
    [
      ['imakit_hash', hasNativeHash()],
      ['imakit_ioctl', hasIoctlAddon()],
      ['fs-xattr', hasXattrSupport()],
    ],
  );
  for (const a of r.native) assert.ok(a.fallback.length > 0);
});

test('imakit doctor --json: the report, PATH from the CLI environment, exit 0', async () => {
  const { dir, cleanup } = tempDir();
  try {
    writeFileSync(join(dir, 'swtpm'), '#!/bin/sh\n');
    chmodSync(join(dir, 'swtpm'), 0o755);
    let out = '';
    const status = await main(['doctor', '--json'], {
      stdout: (s) => (out += s),
      stderr: () => {},
      isTTY: false,
      env: { PATH: dir },
      cwd: dir,
      readStdin: () => Promise.resolve(''),
    });
    assert.equal(status, 0);
    const r = JSON.parse(out) as { tools: { name: string; path: string | null }[]; native: unknown[] };
    assert.equal(r.tools.find((t) => t.name === 'swtpm')?.path, join(dir, 'swtpm'));
    assert.equal(r.tools.find((t) => t.name === 'evmctl')?.path, null);
    assert.equal(r.native.length, 3);
  } finally {
    cleanup();
  }
});
